//! Fragment expansion, scope composition with `<base/>`, and the legality checks that need the
//! expanded or composed form (apim-reference.md §1.2, §4.2, Appendix A).

use ahash::AHashMap;

use super::{allowed_sections, PolicyDoc, Stmt, StmtKind};
use crate::diag::Diagnostics;
use crate::policy::catalog;
use crate::policy::{Scope, Section};

pub type Fragments = AHashMap<String, Vec<Stmt>>;

/// Replace every `<include-fragment>` with the fragment's statements (verbatim, at load).
pub fn expand_fragments(
    stmts: &[Stmt],
    fragments: &Fragments,
    diags: &mut Diagnostics,
) -> Vec<Stmt> {
    let mut out = Vec::with_capacity(stmts.len());
    for s in stmts {
        match &s.kind {
            StmtKind::Choose(c) => {
                let mut s = s.clone();
                let whens = c
                    .whens
                    .iter()
                    .map(|(cond, body)| (cond.clone(), expand_fragments(body, fragments, diags)))
                    .collect();
                let otherwise = c
                    .otherwise
                    .as_ref()
                    .map(|b| expand_fragments(b, fragments, diags));
                s.kind = StmtKind::Choose(super::choose::Choose { whens, otherwise });
                out.push(s);
            }
            StmtKind::IncludeFragment(super::base::IncludeFragment { id }) => {
                match fragments.get(id) {
                    Some(body) => out.extend(body.iter().cloned().map(|mut f| {
                        set_scope(&mut f, s.scope);
                        f
                    })),
                    None => diags.error(
                        "P031",
                        s.span.clone(),
                        format!("unknown policy fragment `{id}`"),
                    ),
                }
            }
            _ => out.push(s.clone()),
        }
    }
    out
}

fn set_scope(s: &mut Stmt, scope: Scope) {
    s.scope = scope;
    if let StmtKind::Choose(c) = &mut s.kind {
        for (_, body) in &mut c.whens {
            body.iter_mut().for_each(|x| set_scope(x, scope));
        }
        if let Some(b) = &mut c.otherwise {
            b.iter_mut().for_each(|x| set_scope(x, scope));
        }
    }
}

/// Expand fragments in every section of a document.
pub fn expand_document(
    doc: &PolicyDoc,
    fragments: &Fragments,
    diags: &mut Diagnostics,
) -> PolicyDoc {
    let mut out = PolicyDoc::default();
    for s in Section::ALL {
        out.sections[s.index()] = doc
            .section(s)
            .map(|st| expand_fragments(st, fragments, diags));
    }
    out
}

/// P040: a statement in a section its policy may not appear in.
fn check_section(section: Section, s: &Stmt, diags: &mut Diagnostics) {
    let Some(mask) = allowed_sections(s.element) else {
        return;
    };
    if !catalog::allowed_in(mask, section) {
        diags.error(
            "P040",
            s.span.clone(),
            format!(
                "<{}> is not allowed in <{}>; it may appear in: {}",
                s.element,
                section.name(),
                catalog::sections_of(mask)
            ),
        );
    }
}

/// Check where each statement of an (expanded) document may appear.
pub fn check_legality(doc: &PolicyDoc, diags: &mut Diagnostics) {
    fn nested(section: Section, s: &Stmt, in_retry: bool, diags: &mut Diagnostics) {
        let in_retry = in_retry || matches!(s.kind, StmtKind::Retry(_));
        for c in s.children() {
            if matches!(c.kind, StmtKind::Base(_)) {
                diags.error(
                    "P045",
                    c.span.clone(),
                    "<base/> must be a direct child of a section",
                );
            }
            let in_limit = matches!(s.kind, StmtKind::LimitConcurrency(_));
            if matches!(c.kind, StmtKind::ForwardRequest(_)) && !in_limit && !in_retry {
                diags.error("P044", c.span.clone(), "<forward-request> inside <choose> is supported only within <retry>; place it directly in <backend>");
            }
            check_section(section, c, diags);
            nested(section, c, in_retry, diags);
        }
    }
    for section in Section::ALL {
        let Some(stmts) = doc.section(section) else {
            continue;
        };
        let mut bases = 0;
        for s in stmts {
            nested(section, s, false, diags);
            check_section(section, s, diags);
            match (&s.kind, s.scope) {
                (StmtKind::RateLimit(_), Scope::Global) => diags.error("P047", s.span.clone(), "<rate-limit> is allowed only at product, API and operation scope (use rate-limit-by-key at global scope)"),
                (StmtKind::Quota(_), scope) if scope != Scope::Product => diags.error("P047", s.span.clone(), "<quota> is allowed only at product scope (use quota-by-key elsewhere)"),
                _ => {}
            }
            if matches!(s.kind, StmtKind::Base(_)) {
                bases += 1;
                if bases > 1 {
                    diags.error(
                        "P041",
                        s.span.clone(),
                        format!("<base/> may appear only once in <{}>", section.name()),
                    );
                }
            }
        }
    }
}

