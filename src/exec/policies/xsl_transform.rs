//! `<xsl-transform>`: transform the body (request in inbound and backend, response in outbound
//! and on-error) with an XSLT 1.0 stylesheet, its `<parameter parameter-name>` values (literal
//! or expression) passed as string parameters.
//!
//! The processor is libxslt, the reference XSLT 1.0 implementation, run as its own command-line
//! front end `xsltproc` in a child process: a crash or a runaway stylesheet takes the child,
//! never the gateway, and the child gets `--nonet --nowrite --nomkdir` (no network, no files
//! written), a depth bound, a 5 s deadline, an output bound (`limits.max_body_bytes`) and a
//! cap on how many run at once. (The Rust binding of libxslt cannot be used safely: its
//! stylesheet handle is not `Send`, a stylesheet that fails to compile becomes a null pointer
//! it dereferences, and it has no way to set libxslt's security preferences.) A body with a
//! DTD is refused before the child sees it (as .NET's default `DtdProcessing.Prohibit` does),
//! so no external entity is ever read. The stylesheet is compiled by `xsltproc` at load, so a
//! bad one is a load error; without `xsltproc` installed the policy is load error P025.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::exec::child::{self, first_lines, has_doctype};
use crate::exec::{value, ErrorKind};

/// Deepest template recursion libxslt allows (its default is 3000).
const MAX_DEPTH: &str = "3000";

#[derive(Clone, Debug)]
pub struct XslTransform {
    pub params: Vec<(String, Val<String>)>,
    pub stylesheet: Arc<Stylesheet>,
}

/// A compiled-at-load stylesheet: the file `xsltproc` reads, and the program itself.
#[derive(Debug)]
pub struct Stylesheet {
    pub path: PathBuf,
    pub program: PathBuf,
}

enum Problem {
    NoTool,
    Bad(String),
}

fn base_args() -> Vec<OsString> {
    ["--nonet", "--nowrite", "--nomkdir", "--maxdepth", MAX_DEPTH]
        .into_iter()
        .map(OsString::from)
        .collect()
}

impl Stylesheet {
    /// Write and compile a stylesheet (what loading the policy does).
    pub fn compile(source: &str) -> Result<Stylesheet, String> {
        Stylesheet::prepare(&with_xsl_namespace(source)).map_err(|p| match p {
            Problem::NoTool => "xsltproc is not installed".to_string(),
            Problem::Bad(e) => e,
        })
    }

    fn prepare(source: &str) -> Result<Stylesheet, Problem> {
        let program = child::program("xsltproc").ok_or(Problem::NoTool)?;
        let path = child::write_shared("xsl", "xsl", source)
            .map_err(|e| Problem::Bad(format!("cannot write it: {e}")))?;
        let s = Stylesheet { path, program };
        s.check()?;
        Ok(s)
    }

    /// Compile the stylesheet once: run it over an empty document (exit 4 / 5, or a
    /// "compilation error" on stderr: it does not parse or compile).
    fn check(&self) -> Result<(), Problem> {
        let mut args = base_args();
        args.push(self.path.clone().into());
        args.push("-".into());
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let ran = child::run_blocking(&self.program, &refs, b"<gatehouse-check/>")
            .map_err(|_| Problem::NoTool)?;
        match ran.code {
            Some(4 | 5) => Err(Problem::Bad(first_lines(&ran.stderr))),
            // libxslt reports some compile errors (an unknown xsl: element) and goes on.
            _ if ran.stderr.contains("compilation error") => {
                Err(Problem::Bad(first_lines(&ran.stderr)))
            }
            None => Err(Problem::Bad("compiling it took longer than 5 s".into())),
            _ => Ok(()),
        }
    }

    /// Transform `body`; at most `max` bytes of output.
    pub async fn apply(
        &self,
        body: Bytes,
        params: &[(String, String)],
        max: u64,
    ) -> Result<Vec<u8>, String> {
        let mut args = base_args();
        for (k, v) in params {
            args.push("--stringparam".into());
            args.push(k.into());
            args.push(v.into());
        }
        args.push(self.path.clone().into());
        args.push("-".into());
        let ran = child::run(&self.program, args, body, max).await?;
        if ran.code == Some(0) {
            Ok(ran.stdout)
        } else {
            Err(first_lines(&ran.stderr))
        }
    }
}

