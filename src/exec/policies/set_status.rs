//! `<set-status>`: set the response status code and reason phrase.

use super::*;
use crate::exec::value;

#[derive(Clone, Debug)]
pub struct SetStatus {
    pub code: Val<u16>,
    pub reason: Option<Val<String>>,
}

impl Policy for SetStatus {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        Some(parse_set_status(r))
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.code, f);
        if let Some(r) = &self.reason {
            visit_val(r, f);
        }
    }
}

impl RunsNow for SetStatus {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        run(self, cx).map(|_| Step::Next)
    }
}

pub(super) fn parse_set_status(r: &mut Reader) -> SetStatus {
    let code = r
        .required_value("code", parse_status)
        .unwrap_or(Val::Lit(200));
    let reason = r.value("reason", |s| Ok(s.to_string()));
    SetStatus { code, reason }
}

/// Whether `r` can stand in a status line as a reason phrase (RFC 9112 §4:
/// `*( HTAB / SP / VCHAR / obs-text )`): no CR, LF, NUL or other control byte.
pub fn valid_reason(r: &str) -> bool {
    r.bytes()
        .all(|b| b == b'\t' || b == b' ' || (b >= 0x21 && b != 0x7f))
}

pub(super) fn run(s: &SetStatus, cx: &mut ExecCtx) -> Result<(), StepError> {
    let code = *value(&s.code, cx)?;
    let reason = match &s.reason {
        Some(r) => {
            let r = value(r, cx)?.into_owned();
            if !valid_reason(&r) {
                // A value from the request must never split the status line.
                return Err(StepError::expression(
                    "set-status: the reason has a control character (CR, LF, NUL, ...)",
                ));
            }
            Some(r)
        }
        None => None,
    };
    cx.resp.status = code;
    cx.resp.reason = reason;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_reason;

    #[test]
    fn reasons() {
        assert!(valid_reason("OK"));
        assert!(valid_reason("Not\tFound ü"));
        assert!(valid_reason(""));
        assert!(!valid_reason("OK\r\nSet-Cookie: a=1"));
        assert!(!valid_reason("OK\n"));
        assert!(!valid_reason("O\0K"));
        assert!(!valid_reason("O\x7fK"));
    }
}
