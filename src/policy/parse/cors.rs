//! `<cors>`.

use super::*;

/// `<cors>` (apim-reference.md §2.6). Origins are normalised `scheme://host[:port]` (default
/// ports dropped) or `*`; methods upper-case (`*` = any); headers lower-case (`*` = any).
#[derive(Clone, Debug)]
pub struct Cors {
    pub allow_credentials: Val<bool>,
    pub terminate_unmatched: Val<bool>,
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    pub max_age: Val<u64>,
    pub headers: Vec<String>,
    pub expose: Vec<String>,
}

impl Cors {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        visit_val(&self.allow_credentials, f);
        visit_val(&self.terminate_unmatched, f);
        visit_val(&self.max_age, f);
    }
}

pub(super) fn cors_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let allow_credentials = r
        .value("allow-credentials", parse_bool)
        .unwrap_or(Val::Lit(false));
    let terminate_unmatched = r
        .value("terminate-unmatched-request", parse_bool)
        .unwrap_or(Val::Lit(true));
    let (mut origins, mut methods, mut headers, mut expose) =
        (Vec::new(), None, Vec::new(), Vec::new());
    let mut max_age = Val::Lit(0);
    let mut saw_origins = false;
    let mut saw_headers = false;
    for child in r.children() {
        let mut cr = r.child(child);
        let (item, list): (&str, u8) = match child.name.as_str() {
            "allowed-origins" => ("origin", 0),
            "allowed-methods" => {
                max_age = cr
                    .value("preflight-result-max-age", parse_u64)
                    .unwrap_or(Val::Lit(0));
                ("method", 1)
            }
            "allowed-headers" => ("header", 2),
            "expose-headers" => ("header", 3),
            other => {
                cr.diags.error(
                    "P014",
                    child.span.clone(),
                    format!("<{other}> is not allowed in <cors>"),
                );
                continue;
            }
        };
        let mut values = Vec::new();
        for g in cr.items(item) {
            let mut gr = cr.child(g);
            gr.no_children();
            if let Some((text, span)) = g.text().map(|t| {
                (
                    substitute(&t.value, &t.span, gr.env, gr.diags),
                    t.span.clone(),
                )
            }) {
                let text = text.trim().to_string();
                let normalised = match list {
                    0 => crate::policy::parse::normalise_origin(&text),
                    1 => Ok(text.to_ascii_uppercase()),
                    _ => Ok(text.to_ascii_lowercase()),
                };
                match normalised {
                    Ok(v) => values.push(v),
                    Err(e) => gr.diags.error("P012", span, format!("<{item}>: {e}")),
                }
            }
            gr.finish();
        }
        cr.finish();
        match list {
            0 => {
                saw_origins = true;
                origins = values;
            }
            1 => methods = Some(values),
            2 => {
                saw_headers = true;
                headers = values;
            }
            _ => expose = values,
        }
    }
    if !saw_origins || origins.is_empty() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<cors> needs <allowed-origins> with at least one <origin>",
        );
    }
    if origins.len() > 1 && origins.iter().any(|o| o == "*") {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<allowed-origins> holds either a single `*` or full origins",
        );
    }
    if !saw_headers {
        r.diags
            .error("P012", r.el.span.clone(), "<cors> needs <allowed-headers>");
    }
    Some(StmtKind::Cors(crate::policy::ast::Cors {
        allow_credentials,
        terminate_unmatched,
        origins,
        methods: methods.unwrap_or_else(|| vec!["GET".into(), "POST".into()]),
        max_age,
        headers,
        expose,
    }))
}

/// `scheme://host[:port]` lower-cased, default port dropped; `*` stays.
pub fn normalise_origin(o: &str) -> Result<String, Invalid> {
    if o == "*" {
        return Ok(o.to_string());
    }
    let (scheme, rest) = o
        .split_once("://")
        .ok_or_else(|| crate::invalid!("{o:?} is not an origin (scheme://host[:port])"))?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = rest.trim_end_matches('/').to_ascii_lowercase();
    if rest.is_empty() || rest.contains('/') {
        return Err(crate::invalid!(
            "{o:?} is not an origin (scheme://host[:port])"
        ));
    }
    let default = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => "",
    };
    let host = rest.strip_suffix(default).unwrap_or(&rest);
    Ok(format!("{scheme}://{host}"))
}
