//! Binding expressions: names to frame slots, `context` members, allowed types and their
//! static members, member and method names checked, calls and lambdas; constants folded.

use super::*;

impl Binder {
    pub(super) fn rtype(&self, t: &ast::TypeRef) -> CResult<Arc<RType>> {
        types::resolve(t).map(Arc::new).map_err(|m| CompileError {
            at: t.at,
            message: m.0,
        })
    }

    pub(super) fn args(&mut self, args: &[ast::Arg]) -> CResult<Vec<CArg>> {
        let mut out = Vec::new();
        for a in args {
            let out_slot = match &a.out {
                Some(OutArg::Declare(n)) => Some(self.declare(n, a.value.at)?),
                Some(OutArg::Existing(n)) => Some(self.lookup(n).ok_or(CompileError {
                    at: a.value.at,
                    message: format!("unknown local `{n}`"),
                })?),
                None => None,
            };
            let value = if out_slot.is_some() {
                Node::Const(Value::Null)
            } else {
                self.expr(&a.value)?
            };
            out.push(CArg {
                name: a.name.clone(),
                out: out_slot,
                value,
            });
        }
        Ok(out)
    }

    /// Resolve `context.X.Y` chains at compile time.
    pub(super) fn ctx_member(&mut self, obj: Ctx, name: &str, at: usize) -> CResult<Node> {
        use Ctx::*;
        let handle = |c: Ctx| Ok(Node::Ctx(c));
        let prop = |n: &'static str| Ok(Node::Prop(CtxProp { obj, name: n }));
        let nullable = |c: Ctx, n: &'static str| Ok(Node::Prop(CtxProp { obj: c, name: n }));
        match (obj, name) {
            (Context, "Request") => handle(Request),
            (Context, "Response") => handle(Response),
            (Context, "Api") => handle(Api),
            (Context, "Operation") => handle(Operation),
            (Context, "Deployment") => handle(Deployment),
            (Context, "Variables") => handle(Variables),
            (Context, "Product") => nullable(Context, "Product"),
            (Context, "Subscription") => nullable(Context, "Subscription"),
            (Context, "User") => nullable(Context, "User"),
            (Context, "LastError") => nullable(Context, "LastError"),
            (Context, "Backend") => nullable(Context, "Backend"),
            (Context, "RequestId" | "Timestamp" | "Elapsed" | "Tracing" | "Workspace") => {
                prop(static_name(name))
            }
            (Request, "Headers") => handle(RequestHeaders),
            (Request, "MatchedParameters") => handle(MatchedParameters),
            (Request, "Body") => {
                self.reads_request_body = true;
                nullable(Request, "Body")
            }
            (
                Request,
                "Method"
                | "Url"
                | "OriginalUrl"
                | "IpAddress"
                | "Certificate"
                | "OriginalMethod"
                | "PrivateEndpointConnection",
            ) => prop(static_name(name)),
            (Response, "Headers") => handle(ResponseHeaders),
            (Response, "Body") => {
                self.reads_response_body = true;
                nullable(Response, "Body")
            }
            (Response, "StatusCode" | "StatusReason") => prop(static_name(name)),
            (Api, "SubscriptionKeyParameterNames") => handle(SubscriptionKeyNames),
            (
                Api,
                "Id" | "Name" | "Path" | "Protocols" | "ServiceUrl" | "IsCurrentRevision"
                | "Revision" | "Version",
            ) => prop(static_name(name)),
            (SubscriptionKeyNames, "Header" | "Query") => prop(static_name(name)),
            // Dictionary-like handles: `context.Request.Headers.Keys`, `.Count`.
            (
                RequestHeaders | ResponseHeaders | MatchedParameters | Variables,
                "Count" | "Keys",
            ) => Ok(Node::Member {
                target: Box::new(Node::Ctx(obj)),
                name: if name == "Count" { "Count" } else { "Keys" },
                null_cond: false,
            }),
            (Operation, "Id" | "Method" | "Name" | "UrlTemplate") => prop(static_name(name)),
            (
                Deployment,
                "GatewayId" | "Region" | "ServiceId" | "ServiceName" | "Gateway" | "Certificates"
                | "SustainabilityInfo",
            ) => prop(static_name(name)),
            _ => err(at, format!("`{}` has no member `{name}`", ctx_name(obj))),
        }
    }

    pub(super) fn expr(&mut self, e: &ast::Expr) -> CResult<Node> {
        crate::expr::with_stack(|| self.expr_unguarded(e))
    }

