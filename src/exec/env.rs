//! `context` for policy expressions: the engine's request state seen through `ContextEnv`.

use crate::diag::Invalid;
use bytes::Bytes;
use http::HeaderName;

use super::ExecCtx;
use crate::exec::subscriptions::SubScope;
use crate::expr::context::ContextEnv;
use crate::expr::datetime::DateTime;
use crate::expr::value::{Ctx, Obj, UrlData, Value};

fn s(v: &str) -> Value {
    Value::str(v)
}

impl ExecCtx<'_> {
    fn headers(&self, which: Ctx) -> &(dyn super::HeaderStore + Send) {
        match which {
            Ctx::ResponseHeaders => &*self.resp_headers,
            _ => &*self.req_headers,
        }
    }

    fn backend_url(&self) -> UrlData {
        let b = &self.req.target.base;
        UrlData {
            scheme: b.scheme().to_string(),
            host: b.host.clone(),
            port: b.port as i32,
            path: format!("{}{}", b.path, self.req.path),
            query: self.req.query.pairs(),
        }
    }

    fn original_url(&self) -> UrlData {
        let i = &self.req.info;
        UrlData {
            scheme: i.original_scheme.clone(),
            host: i.original_host.clone(),
            port: i.original_port,
            path: i.original_path.clone(),
            query: crate::codec::query::parse(&i.original_query),
        }
    }
}

