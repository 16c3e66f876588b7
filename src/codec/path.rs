//! The one canonical spelling of a request path, decided before routing. Routing, policies
//! (`context.Request.Url`) and the path forwarded to the backend all use it, so no spelling of a
//! path reaches a backend resource that another spelling is denied (docs/security.md).
//!
//! The rule, in order:
//! 1. The path must start with `/`; an empty path is `/`.
//! 2. Percent-escapes must be `%` + two hex digits. An escape of an unreserved character
//!    (`A-Z a-z 0-9 - . _ ~`) is decoded; every other escape is kept, with upper-case hex.
//! 3. Refused (400): an escaped or raw `/` or `\` inside a segment (`%2F`, `%5C`, `\`), an escaped
//!    control character (`%00`-`%1F`, `%7F`), a raw control character or space, raw bytes that
//!    are not UTF-8, and a `..` that would climb above the root.
//! 4. Raw non-ASCII (UTF-8) bytes are percent-encoded, so the canonical path is ASCII.
//! 5. Empty segments (`//`) and `.` segments are removed; `..` removes the segment before it.
//!    A path that ended in `/`, `/.` or `/..` keeps one trailing `/`.
//!
//! Case is kept (routing compares case-insensitively, as APIM does; the backend sees the case
//! the client sent).

use std::borrow::Cow;

/// Why a path has no canonical form. Each is answered 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with '/'")]
    NotAbsolute,
    #[error("the path has a '%' that is not followed by two hex digits")]
    BadEscape,
    #[error("the path has an encoded '/' or a '\\'")]
    EncodedSeparator,
    #[error("the path has a control character")]
    Control,
    #[error("the path is not UTF-8")]
    NotUtf8,
    #[error("the path climbs above the root with '..'")]
    AboveRoot,
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether `path` is already canonical and can be used as it is: ASCII without controls,
/// spaces, `%`, `\`, empty segments or dot segments. This is the common case and costs one scan.
fn is_canonical(path: &[u8]) -> bool {
    if path.first() != Some(&b'/') {
        return false;
    }
    let mut seg_start = 1;
    for i in 1..=path.len() {
        let b = path.get(i).copied();
        match b {
            Some(b'/') | None => {
                let seg = &path[seg_start..i];
                if (seg.is_empty() && b.is_some()) || seg == b"." || seg == b".." {
                    return false;
                }
                seg_start = i + 1;
            }
            Some(c) if c <= b' ' || c >= 0x7f || c == b'%' || c == b'\\' => return false,
            Some(_) => {}
        }
    }
    true
}