    pub(super) fn expr_unguarded(&mut self, e: &ast::Expr) -> CResult<Node> {
        let at = e.at;
        Ok(match &e.kind {
            ExprKind::Lit(l) => Node::Const(match l {
                Lit::Null => Value::Null,
                Lit::Bool(b) => Value::Bool(*b),
                Lit::Int(i) => Value::Int(*i),
                Lit::Long(i) => Value::Long(*i),
                Lit::Double(d) => Value::Double(*d),
                Lit::Char(c) => Value::Char(*c),
                Lit::Str(s) => Value::str(s),
            }),
            ExprKind::Interp(segs) => {
                let mut parts = Vec::new();
                for s in segs {
                    match s {
                        ast::InterpSeg::Text(t) => parts.push((None, t.clone())),
                        ast::InterpSeg::Hole(e, fmt) => {
                            parts.push((Some(self.expr(e)?), fmt.clone().unwrap_or_default()))
                        }
                    }
                }
                Node::Interp(parts)
            }
            ExprKind::Name(n) => {
                if let Some(slot) = self.lookup(n) {
                    Node::Local(slot)
                } else if n == "context" {
                    Node::Ctx(Ctx::Context)
                } else if types::is_known_type(n) {
                    return err(at, format!("type `{n}` used as a value"));
                } else {
                    return err(at, format!("unknown name `{n}`"));
                }
            }
            ExprKind::Member {
                target,
                name,
                null_cond,
            } => {
                // Static members: `string.Empty`, `DateTime.UtcNow`, `StringComparison.Ordinal`.
                if let ExprKind::Name(tn) = &target.kind {
                    if self.lookup(tn).is_none() && tn != "context" {
                        if let Some(ty) = types::lookup(tn) {
                            let rt = Arc::new(RType {
                                ty,
                                arrays: 0,
                                args: vec![],
                                nullable: false,
                                name: tn.clone(),
                            });
                            return self.static_member(rt, name, at);
                        }
                        if let Some(q) = qualified(target) {
                            if types::is_known_type(&q) {
                                let ty = types::lookup(&q).unwrap_or(Ty::Object);
                                let short = q.rsplit('.').next().unwrap_or(&q).to_string();
                                return self.static_member(
                                    Arc::new(RType {
                                        ty,
                                        arrays: 0,
                                        args: vec![],
                                        nullable: false,
                                        name: short,
                                    }),
                                    name,
                                    at,
                                );
                            }
                        }
                    }
                }
                if let Some(q) = qualified(e) {
                    // `System.Text.Encoding.UTF8`: a qualified static member.
                    if let Some((tn, member)) = q.rsplit_once('.') {
                        if types::is_known_type(tn)
                            && !tn.contains("context")
                            && self.lookup(tn.split('.').next().unwrap_or("")).is_none()
                            && tn.contains('.')
                        {
                            let ty = types::lookup(tn).unwrap_or(Ty::Object);
                            let short = tn.rsplit('.').next().unwrap_or(tn).to_string();
                            return self.static_member(
                                Arc::new(RType {
                                    ty,
                                    arrays: 0,
                                    args: vec![],
                                    nullable: false,
                                    name: short,
                                }),
                                member,
                                at,
                            );
                        }
                    }
                }
                let t = self.expr(target)?;
                if let Node::Ctx(c) = t {
                    return self.ctx_member(c, name, at);
                }
                if matches!(&t, Node::Prop(p) if p.obj == Ctx::Context && p.name == "User") {
                    if let Some(n) = builtins::USER_MEMBERS.iter().find(|m| **m == name) {
                        return Ok(Node::Member {
                            target: Box::new(t),
                            name: n,
                            null_cond: *null_cond,
                        });
                    }
                }
                let n = builtins::member_name(name).ok_or(CompileError {
                    at,
                    message: format!("unknown member `{name}`"),
                })?;
                Node::Member {
                    target: Box::new(t),
                    name: n,
                    null_cond: *null_cond,
                }
            }
            ExprKind::Index {
                target,
                args,
                null_cond,
            } => {
                let t = self.expr(target)?;
                let a = args
                    .iter()
                    .map(|x| self.expr(x))
                    .collect::<CResult<Vec<_>>>()?;
                Node::Index {
                    target: Box::new(t),
                    args: a,
                    null_cond: *null_cond,
                }
            }
            ExprKind::Call {
                target,
                type_args,
                args,
            } => self.call(target, type_args, args, at)?,
            ExprKind::New { ty, args, init } => match ty {
                None => match init {
                    Some(Init::Items(items)) => Node::NewArray {
                        items: items
                            .iter()
                            .map(|x| self.expr(x))
                            .collect::<CResult<Vec<_>>>()?,
                    },
                    Some(Init::Members(m)) => Node::NewAnon {
                        members: m
                            .iter()
                            .map(|(n, x)| Ok((n.clone(), self.expr(x)?)))
                            .collect::<CResult<Vec<_>>>()?,
                    },
                    _ => return err(at, "unsupported `new` form"),
                },
                Some(t) => {
                    let rt = self.rtype(t)?;
                    let args = self.args(args)?;
                    let init = match init {
                        None => None,
                        Some(Init::Items(items)) => Some(CInit::Items(
                            items
                                .iter()
                                .map(|x| self.expr(x))
                                .collect::<CResult<Vec<_>>>()?,
                        )),
                        Some(Init::Keyed(kv)) => Some(CInit::Keyed(
                            kv.iter()
                                .map(|(k, v)| Ok((self.expr(k)?, self.expr(v)?)))
                                .collect::<CResult<Vec<_>>>()?,
                        )),
                        Some(Init::Members(m)) => Some(CInit::Members(
                            m.iter()
                                .map(|(n, x)| Ok((n.clone(), self.expr(x)?)))
                                .collect::<CResult<Vec<_>>>()?,
                        )),
                    };
                    if !builtins::constructible(&rt) {
                        return err(t.at, format!("`new {}` is not supported", rt.display()));
                    }
                    Node::New { ty: rt, args, init }
                }
            },
            ExprKind::Unary { op, expr } => fold(Node::Unary {
                op: *op,
                expr: Box::new(self.expr(expr)?),
            }),
            ExprKind::Binary { op, left, right } => fold(Node::Binary {
                op: *op,
                left: Box::new(self.expr(left)?),
                right: Box::new(self.expr(right)?),
            }),
            ExprKind::Cond { cond, then, other } => fold(Node::Cond {
                cond: Box::new(self.expr(cond)?),
                then: Box::new(self.expr(then)?),
                other: Box::new(self.expr(other)?),
            }),
            ExprKind::Assign { target, op, value } => {
                let lv = self.lvalue(target)?;
                Node::Assign {
                    target: Box::new(lv),
                    op: *op,
                    value: Box::new(self.expr(value)?),
                }
            }
            ExprKind::IncDec {
                target,
                delta,
                prefix,
            } => Node::IncDec {
                target: Box::new(self.lvalue(target)?),
                delta: *delta,
                prefix: *prefix,
            },
            ExprKind::Cast { ty, expr } => Node::Cast {
                ty: self.rtype(ty)?,
                expr: Box::new(self.expr(expr)?),
            },
            ExprKind::Is { expr, ty, bind } => {
                let x = self.expr(expr)?;
                let t = self.rtype(ty)?;
                let b = bind.as_ref().map(|n| self.declare(n, at)).transpose()?;
                Node::Is {
                    expr: Box::new(x),
                    ty: t,
                    bind: b,
                }
            }
            ExprKind::IsPattern {
                expr,
                value,
                negate,
            } => Node::IsPattern {
                expr: Box::new(self.expr(expr)?),
                value: Box::new(self.expr(value)?),
                negate: *negate,
            },
            ExprKind::As { expr, ty } => Node::As {
                expr: Box::new(self.expr(expr)?),
                ty: self.rtype(ty)?,
            },
            ExprKind::Lambda { params, body } => self.scoped(|b| {
                let slots = params
                    .iter()
                    .map(|p| b.declare(p, at))
                    .collect::<CResult<Vec<_>>>()?;
                let body = match body {
                    LambdaBody::Expr(e) => LambdaCode::Expr(b.expr(e)?),
                    LambdaBody::Block(s) => LambdaCode::Block(b.block(s)?),
                };
                Ok(Node::Lambda(Arc::new(Lambda {
                    params: slots,
                    body,
                })))
            })?,
            ExprKind::Type(t) => Node::Const(Value::Type(self.rtype(t)?)),
            ExprKind::Default(t) => Node::Default(t.as_ref().map(|t| self.rtype(t)).transpose()?),
        })
    }

