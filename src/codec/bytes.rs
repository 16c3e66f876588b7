//! Byte-level text edits on bodies that may not be UTF-8.

/// Every occurrence of `from` in `haystack` replaced by `to`, or `None` when there is none (or
/// `from` is empty). Works on bytes, so a body that is not UTF-8 keeps every other byte as it
/// was (a lossy conversion to text would replace them).
pub fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    if from.is_empty() || haystack.len() < from.len() {
        return None;
    }
    let mut out: Option<Vec<u8>> = None;
    let mut start = 0;
    let mut i = 0;
    while i + from.len() <= haystack.len() {
        if haystack[i] == from[0] && haystack[i..].starts_with(from) {
            let o = out.get_or_insert_with(|| Vec::with_capacity(haystack.len()));
            o.extend_from_slice(&haystack[start..i]);
            o.extend_from_slice(to);
            i += from.len();
            start = i;
        } else {
            i += 1;
        }
    }
    let mut o = out?;
    o.extend_from_slice(&haystack[start..]);
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::replace_all;

    #[test]
    fn replaces_without_touching_other_bytes() {
        assert_eq!(
            replace_all(b"a-b-a", b"a", b"xy"),
            Some(b"xy-b-xy".to_vec())
        );
        assert_eq!(replace_all(b"abc", b"z", b"y"), None);
        assert_eq!(replace_all(b"abc", b"", b"y"), None);
        // Invalid UTF-8 around a match stays byte for byte.
        assert_eq!(
            replace_all(b"\xff\xfeURL\x80", b"URL", b"u"),
            Some(b"\xff\xfeu\x80".to_vec())
        );
        assert_eq!(replace_all(b"aaa", b"aa", b"b"), Some(b"ba".to_vec()));
    }
}
