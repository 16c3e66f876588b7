//! Matching a request to an API (host + path suffix) and an operation (method + URL template),
//! filling `MatchedParameters` (apim-reference.md §1.3 steps 2-3).

use crate::diag::Invalid;
use http::Method;

/// One piece of a URL-template path segment.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Param(String),
}

#[derive(Clone, Debug)]
enum Segment {
    Pieces(Vec<Piece>),
    /// `{*name}`: the rest of the path.
    Rest(String),
}

/// A compiled operation URL template: `/users/{id}?format={fmt}`.
#[derive(Clone, Debug)]
pub struct UrlTemplate {
    segments: Vec<Segment>,
    /// Query parameters the template names: (parameter, placeholder).
    pub query: Vec<(String, String)>,
    /// Literal segments count, for ordering (more specific first).
    pub specificity: usize,
}

impl UrlTemplate {
    pub fn parse(t: &str) -> Result<UrlTemplate, Invalid> {
        let (path, query) = t.split_once('?').unwrap_or((t, ""));
        if !path.starts_with('/') {
            return Err(crate::invalid!("URL template {t:?} must start with '/'"));
        }
        let mut segments = Vec::new();
        let mut specificity = 0;
        let raw: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        for (i, seg) in raw.iter().enumerate() {
            if seg.is_empty() && i + 1 == raw.len() {
                break;
            }
            if let Some(name) = seg.strip_prefix("{*").and_then(|s| s.strip_suffix('}')) {
                if i + 1 != raw.len() {
                    return Err(crate::invalid!(
                        "URL template {t:?}: {{*{name}}} must be the last segment"
                    ));
                }
                segments.push(Segment::Rest(name.to_string()));
                continue;
            }
            let pieces = pieces(seg).map_err(|e| crate::invalid!("URL template {t:?}: {e}"))?;
            if pieces.iter().all(|p| matches!(p, Piece::Lit(_))) {
                specificity += 2;
            } else if pieces.iter().any(|p| matches!(p, Piece::Lit(_))) {
                specificity += 1;
            }
            segments.push(Segment::Pieces(pieces));
        }
        let mut q = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, val) = pair.split_once('=').ok_or_else(|| {
                crate::invalid!("URL template {t:?}: query part {pair:?} must be name={{param}}")
            })?;
            let p = val
                .strip_prefix('{')
                .and_then(|v| v.strip_suffix('}'))
                .ok_or_else(|| {
                    crate::invalid!(
                        "URL template {t:?}: query value {val:?} must be a {{placeholder}}"
                    )
                })?;
            q.push((name.to_string(), p.to_string()));
        }
        Ok(UrlTemplate {
            segments,
            query: q,
            specificity,
        })
    }

    /// Match a path (relative to the API, starting with `/` or empty) and query pairs;
    /// returns the matched parameters.
    pub fn matches(&self, path: &str, query: &[(String, String)]) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let segs: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        let segs: &[&str] = match segs.last() {
            Some(&"") => &segs[..segs.len() - 1],
            _ => &segs,
        };
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                Segment::Rest(name) => {
                    out.push((
                        name.clone(),
                        crate::codec::query::decode(&segs[i.min(segs.len())..].join("/")),
                    ));
                    i = segs.len();
                }
                Segment::Pieces(p) => {
                    let s = segs.get(i)?;
                    match_pieces(p, s, &mut out)?;
                    i += 1;
                }
            }
        }
        if i != segs.len() {
            return None;
        }
        for (name, placeholder) in &self.query {
            let v = query.iter().find(|(k, _)| k == name)?;
            out.push((placeholder.clone(), v.1.clone()));
        }
        Some(out)
    }
}

fn pieces(seg: &str) -> Result<Vec<Piece>, Invalid> {
    let mut out = Vec::new();
    let mut rest = seg;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(Piece::Lit(rest[..open].to_string()));
        }
        let close = rest[open..].find('}').ok_or("unclosed '{'")? + open;
        let name = &rest[open + 1..close];
        if name.is_empty() {
            return Err("empty placeholder".into());
        }
        if matches!(out.last(), Some(Piece::Param(_))) {
            return Err("two placeholders need literal text between them".into());
        }
        out.push(Piece::Param(name.to_string()));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Lit(rest.to_string()));
    }
    Ok(out)
}

fn match_pieces(pieces: &[Piece], seg: &str, out: &mut Vec<(String, String)>) -> Option<()> {
    let mut rest = seg;
    let mut k = 0;
    while k < pieces.len() {
        match &pieces[k] {
            Piece::Lit(l) => {
                // Bytes, not str slices: `rest` may hold multi-byte characters, and a literal
                // equal to its head ignoring ASCII case ends on a character boundary.
                let head = rest.as_bytes().get(..l.len())?;
                if !head.eq_ignore_ascii_case(l.as_bytes()) {
                    return None;
                }
                rest = rest.get(l.len()..)?;
            }
            Piece::Param(name) => {
                let end = match pieces.get(k + 1) {
                    Some(Piece::Lit(next)) => {
                        rest.to_ascii_lowercase().find(&next.to_ascii_lowercase())?
                    }
                    _ => rest.len(),
                };
                if end == 0 {
                    return None;
                }
                out.push((name.clone(), crate::codec::query::decode(rest.get(..end)?)));
                rest = rest.get(end..)?;
            }
        }
        k += 1;
    }
    rest.is_empty().then_some(())
}

/// Whether `method` matches an operation's method (`*` matches any).
pub fn method_matches(op: &Option<Method>, method: &Method) -> bool {
    op.as_ref().is_none_or(|m| m == method)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(t: &str, path: &str, q: &str) -> Option<Vec<(String, String)>> {
        UrlTemplate::parse(t)
            .unwrap_or_else(|e| panic!("{e}"))
            .matches(path, &crate::codec::query::parse(q))
    }

    #[test]
    fn templates_match() {
        assert_eq!(
            m("/users/{id}", "/users/42", ""),
            Some(vec![("id".into(), "42".into())])
        );
        assert_eq!(m("/users/{id}", "/users/42/x", ""), None);
        assert_eq!(
            m("/users/{id}", "/USERS/a%20b/", ""),
            Some(vec![("id".into(), "a b".into())])
        );
        assert_eq!(m("/", "", ""), Some(vec![]));
        assert_eq!(
            m("/files/{*p}", "/files/a/b", ""),
            Some(vec![("p".into(), "a/b".into())])
        );
        assert_eq!(
            m("/get?a={b}", "/get", "a=1&c=2"),
            Some(vec![("b".into(), "1".into())])
        );
        assert_eq!(m("/get?a={b}", "/get", "c=2"), None);
        assert_eq!(
            m("/{a}.{ext}", "/x.json", ""),
            Some(vec![
                ("a".into(), "x".into()),
                ("ext".into(), "json".into())
            ])
        );
    }

    #[test]
    fn multi_byte_paths_never_panic() {
        // Item 4 of issue 12: slicing a str at a literal's length panicked here.
        assert_eq!(m("/admin", "/admi\u{e9}", ""), None);
        assert_eq!(m("/ab", "/\u{e9}", ""), None);
        assert_eq!(
            m("/{a}.x", "/\u{e9}\u{e9}.x", ""),
            Some(vec![("a".into(), "\u{e9}\u{e9}".into())])
        );
        assert_eq!(m("/\u{e9}t\u{e9}", "/\u{e9}T\u{e9}", ""), Some(vec![]));
        assert_eq!(
            m("/{a}\u{e9}b", "/x\u{e9}b", ""),
            Some(vec![("a".into(), "x".into())])
        );
    }
}