    pub(super) fn static_member(&mut self, ty: Arc<RType>, name: &str, at: usize) -> CResult<Node> {
        match builtins::static_member(&ty, name) {
            Some(n) => Ok(Node::Static { ty, name: n }),
            None => err(at, format!("`{}` has no static member `{name}`", ty.name)),
        }
    }

    pub(super) fn lvalue(&mut self, e: &ast::Expr) -> CResult<LValue> {
        match &e.kind {
            ExprKind::Name(n) => match self.lookup(n) {
                Some(s) => Ok(LValue::Local(s)),
                None => err(
                    e.at,
                    format!("cannot assign to `{n}`: not a local variable"),
                ),
            },
            ExprKind::Index { target, args, .. } => {
                let t = self.expr(target)?;
                if matches!(t, Node::Ctx(_) | Node::Prop(_)) {
                    return err(e.at, "`context` is read-only: change it with policies (set-variable, set-header, ...)");
                }
                Ok(LValue::Index {
                    target: t,
                    args: args
                        .iter()
                        .map(|x| self.expr(x))
                        .collect::<CResult<Vec<_>>>()?,
                })
            }
            ExprKind::Member { target, name, .. } => {
                let t = self.expr(target)?;
                if matches!(t, Node::Ctx(_) | Node::Prop(_)) {
                    return err(e.at, "`context` is read-only: change it with policies (set-variable, set-header, ...)");
                }
                let n = builtins::member_name(name).ok_or(CompileError {
                    at: e.at,
                    message: format!("unknown member `{name}`"),
                })?;
                Ok(LValue::Member { target: t, name: n })
            }
            _ => err(e.at, "this expression cannot be assigned to"),
        }
    }