/// The canonical form of a request path (without its query).
pub fn normalize(path: &[u8]) -> Result<Cow<'_, str>, PathError> {
    if path.is_empty() {
        return Ok(Cow::Borrowed("/"));
    }
    if is_canonical(path) {
        // Checked ASCII above.
        return std::str::from_utf8(path)
            .map(Cow::Borrowed)
            .map_err(|_| PathError::NotUtf8);
    }
    if path[0] != b'/' {
        return Err(PathError::NotAbsolute);
    }
    if std::str::from_utf8(path).is_err() {
        return Err(PathError::NotUtf8);
    }
    // Segments in their canonical spelling; `..` pops.
    let mut segments: Vec<Vec<u8>> = Vec::new();
    let mut trailing = false;
    for raw in path[1..].split(|&b| b == b'/') {
        let seg = segment(raw)?;
        trailing = false;
        match seg.as_slice() {
            b"" => trailing = true,
            b"." => trailing = true,
            b".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
                trailing = true;
            }
            _ => segments.push(seg),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        // Every byte pushed by `segment` is ASCII.
        out.extend(s.iter().map(|&b| char::from(b)));
    }
    if segments.is_empty() || trailing {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// One segment's canonical bytes (ASCII): unreserved escapes decoded, other escapes upper-cased,
/// raw non-ASCII bytes encoded.
fn segment(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        match b {
            b'%' => {
                let (Some(h), Some(l)) = (
                    raw.get(i + 1).copied().and_then(hex),
                    raw.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::BadEscape);
                };
                let v = h * 16 + l;
                if v == b'/' || v == b'\\' {
                    return Err(PathError::EncodedSeparator);
                }
                if v < 0x20 || v == 0x7f {
                    return Err(PathError::Control);
                }
                if unreserved(v) {
                    out.push(v);
                } else {
                    out.extend_from_slice(&[b'%', HEX[usize::from(h)], HEX[usize::from(l)]]);
                }
                i += 3;
                continue;
            }
            b'\\' => return Err(PathError::EncodedSeparator),
            0..=0x20 | 0x7f => return Err(PathError::Control),
            0x80..=0xff => {
                out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
            }
            _ => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Result<String, PathError> {
        normalize(p.as_bytes()).map(|c| c.into_owned())
    }

    #[test]
    fn canonical_paths_pass_unchanged() {
        for p in [
            "/",
            "/a",
            "/a/b/",
            "/adm/admin",
            "/a.b/c..d/.e",
            "/a;b=c/d:e@f!$&'()*+,=",
        ] {
            assert_eq!(n(p).as_deref(), Ok(p), "{p}");
            assert!(
                matches!(normalize(p.as_bytes()), Ok(Cow::Borrowed(_))),
                "{p}"
            );
        }
        assert_eq!(n("").as_deref(), Ok("/"));
    }

    #[test]
    fn every_spelling_of_one_path_is_one_path() {
        for p in [
            "/adm/%61dmin",
            "/adm//admin",
            "/adm/./admin",
            "/adm/x/../admin",
            "/adm/x/%2e%2E/admin",
            "/adm/x/.%2e/admin",
            "//adm///admin",
            "/./adm/admin",
            "/adm/%61%64%6D%69%6E",
        ] {
            assert_eq!(n(p).as_deref(), Ok("/adm/admin"), "{p}");
        }
        assert_eq!(n("/open/../private/x").as_deref(), Ok("/private/x"));
        assert_eq!(n("/a/b/..").as_deref(), Ok("/a/"));
        assert_eq!(n("/a/b/.").as_deref(), Ok("/a/b/"));
        assert_eq!(n("/a/..").as_deref(), Ok("/"));
        assert_eq!(n("/a//").as_deref(), Ok("/a/"));
    }

    #[test]
    fn reserved_escapes_stay_encoded_in_upper_case() {
        assert_eq!(n("/a%3fb").as_deref(), Ok("/a%3Fb"));
        assert_eq!(n("/a%20b").as_deref(), Ok("/a%20b"));
        assert_eq!(n("/caf%c3%a9").as_deref(), Ok("/caf%C3%A9"));
        assert_eq!(n("/caf\u{e9}").as_deref(), Ok("/caf%C3%A9"));
        assert_eq!(n("/adm/admi\u{e9}").as_deref(), Ok("/adm/admi%C3%A9"));
    }

    #[test]
    fn ambiguous_or_invalid_paths_are_refused() {
        assert_eq!(n("/a%2Fb"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a%2fb"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a%5cb"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a\\b"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a%00"), Err(PathError::Control));
        assert_eq!(n("/a%0d%0a"), Err(PathError::Control));
        assert_eq!(n("/a b"), Err(PathError::Control));
        assert_eq!(n("/a%"), Err(PathError::BadEscape));
        assert_eq!(n("/a%4"), Err(PathError::BadEscape));
        assert_eq!(n("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(n("/.."), Err(PathError::AboveRoot));
        assert_eq!(n("/a/../../b"), Err(PathError::AboveRoot));
        assert_eq!(n("a/b"), Err(PathError::NotAbsolute));
        assert_eq!(normalize(b"/a\xc3"), Err(PathError::NotUtf8));
        assert_eq!(normalize(b"/a\xff/b"), Err(PathError::NotUtf8));
    }

    #[test]
    fn the_canonical_form_is_a_fixed_point() {
        for p in [
            "/adm/%61dmin",
            "/a%3fb/./c/",
            "/caf\u{e9}//x/..",
            "/x/%7e%41",
        ] {
            let once = n(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(n(&once).as_deref(), Ok(once.as_str()), "{p}");
        }
    }
}
