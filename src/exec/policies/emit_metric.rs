//! `<emit-metric name value namespace><dimension name value/>...</emit-metric>`: a custom
//! metric, exported as the Prometheus counter `gatehouse_custom_<name>_total` (the sum of the
//! values emitted) with a `namespace` label and one label per dimension (names made Prometheus
//! labels: `API ID` -> `api_id`). APIM sends these to Application Insights; here they appear
//! on the admin listener's `/metrics`.
//!
//! `name` and `namespace` (default `API Management`) are literals, `value` (default 1) may be an
//! expression. A dimension without `value` must be one of APIM's default dimensions, filled
//! from the request: API ID, Operation ID, Product ID, Subscription ID, User ID (empty: no
//! user model), Location (empty), Gateway ID (the gateway's `name`), Backend ID (outbound).
//! At most 10 dimensions, as APIM allows. Dimension names are literals here (APIM also takes an
//! expression; a Prometheus label name cannot change per request). Each metric keeps at most
//! `MAX_CUSTOM_SERIES` label combinations; values past that, negative values and values with
//! other dimensions than the metric's first are dropped and counted
//! (`gatehouse_custom_metric_dropped_total`).

use super::*;
use crate::exec::value;
use crate::observe::metrics;

/// APIM's default dimensions, which take their value from the request.
const DEFAULTS: &[&str] = &[
    "API ID",
    "Operation ID",
    "Product ID",
    "User ID",
    "Subscription ID",
    "Location",
    "Gateway ID",
    "Backend ID",
];

const MAX_DIMENSIONS: usize = 10;

#[derive(Clone, Debug)]
pub struct EmitMetric {
    pub name: String,
    pub namespace: String,
    pub value: Val<String>,
    /// (name, value; `None` = a default dimension).
    pub dimensions: Vec<(String, Option<Val<String>>)>,
}

impl Policy for EmitMetric {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        let literal = |s: &str| Ok(s.trim().to_string());
        let name = r.parsed_literal("name", literal);
        if r.el.attr("name").is_none() {
            r.diags.error(
                "P012",
                r.el.span.clone(),
                "<emit-metric> needs attribute `name`",
            );
        }
        let namespace = r
            .parsed_literal("namespace", literal)
            .unwrap_or_else(|| "API Management".into());
        let value = r
            .value("value", |s| {
                s.trim()
                    .parse::<f64>()
                    .map(|_| s.trim().to_string())
                    .map_err(|_| crate::invalid!("value must be a number, found {s:?}"))
            })
            .unwrap_or(Val::Lit("1".into()));
        let mut dimensions = Vec::new();
        for child in r.items("dimension") {
            let mut cr = r.child(child);
            cr.no_children();
            let Some(dname) = cr.parsed_literal("name", literal) else {
                if child.attr("name").is_none() {
                    cr.diags.error(
                        "P012",
                        child.span.clone(),
                        "<dimension> needs attribute `name`",
                    );
                }
                cr.finish();
                continue;
            };
            let dvalue = cr.value("value", |s| Ok(s.to_string()));
            if dvalue.is_none() && !DEFAULTS.contains(&dname.as_str()) {
                cr.diags.error(
                    "P012",
                    child.span.clone(),
                    format!(
                        "<dimension name=\"{dname}\"> needs a `value`: only APIM's default dimensions ({}) take theirs from the request",
                        DEFAULTS.join(", ")
                    ),
                );
            }
            cr.finish();
            dimensions.push((dname, dvalue));
        }
        if dimensions.len() > MAX_DIMENSIONS {
            r.diags.error(
                "P012",
                r.el.span.clone(),
                format!("<emit-metric> takes at most {MAX_DIMENSIONS} dimensions"),
            );
        }
        Some(EmitMetric {
            name: name?,
            namespace,
            value,
            dimensions,
        })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.value, f);
        for (_, v) in &self.dimensions {
            if let Some(v) = v {
                visit_val(v, f);
            }
        }
    }
}

impl RunsNow for EmitMetric {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let raw = value(&self.value, cx)?.into_owned();
        let amount = raw.trim().parse::<f64>().map_err(|_| {
            StepError::expression(format!("emit-metric value must be a number, found {raw:?}"))
        })?;
        let mut dims = Vec::with_capacity(self.dimensions.len());
        for (name, v) in &self.dimensions {
            let v = match v {
                Some(v) => value(v, cx)?.into_owned(),
                None => default_dimension(name, cx),
            };
            dims.push((name.clone(), v));
        }
        metrics::emit_custom(&self.name, &self.namespace, &dims, amount);
        Ok(Step::Next)
    }
}

fn default_dimension(name: &str, cx: &ExecCtx) -> String {
    let info = &cx.req.info;
    let gw = cx.gw;
    match name {
        "API ID" => info.api.map(|a| gw.apis[a].id.clone()),
        "Operation ID" => info
            .api
            .zip(info.operation)
            .map(|(a, o)| gw.apis[a].operations[o].id.clone()),
        "Product ID" => info.product.map(|p| gw.products[p].id.clone()),
        "Subscription ID" => info
            .subscription
            .and_then(|s| gw.subscriptions.list.get(s))
            .map(|s| s.id.clone()),
        "Gateway ID" => Some(gw.name.clone()),
        "Backend ID" => cx.req.target.backend.map(|b| gw.backends[b].id.clone()),
        _ => None,
    }
    .unwrap_or_default()
}