/// Compose one section across a scope chain ordered broadest first (global, product?, api,
/// operation): start from the narrowest document and replace `<base/>` with the parent's
/// section, recursively. An omitted section acts as `<base/>`.
pub fn compose(chain: &[&PolicyDoc], section: Section) -> Vec<Stmt> {
    fn eff(chain: &[&PolicyDoc], i: usize, section: Section, out: &mut Vec<Stmt>) {
        match chain[i].section(section) {
            None => {
                if i > 0 {
                    eff(chain, i - 1, section, out);
                }
            }
            Some(stmts) => {
                for s in stmts {
                    if matches!(s.kind, StmtKind::Base(_)) {
                        if i > 0 {
                            eff(chain, i - 1, section, out);
                        }
                    } else {
                        out.push(s.clone());
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    if !chain.is_empty() {
        eff(chain, chain.len() - 1, section, &mut out);
    }
    out
}

/// Checks on a composed section: once-only policies.
pub fn check_composed(section: Section, stmts: &[Stmt], diags: &mut Diagnostics) {
    if section == Section::Inbound {
        // cors answers preflights; policies before it would run for them first (and a key
        // check or rate limit would refuse a browser's preflight).
        if let Some(i) = stmts.iter().position(|s| s.element == "cors") {
            if let Some(first) = stmts[..i].iter().find(|s| s.element != "cors") {
                diags.warning(
                    "P049",
                    stmts[i].span.clone(),
                    format!(
                        "<cors> should be the first inbound policy; <{}> at {} runs before it, also for preflights",
                        first.element, first.span
                    ),
                );
            }
        }
    }
    for (name, what) in [
        ("rate-limit", "rate-limit"),
        ("quota", "quota"),
        ("cache-lookup", "cache-lookup"),
        ("cache-store", "cache-store"),
    ] {
        let found: Vec<&Stmt> = stmts.iter().filter(|s| s.element == name).collect();
        for extra in found.iter().skip(1) {
            diags.error(
                "P042",
                extra.span.clone(),
                format!(
                    "<{what}> may appear only once in the effective policy (first at {})",
                    found[0].span
                ),
            );
        }
    }
    if section == Section::Backend {
        fn collect<'a>(stmts: &'a [Stmt], out: &mut Vec<&'a Stmt>) {
            for s in stmts {
                match &s.kind {
                    StmtKind::ForwardRequest(_) => out.push(s),
                    StmtKind::LimitConcurrency(super::limit_concurrency::LimitConcurrency {
                        body,
                        ..
                    }) => collect(body, out),
                    StmtKind::Retry(r) => collect(&r.body, out),
                    _ => {}
                }
            }
        }
        let mut forwards: Vec<&Stmt> = Vec::new();
        collect(stmts, &mut forwards);
        for extra in forwards.iter().skip(1) {
            diags.error(
                "P042",
                extra.span.clone(),
                format!("<forward-request> may appear only once in the effective backend section (first at {})", forwards[0].span),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;

    fn st(kind: StmtKind, element: &'static str, scope: Scope, tag: &str) -> Stmt {
        Stmt {
            kind,
            element,
            id: None,
            span: Span::file("t"),
            scope,
            display: tag.into(),
        }
    }

    fn body(tag: &str, scope: Scope) -> Stmt {
        st(
            StmtKind::SetBody(super::super::set_body::SetBody(
                super::super::set_body::Body::Val(crate::policy::Val::Lit(tag.into())),
            )),
            "set-body",
            scope,
            tag,
        )
    }

    fn base(scope: Scope) -> Stmt {
        st(
            StmtKind::Base(super::super::base::Base),
            "base",
            scope,
            "base",
        )
    }

    fn doc(inbound: Option<Vec<Stmt>>) -> PolicyDoc {
        let mut d = PolicyDoc::default();
        d.sections[0] = inbound;
        d
    }

    fn names(v: &[Stmt]) -> Vec<&str> {
        v.iter().map(|s| &*s.display).collect()
    }

    #[test]
    fn base_first_last_absent() {
        let g = doc(Some(vec![body("g", Scope::Global)]));
        let a = doc(Some(vec![
            body("a1", Scope::Api),
            base(Scope::Api),
            body("a2", Scope::Api),
        ]));
        let o_first = doc(Some(vec![
            base(Scope::Operation),
            body("o", Scope::Operation),
        ]));
        let o_last = doc(Some(vec![
            body("o", Scope::Operation),
            base(Scope::Operation),
        ]));
        let o_none = doc(Some(vec![body("o", Scope::Operation)]));
        let o_omitted = doc(None);
        assert_eq!(
            names(&compose(&[&g, &a, &o_first], Section::Inbound)),
            ["a1", "g", "a2", "o"]
        );
        assert_eq!(
            names(&compose(&[&g, &a, &o_last], Section::Inbound)),
            ["o", "a1", "g", "a2"]
        );
        assert_eq!(names(&compose(&[&g, &a, &o_none], Section::Inbound)), ["o"]);
        assert_eq!(
            names(&compose(&[&g, &a, &o_omitted], Section::Inbound)),
            ["a1", "g", "a2"]
        );
    }
}