    pub(super) fn call(
        &mut self,
        target: &ast::Expr,
        type_args: &[ast::TypeRef],
        args: &[ast::Arg],
        at: usize,
    ) -> CResult<Node> {
        let targs = type_args
            .iter()
            .map(|t| self.rtype(t).map(|r| (*r).clone()))
            .collect::<CResult<Vec<_>>>()?;
        match &target.kind {
            ExprKind::Name(n) if n == "__throw" => {
                let a = self.args(args)?;
                Ok(Node::Throw(a.into_iter().next().map(|x| Box::new(x.value))))
            }
            ExprKind::Name(n) => {
                if let Some(&f) = self.funcs.get(n) {
                    let a = args
                        .iter()
                        .map(|x| self.expr(&x.value))
                        .collect::<CResult<Vec<_>>>()?;
                    return Ok(Node::LocalCall { func: f, args: a });
                }
                if let Some(slot) = self.lookup(n) {
                    // Invoking a lambda held in a local (Func<...>).
                    let a = args
                        .iter()
                        .map(|x| self.expr(&x.value))
                        .collect::<CResult<Vec<_>>>()?;
                    return Ok(Node::Invoke {
                        target: Box::new(Node::Local(slot)),
                        args: a,
                    });
                }
                if n == "nameof" {
                    let s = args
                        .first()
                        .and_then(|a| qualified(&a.value))
                        .unwrap_or_default();
                    return Ok(Node::Const(Value::string(
                        s.rsplit('.').next().unwrap_or("").to_string(),
                    )));
                }
                err(target.at, format!("unknown function `{n}`"))
            }
            ExprKind::Member {
                target: inner,
                name,
                null_cond,
            } => {
                // Static call: `string.IsNullOrEmpty(...)`, `JObject.Parse(...)`.
                let static_ty = match &inner.kind {
                    ExprKind::Name(tn) if self.lookup(tn).is_none() && tn != "context" => {
                        types::lookup(tn).map(|ty| RType {
                            ty,
                            arrays: 0,
                            args: vec![],
                            nullable: false,
                            name: tn.clone(),
                        })
                    }
                    ExprKind::Member { .. } => qualified(inner)
                        .filter(|q| {
                            q.contains('.') && !q.starts_with("context") && types::is_known_type(q)
                        })
                        .map(|q| {
                            let short = q.rsplit('.').next().unwrap_or(&q).to_string();
                            RType {
                                ty: types::lookup(&q).unwrap_or(Ty::Object),
                                arrays: 0,
                                args: vec![],
                                nullable: false,
                                name: short,
                            }
                        }),
                    _ => None,
                };
                if let Some(rt) = static_ty {
                    let n = builtins::static_method(&rt, name).ok_or(CompileError {
                        at,
                        message: format!("`{}` has no static method `{name}`", rt.name),
                    })?;
                    let a = self.args(args)?;
                    return Ok(Node::StaticCall {
                        ty: Arc::new(rt),
                        name: n,
                        type_args: targs,
                        args: a,
                    });
                }
                let t = self.expr(inner)?;
                if let Node::Ctx(Ctx::Context) = t {
                    if name == "Trace" {
                        let a = self.args(args)?;
                        return Ok(Node::Call {
                            target: Box::new(t),
                            name: "Trace",
                            type_args: targs,
                            args: a,
                            null_cond: false,
                        });
                    }
                }
                let n = builtins::method_name(name).ok_or(CompileError {
                    at,
                    message: format!("unknown method `{name}`"),
                })?;
                let a = self.args(args)?;
                Ok(Node::Call {
                    target: Box::new(t),
                    name: n,
                    type_args: targs,
                    args: a,
                    null_cond: *null_cond,
                })
            }
            _ => {
                let t = self.expr(target)?;
                let a = args
                    .iter()
                    .map(|x| self.expr(&x.value))
                    .collect::<CResult<Vec<_>>>()?;
                Ok(Node::Invoke {
                    target: Box::new(t),
                    args: a,
                })
            }
        }
    }
}

