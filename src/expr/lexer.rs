//! Tokens of the C# subset. Interpolated strings are split into literal text and holes here;
//! each hole is parsed later as an expression of its own, keeping its source offset.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    Int(i64, IntKind),
    Double(f64),
    Str(String),
    Char(char),
    /// Parts of `$"..."`: literal text, or a hole `{expr[,align][:format]}` with the hole's
    /// source and its byte offset in the expression source.
    Interp(Vec<InterpPart>),
    Punct(&'static str),
    Eof,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntKind {
    Int,
    Long,
    UInt,
    ULong,
}

#[derive(Clone, Debug, PartialEq)]
pub enum InterpPart {
    Text(String),
    Hole {
        src: String,
        offset: usize,
        format: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    /// Byte offset of the token in the expression source.
    pub at: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    pub at: usize,
    pub message: String,
}

impl fmt::Display for LexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

const PUNCTS: [&str; 49] = [
    "??=", "<<=", ">>=", "?.", "?[", "??", "=>", "==", "!=", "<=", ">=", "&&", "||", "++", "--",
    "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<", "::", "(", ")", "{", "}", "[", "]", ",",
    ";", ".", "?", ":", "<", ">", "!", "+", "-", "*", "/", "%", "=", "&", "|", "^", "~",
];

pub fn lex(src: &str) -> Result<Vec<Token>, LexError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        // No-break space (U+00A0) and a byte-order mark (U+FEFF), which documents copied from
        // web pages and editors carry, are whitespace too.
        if b[i..].starts_with("\u{a0}".as_bytes()) || b[i..].starts_with("\u{feff}".as_bytes()) {
            i += if c == 0xC2 { 2 } else { 3 };
            continue;
        }
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if b[i..].starts_with(b"/*") {
            let end = src[i + 2..].find("*/").ok_or(LexError {
                at: i,
                message: "unterminated comment".into(),
            })?;
            i += end + 4;
            continue;
        }
        let start = i;
        // Strings: "..", @"..", $"..", $@"..", @$".."
        let (verbatim, interp, prefix) = match (c, b.get(i + 1), b.get(i + 2)) {
            (b'"', _, _) => (false, false, 0),
            (b'@', Some(b'"'), _) => (true, false, 1),
            (b'$', Some(b'"'), _) => (false, true, 1),
            (b'$', Some(b'@'), Some(b'"')) | (b'@', Some(b'$'), Some(b'"')) => (true, true, 2),
            _ => (false, false, usize::MAX),
        };
        if prefix != usize::MAX {
            let (tok, end) = lex_string(src, i + prefix + 1, verbatim, interp)?;
            out.push(Token { tok, at: start });
            i = end;
            continue;
        }
        if c == b'\'' {
            let (ch, end) = lex_char(src, i + 1)?;
            out.push(Token {
                tok: Tok::Char(ch),
                at: start,
            });
            i = end;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let (tok, end) = lex_number(src, i)?;
            out.push(Token { tok, at: start });
            i = end;
            continue;
        }
        if c == b'_'
            || c.is_ascii_alphabetic()
            || c == b'@'
                && b.get(i + 1)
                    .is_some_and(|d| d.is_ascii_alphabetic() || *d == b'_')
            || c >= 0x80
        {
            if c == b'@' {
                i += 1; // @identifier: a keyword used as a name
            }
            let s = i;
            while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric() || b[i] >= 0x80) {
                i += 1;
            }
            let name = src.get(s..i).ok_or(LexError {
                at: s,
                message: "invalid identifier".into(),
            })?;
            out.push(Token {
                tok: Tok::Ident(name.to_string()),
                at: start,
            });
            continue;
        }
        match PUNCTS.iter().find(|p| b[i..].starts_with(p.as_bytes())) {
            Some(p) => {
                out.push(Token {
                    tok: Tok::Punct(p),
                    at: start,
                });
                i += p.len();
            }
            None => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(LexError {
                    at: i,
                    message: format!("unexpected character `{ch}`"),
                });
            }
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        at: src.len(),
    });
    Ok(out)
}

