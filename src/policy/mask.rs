//! Finding policy expressions (`@(...)`, `@{...}`) in raw policy text, so that the raw `"`, `<`,
//! `>` and `&&` real documents put inside them can be masked before the XML reader runs
//! (apim-reference.md §1.1). The scanner knows C# strings, verbatim and interpolated strings,
//! chars and comments, and treats `&quot;` / `&apos;` as quotes.

/// Byte ranges `[start, end)` of every expression that starts a value (after a quote or `>`,
/// allowing whitespace). An unterminated expression yields `Err(start)`.
pub fn find_expressions(text: &str) -> Result<Vec<(usize, usize)>, usize> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i..].starts_with(b"<!--") {
            i = find(b, i + 4, b"-->").map_or(b.len(), |e| e + 3);
            continue;
        }
        if b[i..].starts_with(b"<![CDATA[") {
            i = find(b, i + 9, b"]]>").map_or(b.len(), |e| e + 3);
            continue;
        }
        if b[i] == b'@' && (b[i + 1] == b'(' || b[i + 1] == b'{') && starts_value(b, i) {
            let end = scan_code(b, i + 1).ok_or(i)?;
            out.push((i, end));
            i = end;
            continue;
        }
        i += 1;
    }
    Ok(out)
}

/// Replace each expression's bytes with `_`, keeping every byte offset.
pub fn mask(text: &str, ranges: &[(usize, usize)]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for &(s, e) in ranges {
        for b in &mut bytes[s..e] {
            *b = b'_';
        }
    }
    // Only whole UTF-8 sequences were replaced by ASCII, so this cannot fail; fall back anyway.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn find(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    (from..b.len().saturating_sub(pat.len() - 1)).find(|&k| b[k..].starts_with(pat))
}

fn starts_value(b: &[u8], at: usize) -> bool {
    let mut k = at;
    while k > 0 {
        k -= 1;
        match b[k] {
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            b'"' | b'\'' | b'>' => return true,
            _ => return false,
        }
    }
    false
}

fn quote_at(b: &[u8], i: usize) -> Option<(u8, usize)> {
    match *b.get(i)? {
        b'"' => Some((b'"', 1)),
        b'\'' => Some((b'\'', 1)),
        b'&' if b[i..].starts_with(b"&quot;") => Some((b'"', 6)),
        b'&' if b[i..].starts_with(b"&apos;") => Some((b'\'', 6)),
        _ => None,
    }
}

/// Scan balanced code starting at an opening bracket; returns the offset after its closer.
fn scan_code(b: &[u8], open: usize) -> Option<usize> {
    let mut stack: Vec<u8> = vec![closer(b[open])];
    let mut i = open + 1;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i = find(b, i + 2, b"*/")? + 2;
            continue;
        }
        // String prefixes: @"..", $"..", $@"..", @$"..
        let (verbatim, interp, skip) = match c {
            b'@' if b.get(i + 1) == Some(&b'$') => (true, true, 2),
            b'$' if b.get(i + 1) == Some(&b'@') => (true, true, 2),
            b'@' => (true, false, 1),
            b'$' => (false, true, 1),
            _ => (false, false, 0),
        };
        if skip > 0 {
            if let Some((b'"', qlen)) = quote_at(b, i + skip) {
                i = scan_string(b, i + skip + qlen, verbatim, interp)?;
                continue;
            }
        }
        if let Some((q, qlen)) = quote_at(b, i) {
            if q == b'"' {
                i = scan_string(b, i + qlen, false, false)?;
            } else {
                i = scan_char(b, i + qlen)?;
            }
            continue;
        }
        match c {
            b'(' | b'{' | b'[' => stack.push(closer(c)),
            b')' | b'}' | b']' => {
                if stack.pop() != Some(c) {
                    return None;
                }
                if stack.is_empty() {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn closer(open: u8) -> u8 {
    match open {
        b'(' => b')',
        b'[' => b']',
        _ => b'}',
    }
}

/// Scan a string body (after the opening quote); returns the offset after the closing quote.
fn scan_string(b: &[u8], mut i: usize, verbatim: bool, interp: bool) -> Option<usize> {
    while i < b.len() {
        if let Some((b'"', qlen)) = quote_at(b, i) {
            if verbatim {
                if let Some((b'"', q2)) = quote_at(b, i + qlen) {
                    i += qlen + q2;
                    continue;
                }
            }
            return Some(i + qlen);
        }
        match b[i] {
            b'\\' if !verbatim => i += 2,
            b'{' if interp => {
                if b.get(i + 1) == Some(&b'{') {
                    i += 2;
                } else {
                    i = scan_code(b, i)?;
                }
            }
            _ => i += 1,
        }
    }
    None
}

fn scan_char(b: &[u8], mut i: usize) -> Option<usize> {
    while i < b.len() {
        if let Some((b'\'', qlen)) = quote_at(b, i) {
            return Some(i + qlen);
        }
        if b[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exprs(t: &str) -> Vec<&str> {
        find_expressions(t)
            .unwrap_or_default()
            .into_iter()
            .map(|(s, e)| &t[s..e])
            .collect()
    }

    #[test]
    fn raw_quotes_and_operators() {
        let t = r#"<when condition="@(context.Request.Method == "POST" && x < 3)">"#;
        assert_eq!(
            exprs(t),
            vec![r#"@(context.Request.Method == "POST" && x < 3)"#]
        );
    }

    #[test]
    fn braces_in_strings_and_interpolation() {
        let t = r#"<set-body>@{ var s = $"{a["k"]} )"; return s + "}"; }</set-body>"#;
        assert_eq!(
            exprs(t),
            vec![r#"@{ var s = $"{a["k"]} )"; return s + "}"; }"#]
        );
    }

    #[test]
    fn escaped_quotes_count_as_quotes() {
        let t = r#"<x v="@(a == &quot;)&quot;)"/>"#;
        assert_eq!(exprs(t), vec![r#"@(a == &quot;)&quot;)"#]);
    }

    #[test]
    fn mixed_text_is_not_an_expression() {
        assert!(exprs(r#"<x v="abc @(1)"/>"#).is_empty());
    }

    #[test]
    fn comments_and_verbatim() {
        let t = "<v>@{ // ) not a closer\n return @\"a\"\"b)\"; }</v><!-- @( -->";
        assert_eq!(exprs(t).len(), 1);
    }

    #[test]
    fn fuzz_regressions() {
        // Found by `cargo fuzz run xml_reader`: a string prefix at the very end of the input.
        assert!(find_expressions("<a>@(x $").is_err());
        assert!(find_expressions("<a>@(@").is_err());
    }

    #[test]
    fn unterminated_is_an_error() {
        assert_eq!(find_expressions(r#"<x v="@(a + (b)"/>"#), Err(6));
    }
}