/// Constant folding: operators over literals are computed once at load (`"a" + 1`,
/// `60 * 60`, `true ? x : y`). Anything that would throw is left for run time, where it
/// raises the expected exception.
pub(super) fn fold(n: Node) -> Node {
    use crate::expr::eval;
    let scalar = |v: &Value| {
        matches!(
            v,
            Value::Null
                | Value::Bool(_)
                | Value::Int(_)
                | Value::Long(_)
                | Value::Double(_)
                | Value::Char(_)
                | Value::Str(_)
        )
    };
    match n {
        Node::Binary { op, left, right } => match (&*left, &*right) {
            (Node::Const(l), Node::Const(r)) if scalar(l) && scalar(r) => {
                let folded = match op {
                    BinOp::And | BinOp::Or => match (l, r) {
                        (Value::Bool(a), Value::Bool(b)) => {
                            Some(Value::Bool(if op == BinOp::And {
                                *a && *b
                            } else {
                                *a || *b
                            }))
                        }
                        _ => None,
                    },
                    BinOp::Coalesce => Some(if l.is_null() { r.clone() } else { l.clone() }),
                    _ => eval::binary(op, l, r).ok(),
                };
                match folded {
                    Some(v) => Node::Const(v),
                    None => Node::Binary { op, left, right },
                }
            }
            _ => Node::Binary { op, left, right },
        },
        Node::Unary { op, expr } => match &*expr {
            Node::Const(v) if scalar(v) => match eval::unary(op, v.clone()) {
                Ok(v) => Node::Const(v),
                Err(_) => Node::Unary { op, expr },
            },
            _ => Node::Unary { op, expr },
        },
        Node::Cond { cond, then, other } => match &*cond {
            Node::Const(Value::Bool(true)) => *then,
            Node::Const(Value::Bool(false)) => *other,
            _ => Node::Cond { cond, then, other },
        },
        other => other,
    }
}

/// `a.b.c` as a dotted name, if the expression is only names and member accesses.
pub(super) fn qualified(e: &ast::Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Name(n) => Some(n.clone()),
        ExprKind::Member {
            target,
            name,
            null_cond: false,
        } => Some(format!("{}.{name}", qualified(target)?)),
        _ => None,
    }
}

pub(super) fn ctx_name(c: Ctx) -> &'static str {
    match c {
        Ctx::Context => "context",
        Ctx::Api => "context.Api",
        Ctx::Operation => "context.Operation",
        Ctx::Product => "context.Product",
        Ctx::Subscription => "context.Subscription",
        Ctx::User => "context.User",
        Ctx::Deployment => "context.Deployment",
        Ctx::Request => "context.Request",
        Ctx::Response => "context.Response",
        Ctx::RequestHeaders => "context.Request.Headers",
        Ctx::ResponseHeaders => "context.Response.Headers",
        Ctx::RequestBody => "context.Request.Body",
        Ctx::ResponseBody => "context.Response.Body",
        Ctx::MatchedParameters => "context.Request.MatchedParameters",
        Ctx::Variables => "context.Variables",
        Ctx::LastError => "context.LastError",
        Ctx::Backend => "context.Backend",
        Ctx::SubscriptionKeyNames => "context.Api.SubscriptionKeyParameterNames",
    }
}

/// Intern a context member name (they are all known at compile time).
pub(super) fn static_name(n: &str) -> &'static str {
    const NAMES: &[&str] = &[
        "RequestId",
        "Timestamp",
        "Elapsed",
        "Tracing",
        "Workspace",
        "Method",
        "Url",
        "OriginalUrl",
        "IpAddress",
        "Certificate",
        "OriginalMethod",
        "PrivateEndpointConnection",
        "StatusCode",
        "StatusReason",
        "Id",
        "Name",
        "Path",
        "Protocols",
        "ServiceUrl",
        "IsCurrentRevision",
        "Revision",
        "Version",
        "Header",
        "Query",
        "UrlTemplate",
        "GatewayId",
        "Region",
        "ServiceId",
        "ServiceName",
        "Gateway",
        "Certificates",
        "SustainabilityInfo",
    ];
    NAMES.iter().find(|x| **x == n).copied().unwrap_or("?")
}
