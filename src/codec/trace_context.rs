//! W3C Trace Context (`traceparent`, https://www.w3.org/TR/trace-context/): a request's trace,
//! continued from the caller's header when it is valid, else started afresh, and the header the
//! gateway sends on (the same trace, the gateway's own span as the parent).

/// One request's place in a trace. `span_id` is the gateway's own span for the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The caller's span, when the trace was continued.
    pub parent_id: Option<[u8; 8]>,
    /// Trace flags sent on: only `sampled` (0x01) is defined for version 00.
    pub flags: u8,
}

/// The flags of a trace the gateway starts: sampled, so that backends record their part.
const NEW_TRACE_FLAGS: u8 = 0x01;

impl TraceContext {
    /// Continue the trace of a `traceparent` the caller sent (exactly one valid header), or
    /// start a new one. A new span id either way.
    pub fn continue_or_start<'a>(mut headers: impl Iterator<Item = &'a [u8]>) -> TraceContext {
        let first = headers.next();
        let parsed = match (first, headers.next()) {
            (Some(v), None) => parse(v),
            _ => None,
        };
        let mut span_id = random_nonzero();
        match parsed {
            Some((trace_id, parent_id, flags)) => {
                while span_id == parent_id {
                    span_id = random_nonzero();
                }
                TraceContext {
                    trace_id,
                    span_id,
                    parent_id: Some(parent_id),
                    flags: flags & 0x01,
                }
            }
            None => TraceContext {
                trace_id: random_nonzero(),
                span_id,
                parent_id: None,
                flags: NEW_TRACE_FLAGS,
            },
        }
    }

    /// Whether this holds a trace (the default value does not).
    pub fn is_set(&self) -> bool {
        self.trace_id != [0; 16]
    }

    /// The `traceparent` for a call the gateway makes: this trace, the gateway's span as parent.
    pub fn header(&self) -> String {
        let mut b = [0u8; 55];
        b[..3].copy_from_slice(b"00-");
        hex_into(&mut b[3..35], &self.trace_id);
        b[35] = b'-';
        hex_into(&mut b[36..52], &self.span_id);
        b[52] = b'-';
        hex_into(&mut b[53..55], &[self.flags]);
        // ASCII by construction.
        String::from_utf8(b.to_vec()).unwrap_or_default()
    }

    pub fn trace_id_hex(&self) -> String {
        let mut b = [0u8; 32];
        hex_into(&mut b, &self.trace_id);
        String::from_utf8(b.to_vec()).unwrap_or_default()
    }

    /// A child span of this request's span (a `send-request` call): same trace, new span id,
    /// this span as its parent.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            span_id: random_nonzero(),
            parent_id: Some(self.span_id),
            flags: self.flags,
        }
    }
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes` into `out` (twice as long).
fn hex_into(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

fn random_nonzero<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut b = [0u8; N];
    while b == [0u8; N] {
        rand::thread_rng().fill_bytes(&mut b);
    }
    b
}

fn lower_hex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// `version-traceid-parentid-flags`, as the specification's parsing rules say: lower-case
/// hex; version `ff` invalid; version 00 exactly 55 characters; a later version may carry
/// more fields after a `-`; all-zero trace or parent ids invalid.
pub fn parse(v: &[u8]) -> Option<([u8; 16], [u8; 8], u8)> {
    let v = v.trim_ascii();
    if v.len() < 55 {
        return None;
    }
    let version: [u8; 1] = lower_hex(&v[0..2])?;
    if version[0] == 0xff || (version[0] == 0 && v.len() != 55) {
        return None;
    }
    if v.len() > 55 && v[55] != b'-' {
        return None;
    }
    if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let trace_id: [u8; 16] = lower_hex(&v[3..35])?;
    let parent_id: [u8; 8] = lower_hex(&v[36..52])?;
    let flags: [u8; 1] = lower_hex(&v[53..55])?;
    if trace_id == [0; 16] || parent_id == [0; 8] {
        return None;
    }
    Some((trace_id, parent_id, flags[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_header_is_continued_with_a_new_span() {
        let t = TraceContext::continue_or_start([GOOD.as_bytes()].into_iter());
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            t.parent_id,
            Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
        assert_ne!(Some(t.span_id), t.parent_id);
        let h = t.header();
        assert_eq!(h.len(), 55);
        assert!(h.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(h.ends_with("-01"));
        assert_eq!(parse(h.as_bytes()).map(|p| p.0), Some(t.trace_id));
        let c = t.child();
        assert_eq!((c.trace_id, c.parent_id), (t.trace_id, Some(t.span_id)));
    }

    #[test]
    fn invalid_headers_start_a_new_trace() {
        let bad = [
            "",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\u{e9}",
        ];
        for b in bad {
            assert_eq!(parse(b.as_bytes()), None, "{b:?}");
            let t = TraceContext::continue_or_start([b.as_bytes()].into_iter());
            assert!(t.is_set() && t.parent_id.is_none(), "{b:?}");
            assert_eq!(t.flags, 0x01);
        }
        // A later version with more fields is read by its first four.
        assert!(
            parse(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever").is_some()
        );
        // Two headers: the trace is ambiguous; a new one starts.
        let t = TraceContext::continue_or_start([GOOD.as_bytes(), GOOD.as_bytes()].into_iter());
        assert!(t.parent_id.is_none());
        // Unknown flags are not passed on.
        let t = TraceContext::continue_or_start(
            [b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fe".as_slice()].into_iter(),
        );
        assert_eq!(t.flags, 0);
    }
}