fn escape(src: &str, i: usize) -> Result<(char, usize), LexError> {
    let b = src.as_bytes();
    let e = *b.get(i).ok_or(LexError {
        at: i,
        message: "unterminated escape".into(),
    })?;
    let simple = match e {
        b'n' => Some('\n'),
        b'r' => Some('\r'),
        b't' => Some('\t'),
        b'0' => Some('\0'),
        b'\\' => Some('\\'),
        b'"' => Some('"'),
        b'\'' => Some('\''),
        b'a' => Some('\u{7}'),
        b'b' => Some('\u{8}'),
        b'f' => Some('\u{c}'),
        b'v' => Some('\u{b}'),
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((c, i + 1));
    }
    let (len, skip) = match e {
        b'u' => (4, 1),
        b'U' => (8, 1),
        b'x' => {
            let n = b[i + 1..]
                .iter()
                .take(4)
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
            (n, 1)
        }
        _ => {
            return Err(LexError {
                at: i - 1,
                message: format!("unknown escape `\\{}`", e as char),
            })
        }
    };
    let hex = src.get(i + skip..i + skip + len).ok_or(LexError {
        at: i,
        message: "short unicode escape".into(),
    })?;
    let v = u32::from_str_radix(hex, 16).map_err(|_| LexError {
        at: i,
        message: "invalid unicode escape".into(),
    })?;
    let c = char::from_u32(v).ok_or(LexError {
        at: i,
        message: "invalid unicode escape".into(),
    })?;
    Ok((c, i + skip + len))
}

fn lex_char(src: &str, mut i: usize) -> Result<(char, usize), LexError> {
    let b = src.as_bytes();
    let ch = if b.get(i) == Some(&b'\\') {
        let (c, n) = escape(src, i + 1)?;
        i = n;
        c
    } else {
        let c = src[i..].chars().next().ok_or(LexError {
            at: i,
            message: "unterminated char".into(),
        })?;
        i += c.len_utf8();
        c
    };
    if b.get(i) != Some(&b'\'') {
        return Err(LexError {
            at: i,
            message: "unterminated char literal".into(),
        });
    }
    Ok((ch, i + 1))
}

