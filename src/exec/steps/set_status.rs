//! `<set-status>`: set the response status code and reason phrase.

use crate::exec::{value, ExecCtx, StepError};
use crate::policy::SetStatus;

/// Whether `r` can stand in a status line as a reason phrase (RFC 9112 §4:
/// `*( HTAB / SP / VCHAR / obs-text )`): no CR, LF, NUL or other control byte.
pub fn valid_reason(r: &str) -> bool {
    r.bytes()
        .all(|b| b == b'\t' || b == b' ' || (b >= 0x21 && b != 0x7f))
}

pub fn run(s: &SetStatus, cx: &mut ExecCtx) -> Result<(), StepError> {
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