/// libxslt's `file /tmp/.../x.xsl line N` as the line of the policy document (the stylesheet
/// starts on `first`).
fn policy_lines(message: &str, first: u32) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("file ") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 5..];
        let Some(j) = after.find(".xsl line ") else {
            out.push_str("file ");
            rest = after;
            continue;
        };
        let tail = &after[j + 10..];
        let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
        let n: u32 = digits.parse().unwrap_or(1);
        out.push_str(&format!("line {}", first + n.saturating_sub(1)));
        rest = &tail[digits.len()..];
    }
    out.push_str(rest);
    out
}

/// A stylesheet whose `xsl` prefix is declared on an ancestor (the policy document) gets the
/// declaration on its own root.
fn with_xsl_namespace(source: &str) -> String {
    if source.contains("xmlns:xsl=") || !source.starts_with("<xsl:") {
        return source.to_string();
    }
    let end = source
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .unwrap_or(source.len());
    format!(
        "{} xmlns:xsl=\"http://www.w3.org/1999/XSL/Transform\"{}",
        &source[..end],
        &source[end..]
    )
}

impl Policy for XslTransform {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        let mut params = Vec::new();
        let mut source = None;
        for el in r.children() {
            if el.name == "parameter" {
                let mut c = r.child(el);
                let name = c.required_literal("parameter-name");
                let v = c
                    .text_value(false, |s| Ok(s.to_string()))
                    .unwrap_or(Val::Lit(String::new()));
                c.children_checked = true;
                c.finish();
                if let Some(n) = name {
                    params.push((n, v));
                }
            } else if matches!(el.name.rsplit(':').next(), Some("stylesheet" | "transform")) {
                source = el.text().map(|t| (t.value, t.span));
            } else {
                not_allowed(
                    r.diags,
                    el,
                    "xsl-transform",
                    "<parameter> or <xsl:stylesheet>",
                );
            }
        }
        let Some((source, span)) = source else {
            r.diags.error(
                "P012",
                r.el.span.clone(),
                "<xsl-transform> needs an <xsl:stylesheet>",
            );
            return None;
        };
        match Stylesheet::prepare(&with_xsl_namespace(&source)) {
            Ok(s) => Some(XslTransform {
                params,
                stylesheet: Arc::new(s),
            }),
            Err(Problem::NoTool) => {
                r.diags.error(
                    "P025",
                    span,
                    "xsl-transform runs libxslt's `xsltproc`, which is not installed (Debian: apt-get install xsltproc)",
                );
                None
            }
            Err(Problem::Bad(e)) => {
                let e = policy_lines(&e, span.line);
                r.diags.error(
                    "P012",
                    span,
                    format!("the XSLT stylesheet does not compile: {e}"),
                );
                None
            }
        }
    }

    fn needs(&self) -> Needs {
        Needs {
            request_body: true,
            response_body: true,
            replaces_request_body: true,
        }
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        for (_, v) in &self.params {
            visit_val(v, f);
        }
    }
}

impl Waits for XslTransform {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let mut params = Vec::with_capacity(self.params.len());
        for (k, v) in &self.params {
            params.push((k.clone(), value(v, cx)?.into_owned()));
        }
        let body = cx.section_body().unwrap_or_default();
        let fail = |e: String| StepError::new(ErrorKind::Internal, format!("xsl-transform: {e}"));
        if has_doctype(&body) {
            return Err(fail(
                "the body declares a DTD, which is not processed".into(),
            ));
        }
        let max = cx.gw.limits.max_body_bytes;
        let out = Box::pin(self.stylesheet.apply(body, &params, max))
            .await
            .map_err(fail)?;
        cx.set_section_body(Bytes::from(out));
        Ok(Step::Next)
    }
}
