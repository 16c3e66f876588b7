//! Binding statements: blocks and their scopes, declarations, control flow, try/catch and
//! local functions.

use super::*;

impl Binder {
    pub(super) fn block(&mut self, stmts: &[ast::Stmt]) -> CResult<Vec<Stmt>> {
        self.scoped(|b| {
            // Local functions are visible in the whole block (hoisted).
            for s in stmts {
                if let StmtKind::LocalFn { name, .. } = &s.kind {
                    let idx = b.func_bodies.len() as u32;
                    b.func_bodies.push(None);
                    b.funcs.insert(name.clone(), idx);
                }
            }
            let mut out = Vec::new();
            for s in stmts {
                if let Some(st) = b.stmt(s)? {
                    out.push(st);
                }
            }
            Ok(out)
        })
    }

    pub(super) fn stmt(&mut self, s: &ast::Stmt) -> CResult<Option<Stmt>> {
        crate::expr::with_stack(|| self.stmt_unguarded(s))
    }

    pub(super) fn stmt_unguarded(&mut self, s: &ast::Stmt) -> CResult<Option<Stmt>> {
        Ok(Some(match &s.kind {
            StmtKind::Var { ty, decls } => {
                if let Some(t) = ty {
                    types::resolve(t).map_err(|m| CompileError {
                        at: t.at,
                        message: m.0,
                    })?;
                }
                // `XNamespace ns = "urn:x"`: the implicit conversion from a string.
                let convert = match ty {
                    Some(t) => self
                        .rtype(t)
                        .ok()
                        .filter(|r| matches!(r.ty, types::Ty::XNamespace | types::Ty::XName)),
                    None => None,
                };
                let mut out = Vec::new();
                for (name, init) in decls {
                    let value = match init {
                        Some(e) => self.expr(e)?,
                        None => Node::Default(None),
                    };
                    let value = match &convert {
                        Some(t) if init.is_some() => Node::Cast {
                            ty: t.clone(),
                            expr: Box::new(value),
                        },
                        _ => value,
                    };
                    let slot = self.declare(name, s.at)?;
                    out.push(Stmt::Let(slot, value));
                }
                if out.len() == 1 {
                    out.pop().unwrap_or(Stmt::Block(vec![]))
                } else {
                    Stmt::Block(out)
                }
            }
            StmtKind::Expr(e) => Stmt::Expr(self.expr(e)?),
            StmtKind::If { cond, then, other } => {
                let c = self.expr(cond)?;
                let t = self.block(then)?;
                let o = match other {
                    Some(o) => self.block(o)?,
                    None => vec![],
                };
                Stmt::If(c, t, o)
            }
            StmtKind::Foreach { name, iter, body } => {
                let it = self.expr(iter)?;
                self.scoped(|b| {
                    let slot = b.declare(name, s.at)?;
                    let body = b.block(body)?;
                    Ok(Stmt::Foreach(slot, it, body))
                })?
            }
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => self.scoped(|b| {
                let mut i = Vec::new();
                for s in init {
                    if let Some(x) = b.stmt(s)? {
                        i.push(x);
                    }
                }
                let c = cond.as_ref().map(|c| b.expr(c)).transpose()?;
                let st = step
                    .iter()
                    .map(|e| b.expr(e))
                    .collect::<CResult<Vec<_>>>()?;
                let body = b.block(body)?;
                Ok(Stmt::For(i, c, st, body))
            })?,
            StmtKind::While { cond, body } => Stmt::While(self.expr(cond)?, self.block(body)?),
            StmtKind::DoWhile { body, cond } => {
                let b = self.block(body)?;
                Stmt::DoWhile(b, self.expr(cond)?)
            }
            StmtKind::Return(e) => Stmt::Return(e.as_ref().map(|e| self.expr(e)).transpose()?),
            StmtKind::Break => Stmt::Break,
            StmtKind::Continue => Stmt::Continue,
            StmtKind::Block(b) => Stmt::Block(self.block(b)?),
            StmtKind::Try {
                body,
                catches,
                finally,
            } => {
                let body = self.block(body)?;
                let mut cs = Vec::new();
                for c in catches {
                    let ty = match &c.ty {
                        Some(t) if t.name == "Exception" || t.name.ends_with("Exception") => None,
                        Some(t) => Some(Arc::new(types::resolve(t).map_err(|m| CompileError {
                            at: t.at,
                            message: m.0,
                        })?)),
                        None => None,
                    };
                    let (slot, body) = self.scoped(|b| {
                        let slot = c.name.as_ref().map(|n| b.declare(n, s.at)).transpose()?;
                        Ok((slot, b.block(&c.body)?))
                    })?;
                    cs.push((ty, slot, body));
                }
                let finally = match finally {
                    Some(f) => self.block(f)?,
                    None => vec![],
                };
                Stmt::Try {
                    body,
                    catches: cs,
                    finally,
                }
            }
            StmtKind::Throw(e) => Stmt::Throw(e.as_ref().map(|e| self.expr(e)).transpose()?),
            StmtKind::LocalFn { name, params, body } => {
                let idx = *self.funcs.get(name).ok_or(CompileError {
                    at: s.at,
                    message: "local function".into(),
                })?;
                let func = self.scoped(|b| {
                    let slots = params
                        .iter()
                        .map(|p| b.declare(p, s.at))
                        .collect::<CResult<Vec<_>>>()?;
                    let body = match body {
                        LambdaBody::Expr(e) => LambdaCode::Expr(b.expr(e)?),
                        LambdaBody::Block(st) => LambdaCode::Block(b.block(st)?),
                    };
                    Ok(Func {
                        params: slots,
                        body,
                    })
                })?;
                self.func_bodies[idx as usize] = Some(func);
                return Ok(None);
            }
            StmtKind::Empty => return Ok(None),
        }))
    }
}