/// Lex a string body starting after the opening quote.
fn lex_string(
    src: &str,
    mut i: usize,
    verbatim: bool,
    interp: bool,
) -> Result<(Tok, usize), LexError> {
    let b = src.as_bytes();
    let start = i;
    let mut text = String::new();
    let mut parts = Vec::new();
    loop {
        let Some(&c) = b.get(i) else {
            return Err(LexError {
                at: start.saturating_sub(1),
                message: "unterminated string".into(),
            });
        };
        match c {
            b'"' if verbatim && b.get(i + 1) == Some(&b'"') => {
                text.push('"');
                i += 2;
            }
            b'"' => {
                i += 1;
                break;
            }
            b'\\' if !verbatim => {
                let (ch, n) = escape(src, i + 1)?;
                text.push(ch);
                i = n;
            }
            b'{' if interp && b.get(i + 1) == Some(&b'{') => {
                text.push('{');
                i += 2;
            }
            b'}' if interp && b.get(i + 1) == Some(&b'}') => {
                text.push('}');
                i += 2;
            }
            b'{' if interp => {
                if !text.is_empty() {
                    parts.push(InterpPart::Text(std::mem::take(&mut text)));
                }
                let (hole, format, end) = hole(src, i + 1)?;
                parts.push(InterpPart::Hole {
                    src: src[i + 1..i + 1 + hole].to_string(),
                    offset: i + 1,
                    format,
                });
                i = end;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('\0');
                text.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    if interp {
        if !text.is_empty() {
            parts.push(InterpPart::Text(text));
        }
        Ok((Tok::Interp(parts), i))
    } else {
        Ok((Tok::Str(text), i))
    }
}

/// Find the end of an interpolation hole starting at `i` (after `{`): returns the length of the
/// expression part, the format (after a top-level `:`), and the offset after `}`.
fn hole(src: &str, i: usize) -> Result<(usize, Option<String>, usize), LexError> {
    let b = src.as_bytes();
    let mut depth = 0i32;
    let mut k = i;
    let mut expr_end = None;
    while k < b.len() {
        match b[k] {
            b'"' => {
                let (_, end) = lex_string(src, k + 1, false, false)?;
                k = end;
                continue;
            }
            b'@' | b'$' if b.get(k + 1) == Some(&b'"') => {
                let (_, end) = lex_string(src, k + 2, b[k] == b'@', b[k] == b'$')?;
                k = end;
                continue;
            }
            b'\'' => {
                let (_, end) = lex_char(src, k + 1)?;
                k = end;
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' => depth -= 1,
            b'?' if depth == 0 => {
                // A conditional inside a hole must be parenthesised in C#; `?` here is `?.`/`??`.
            }
            b':' if depth == 0 && b.get(k + 1) != Some(&b':') && expr_end.is_none() => {
                expr_end = Some(k)
            }
            // `{x,10}` / `{x,-5:D3}`: alignment, then an optional format.
            b',' if depth == 0 && expr_end.is_none() => expr_end = Some(k),
            b'}' if depth == 0 => {
                let e = expr_end.unwrap_or(k);
                let format = expr_end.map(|f| {
                    if b[f] == b',' {
                        src[f..k].to_string()
                    } else {
                        src[f + 1..k].to_string()
                    }
                });
                return Ok((e - i, format, k + 1));
            }
            b'}' => depth -= 1,
            _ => {}
        }
        k += 1;
    }
    Err(LexError {
        at: i - 1,
        message: "unterminated interpolation hole".into(),
    })
}

fn lex_number(src: &str, start: usize) -> Result<(Tok, usize), LexError> {
    let b = src.as_bytes();
    let mut i = start;
    if b[i..].starts_with(b"0x") || b[i..].starts_with(b"0X") {
        i += 2;
        let s = i;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'_') {
            i += 1;
        }
        let v = i64::from_str_radix(&src[s..i].replace('_', ""), 16).map_err(|_| LexError {
            at: start,
            message: "invalid hex literal".into(),
        })?;
        let (kind, end) = int_suffix(b, i);
        return Ok((Tok::Int(v, kind), end));
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut is_float = false;
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
        is_float = true;
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut k = i + 1;
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if b.get(k).is_some_and(|d| d.is_ascii_digit()) {
            is_float = true;
            i = k;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    let text = src[start..i].replace('_', "");
    if let Some(b'd' | b'D' | b'f' | b'F' | b'm' | b'M') = b.get(i) {
        let v: f64 = text.parse().map_err(|_| LexError {
            at: start,
            message: "invalid number".into(),
        })?;
        return Ok((Tok::Double(v), i + 1));
    }
    if is_float {
        let v: f64 = text.parse().map_err(|_| LexError {
            at: start,
            message: "invalid number".into(),
        })?;
        return Ok((Tok::Double(v), i));
    }
    let (kind, end) = int_suffix(b, i);
    match text.parse::<i64>() {
        Ok(v) => {
            // An unsuffixed literal that does not fit an int is a long, as in C#.
            let kind = if kind == IntKind::Int && i32::try_from(v).is_err() {
                IntKind::Long
            } else {
                kind
            };
            Ok((Tok::Int(v, kind), end))
        }
        Err(_) => Err(LexError {
            at: start,
            message: format!("integer literal {text} is too large"),
        }),
    }
}

fn int_suffix(b: &[u8], i: usize) -> (IntKind, usize) {
    let s = |k: usize| b.get(k).map(|c| c.to_ascii_lowercase());
    match (s(i), s(i + 1)) {
        (Some(b'u'), Some(b'l')) | (Some(b'l'), Some(b'u')) => (IntKind::ULong, i + 2),
        (Some(b'l'), _) => (IntKind::Long, i + 1),
        (Some(b'u'), _) => (IntKind::UInt, i + 1),
        _ => (IntKind::Int, i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn basics() {
        assert_eq!(
            toks(r#"a?.b ?? "x\n" + 1L + 2.5 + 'c'"#),
            vec![
                Tok::Ident("a".into()),
                Tok::Punct("?."),
                Tok::Ident("b".into()),
                Tok::Punct("??"),
                Tok::Str("x\n".into()),
                Tok::Punct("+"),
                Tok::Int(1, IntKind::Long),
                Tok::Punct("+"),
                Tok::Double(2.5),
                Tok::Punct("+"),
                Tok::Char('c'),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn verbatim_and_interpolated() {
        assert_eq!(
            toks(r#"@"a""b\c""#),
            vec![Tok::Str("a\"b\\c".into()), Tok::Eof]
        );
        let t = toks(r#"$"x{a["k"]}y{n:D3}{{z}}""#);
        assert_eq!(
            t[0],
            Tok::Interp(vec![
                InterpPart::Text("x".into()),
                InterpPart::Hole {
                    src: "a[\"k\"]".into(),
                    offset: 4,
                    format: None
                },
                InterpPart::Text("y".into()),
                InterpPart::Hole {
                    src: "n".into(),
                    offset: 13,
                    format: Some("D3".into())
                },
                InterpPart::Text("{z}".into()),
            ])
        );
    }

    #[test]
    fn errors() {
        assert!(lex("\"abc").is_err());
        assert!(lex("a # b").is_err());
        assert_eq!(
            lex("99999999999").map(|t| t[0].tok.clone()),
            Ok(Tok::Int(99999999999, IntKind::Long))
        );
    }
}
