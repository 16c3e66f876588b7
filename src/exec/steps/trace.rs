//! `<trace>`: add an entry to the request's trace (written to the access log line and the log).

use crate::exec::{value, ExecCtx, StepError, TraceEntry};
use crate::policy::{Severity, Trace};

pub fn run(t: &Trace, cx: &mut ExecCtx) -> Result<(), StepError> {
    let message = value(&t.message, cx)?.into_owned();
    let mut metadata = Vec::with_capacity(t.metadata.len());
    for (k, v) in &t.metadata {
        metadata.push((k.clone(), value(v, cx)?.into_owned()));
    }
    let severity = match t.severity {
        Severity::Verbose => "verbose",
        Severity::Information => "information",
        Severity::Error => "error",
    };
    cx.req.traces.push(TraceEntry {
        source: t.source.clone(),
        severity,
        message,
        metadata,
    });
    Ok(())
}
