//! `gatehouse explain`: the effective (composed) policy of one operation in one product
//! context, numbered in execution order. Statements are shown as written, so named values
//! (and with them every secret) appear only as `{{name}}` references.

use crate::diag::Invalid;
use std::fmt::Write;

use super::Gateway;
use crate::exec::Stmt;

pub fn explain(
    gw: &Gateway,
    api_id: &str,
    op_id: &str,
    product: Option<&str>,
) -> Result<String, Invalid> {
    let api = gw
        .apis
        .iter()
        .find(|a| a.id == api_id)
        .ok_or_else(|| crate::invalid!("unknown API `{api_id}`"))?;
    let op = api
        .operations
        .iter()
        .find(|o| o.id == op_id)
        .ok_or_else(|| crate::invalid!("API `{api_id}` has no operation `{op_id}`"))?;
    let idx = match product {
        None => 0,
        Some(p) => {
            let k = api
                .products
                .iter()
                .position(|&i| gw.products[i].id == p)
                .ok_or_else(|| crate::invalid!("product `{p}` does not contain API `{api_id}`"))?;
            k + 1
        }
    };
    let p = &op.pipelines[idx];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!-- effective policy: api \"{}\", operation \"{}\" ({} {}), product {} -->",
        api.id,
        op.id,
        op.method.as_ref().map_or("*", |m| m.as_str()),
        op.url_template,
        product.map_or("(none)".to_string(), |p| format!("\"{p}\""))
    );
    let mut n = 0;
    out.push_str("<policies>\n");
    let mut section = |name: &str, parts: &[&[Stmt]], out: &mut String| {
        let _ = writeln!(out, "  <{name}>");
        for stmts in parts {
            for s in stmts.iter() {
                n += 1;
                let _ = writeln!(
                    out,
                    "    <!-- #{n} {} scope, {} -->",
                    s.scope.name(),
                    s.span
                );
                let _ = writeln!(out, "    {}", s.display);
            }
        }
        let _ = writeln!(out, "  </{name}>");
    };
    section("inbound", &[&p.inbound], &mut out);
    let fwd: Vec<Stmt> = p.forward.iter().map(|f| f.stmt.clone()).collect();
    section(
        "backend",
        &[&p.backend_pre, &fwd, &p.backend_post],
        &mut out,
    );
    section("outbound", &[&p.outbound], &mut out);
    section("on-error", &[&p.on_error], &mut out);
    out.push_str("</policies>\n");
    if p.forward.is_none() {
        out.push_str("<!-- no forward-request: nothing is sent upstream; outbound runs right after inbound -->\n");
    }
    Ok(out)
}