impl ContextEnv for ExecCtx<'_> {
    fn prop(&mut self, obj: Ctx, name: &str) -> Result<Value, Invalid> {
        let gw = self.gw;
        let info = &self.req.info;
        let api = info.api.map(|a| &gw.apis[a]);
        let op = api.and_then(|a| info.operation.map(|o| &a.operations[o]));
        Ok(match (obj, name) {
            (Ctx::Context, "RequestId") => crate::expr::value::parse_guid(&self.req.request_id)
                .map_or_else(|| s(&self.req.request_id), Value::Guid),
            (Ctx::Context, "Timestamp") => Value::DateTime(DateTime {
                ticks: info.timestamp_ticks,
                kind: crate::expr::datetime::Kind::Utc,
            }),
            (Ctx::Context, "Elapsed") => Value::TimeSpan(
                info.started
                    .map_or(0, |t| (t.elapsed().as_nanos() / 100) as i64),
            ),
            (Ctx::Context, "Tracing") => Value::Bool(false),
            (Ctx::Context, "Workspace") => Value::Null,
            (Ctx::Context, "Product") => info
                .product
                .map_or(Value::Null, |_| Value::Ctx(Ctx::Product)),
            (Ctx::Context, "Subscription") => info
                .subscription
                .map_or(Value::Null, |_| Value::Ctx(Ctx::Subscription)),
            (Ctx::Context, "User") => Value::Null,
            (Ctx::Context, "LastError") => self
                .req
                .last_error
                .as_ref()
                .map_or(Value::Null, |_| Value::Ctx(Ctx::LastError)),
            (Ctx::Context, "Backend") => self
                .req
                .target
                .backend
                .map_or(Value::Null, |_| Value::Ctx(Ctx::Backend)),
            (Ctx::Request, "Method") => s(self.req.method.as_str()),
            (Ctx::Request, "OriginalMethod") => s(&info.original_method),
            (Ctx::Request, "Url") => Value::obj(Obj::Url(self.backend_url())),
            (Ctx::Request, "OriginalUrl") => Value::obj(Obj::Url(self.original_url())),
            (Ctx::Request, "IpAddress") => s(&info.ip),
            (Ctx::Request, "Certificate") => info
                .client_certificate
                .as_ref()
                .map_or(Value::Null, |c| Value::obj(Obj::X509(c.leaf.clone()))),
            (Ctx::Request, "PrivateEndpointConnection") => Value::Null,
            (Ctx::Request, "Body") => {
                if self.req.body.is_some()
                    || self
                        .req
                        .original_body
                        .as_ref()
                        .is_some_and(|b| !b.is_empty())
                {
                    Value::obj(Obj::Body {
                        which: Ctx::RequestBody,
                    })
                } else {
                    Value::Null
                }
            }
            (Ctx::Response, "StatusCode") => Value::Int(self.resp.status as i32),
            (Ctx::Response, "StatusReason") => {
                s(self.resp.reason.as_deref().unwrap_or_else(|| {
                    http::StatusCode::from_u16(self.resp.status)
                        .ok()
                        .and_then(|c| c.canonical_reason())
                        .unwrap_or("")
                }))
            }
            (Ctx::Response, "Body") => {
                if self.resp.body.is_some() || self.resp.original_body.is_some() {
                    Value::obj(Obj::Body {
                        which: Ctx::ResponseBody,
                    })
                } else {
                    Value::Null
                }
            }
            (Ctx::Api, "Id") => s(api.map_or("", |a| a.id.as_str())),
            (Ctx::Api, "Name") => s(api.map_or("", |a| a.name.as_str())),
            (Ctx::Api, "Path") => s(api.map_or("", |a| a.path.trim_start_matches('/'))),
            (Ctx::Api, "ServiceUrl") => api.map_or(Value::Null, |a| {
                Value::obj(Obj::Url(UrlData {
                    scheme: a.service.scheme().into(),
                    host: a.service.host.clone(),
                    port: a.service.port as i32,
                    path: a.service.path.clone(),
                    query: vec![],
                }))
            }),
            (Ctx::Api, "Protocols") => Value::list(vec![s("http"), s("https")]),
            (Ctx::Api, "IsCurrentRevision") => Value::Bool(true),
            (Ctx::Api, "Revision") => s("1"),
            (Ctx::Api, "Version") => s(""),
            (Ctx::SubscriptionKeyNames, "Header") => {
                s(api.map_or("Ocp-Apim-Subscription-Key", |a| a.key_header.as_str()))
            }
            (Ctx::SubscriptionKeyNames, "Query") => {
                s(api.map_or("subscription-key", |a| a.key_query.as_str()))
            }
            (Ctx::Operation, "Id") => s(op.map_or("", |o| o.id.as_str())),
            (Ctx::Operation, "Name") => s(op.map_or("", |o| o.name.as_str())),
            (Ctx::Operation, "Method") => s(op
                .and_then(|o| o.method.as_ref())
                .map_or("*", |m| m.as_str())),
            (Ctx::Operation, "UrlTemplate") => s(op.map_or("", |o| o.url_template.as_str())),
            (Ctx::Product, n) => {
                let p = info
                    .product
                    .map(|p| &gw.products[p])
                    .ok_or("no product context")?;
                match n {
                    "Id" => s(&p.id),
                    "Name" => s(&p.name),
                    "State" => s(match p.state {
                        crate::config::ProductState::Published => "published",
                        crate::config::ProductState::NotPublished => "notPublished",
                    }),
                    "SubscriptionRequired" => Value::Bool(p.subscription_required),
                    "ApprovalRequired" => Value::Bool(false),
                    "SubscriptionsLimit" | "SubscriptionLimit" => Value::Null,
                    "Groups" => Value::list(vec![]),
                    "Apis" => Value::list(p.apis.iter().map(|a| s(&gw.apis[*a].id)).collect()),
                    _ => return Err(crate::invalid!("context.Product has no member `{n}`")),
                }
            }
            (Ctx::Subscription, n) => {
                let sub = info
                    .subscription
                    .map(|x| &gw.subscriptions.list[x])
                    .ok_or("no subscription")?;
                match n {
                    "Id" => s(&sub.id),
                    "Name" => s(&sub.name),
                    "Key" => info.key.as_deref().map_or(Value::Null, s),
                    // A hashed key is known only when the caller presented it.
                    "PrimaryKey" => match (&sub.primary_key, &sub.primary_hash, &info.key) {
                        (Some(k), _, _) => s(k),
                        (None, Some(h), Some(k)) if crate::exec::subscriptions::digest(k) == *h => {
                            s(k)
                        }
                        _ => Value::Null,
                    },
                    "SecondaryKey" => match (&sub.secondary_key, &sub.secondary_hash, &info.key) {
                        (Some(k), _, _) => s(k),
                        (None, Some(h), Some(k)) if crate::exec::subscriptions::digest(k) == *h => {
                            s(k)
                        }
                        _ => Value::Null,
                    },
                    "CreatedDate" | "StartDate" | "EndDate" => Value::Null,
                    "Scope" => s(&match sub.scope {
                        SubScope::Product(p) => format!("/products/{}", gw.products[p].id),
                        SubScope::Api(a) => format!("/apis/{}", gw.apis[a].id),
                        SubScope::AllApis => "/apis".into(),
                        SubScope::AllAccess => "/".into(),
                    }),
                    _ => return Err(crate::invalid!("context.Subscription has no member `{n}`")),
                }
            }
            (Ctx::LastError, n) => {
                let e = self.req.last_error.as_ref().ok_or("no error")?;
                match n {
                    "Source" => s(e.source),
                    "Reason" => s(e.reason()),
                    "Message" => s(&e.message),
                    "Scope" => s(e.scope.map_or("", |x| x.name())),
                    "Section" => s(e.section.map_or("", |x| x.name())),
                    "Path" => s(&e.path),
                    "PolicyId" => e.policy_id.as_deref().map_or(Value::Null, s),
                    _ => return Err(crate::invalid!("context.LastError has no member `{n}`")),
                }
            }
            (Ctx::Backend, n) => {
                let b = self
                    .req
                    .target
                    .backend
                    .map(|i| &gw.backends[i])
                    .ok_or("no backend entity")?;
                match n {
                    "Id" => s(&b.id),
                    "Type" => s(if b.is_pool() { "Pool" } else { "Single" }),
                    "AzureRegion" => Value::Null,
                    _ => return Err(crate::invalid!("context.Backend has no member `{n}`")),
                }
            }
            (Ctx::Deployment, "GatewayId" | "ServiceName" | "ServiceId") => s(&gw.name),
            (Ctx::Deployment, "Region") => s(""),
            (Ctx::Deployment, "Gateway") => s(&gw.name),
            (Ctx::Deployment, _) => Value::Null,
            (o, n) => return Err(crate::invalid!("{o:?} has no member `{n}`")),
        })
    }

    fn header(&self, which: Ctx, name: &str) -> Option<Vec<String>> {
        let n = HeaderName::from_bytes(name.as_bytes()).ok()?;
        let vs = self.headers(which).get_all(&n);
        if vs.is_empty() {
            return None;
        }
        // A header sent as one comma-separated line reads as several values.
        let mut out = Vec::new();
        for v in vs {
            let text = String::from_utf8_lossy(v.as_bytes()).into_owned();
            if crate::exec::separate_lines(&n) {
                out.push(text);
            } else {
                out.extend(text.split(',').map(|x| x.trim().to_string()));
            }
        }
        Some(out)
    }

    fn header_names(&self, which: Ctx) -> Vec<String> {
        self.headers(which).names()
    }

    fn header_joined(&self, which: Ctx, name: &str) -> Option<std::sync::Arc<str>> {
        // One value (the usual case): the produced string is the only allocation.
        let mut first: Option<std::sync::Arc<str>> = None;
        let mut more: Option<String> = None;
        self.headers(which).each_value(name, &mut |v| {
            let t = String::from_utf8_lossy(v);
            let t = if t.contains(", ") {
                std::borrow::Cow::Owned(t.split(',').map(str::trim).collect::<Vec<_>>().join(","))
            } else {
                t
            };
            match (&first, &mut more) {
                (None, _) => first = Some(std::sync::Arc::from(t.trim())),
                (Some(f), None) => more = Some(format!("{f},{}", t.trim())),
                (Some(_), Some(m)) => {
                    m.push(',');
                    m.push_str(t.trim());
                }
            }
        });
        match more {
            Some(m) => Some(std::sync::Arc::from(m)),
            None => first,
        }
    }

    fn matched_parameters(&self) -> Vec<(String, String)> {
        self.req.matched.clone()
    }

    fn variable(&self, name: &str) -> Option<Value> {
        self.req.variable(name).cloned()
    }

    fn variable_names(&self) -> Vec<String> {
        self.req.vars.iter().map(|(k, _)| k.clone()).collect()
    }

    fn body(&mut self, which: Ctx) -> Option<Bytes> {
        match which {
            Ctx::RequestBody => self
                .req
                .body
                .clone()
                .or_else(|| self.req.original_body.clone()),
            _ => self
                .resp
                .body
                .clone()
                .or_else(|| self.resp.original_body.clone()),
        }
    }

    fn trace(&mut self, message: &str) {
        self.req.traces.push(super::TraceEntry {
            source: "expression".into(),
            severity: "verbose",
            message: message.to_string(),
            metadata: vec![],
        });
    }
}
