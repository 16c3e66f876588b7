//! Statements of `@{ ... }` blocks: blocks, declarations, control flow, local functions, and
//! the type references they name.

use super::*;

impl Parser {
    pub(super) fn block(&mut self) -> PResult<Vec<Stmt>> {
        self.expect("{")?;
        let mut out = Vec::new();
        while !self.is_punct("}") {
            if self.at_eof() {
                return self.err("expected `}`");
            }
            out.push(self.stmt()?);
        }
        self.pos += 1;
        Ok(out)
    }

    /// A statement or a block, as the body of if / loops.
    pub(super) fn body(&mut self) -> PResult<Vec<Stmt>> {
        if self.is_punct("{") {
            self.block()
        } else {
            Ok(vec![self.stmt()?])
        }
    }

    pub(super) fn stmt(&mut self) -> PResult<Stmt> {
        self.enter()?;
        let r = crate::expr::with_stack(|| self.stmt_inner());
        self.depth -= 1;
        r
    }

    pub(super) fn stmt_inner(&mut self) -> PResult<Stmt> {
        let at = self.at();
        let kind = match self.peek().clone() {
            Tok::Punct("{") => StmtKind::Block(self.block()?),
            Tok::Punct(";") => {
                self.pos += 1;
                StmtKind::Empty
            }
            Tok::Ident(k) => match k.as_str() {
                "if" => {
                    self.pos += 1;
                    self.expect("(")?;
                    let cond = self.expr()?;
                    self.expect(")")?;
                    let then = self.body()?;
                    let other = if self.eat_ident("else") {
                        Some(self.body()?)
                    } else {
                        None
                    };
                    StmtKind::If { cond, then, other }
                }
                "foreach" => {
                    self.pos += 1;
                    self.expect("(")?;
                    if !self.eat_ident("var") {
                        self.type_ref()?;
                    }
                    let name = self.ident()?;
                    if !self.eat_ident("in") {
                        return self.err("expected `in`");
                    }
                    let iter = self.expr()?;
                    self.expect(")")?;
                    StmtKind::Foreach {
                        name,
                        iter,
                        body: self.body()?,
                    }
                }
                "for" => {
                    self.pos += 1;
                    self.expect("(")?;
                    let mut init = Vec::new();
                    if !self.is_punct(";") {
                        init.push(self.simple_stmt()?);
                    }
                    self.expect(";")?;
                    let cond = if self.is_punct(";") {
                        None
                    } else {
                        Some(self.expr()?)
                    };
                    self.expect(";")?;
                    let mut step = Vec::new();
                    while !self.is_punct(")") {
                        step.push(self.expr()?);
                        if !self.eat(",") {
                            break;
                        }
                    }
                    self.expect(")")?;
                    StmtKind::For {
                        init,
                        cond,
                        step,
                        body: self.body()?,
                    }
                }
                "while" => {
                    self.pos += 1;
                    self.expect("(")?;
                    let cond = self.expr()?;
                    self.expect(")")?;
                    StmtKind::While {
                        cond,
                        body: self.body()?,
                    }
                }
                "do" => {
                    self.pos += 1;
                    let body = self.body()?;
                    if !self.eat_ident("while") {
                        return self.err("expected `while`");
                    }
                    self.expect("(")?;
                    let cond = self.expr()?;
                    self.expect(")")?;
                    self.expect(";")?;
                    StmtKind::DoWhile { body, cond }
                }
                "return" => {
                    self.pos += 1;
                    let v = if self.is_punct(";") {
                        None
                    } else {
                        Some(self.expr()?)
                    };
                    self.expect(";")?;
                    StmtKind::Return(v)
                }
                "break" => {
                    self.pos += 1;
                    self.expect(";")?;
                    StmtKind::Break
                }
                "continue" => {
                    self.pos += 1;
                    self.expect(";")?;
                    StmtKind::Continue
                }
                "throw" => {
                    self.pos += 1;
                    let v = if self.is_punct(";") {
                        None
                    } else {
                        Some(self.expr()?)
                    };
                    self.expect(";")?;
                    StmtKind::Throw(v)
                }
                // C#'s default context is unchecked: the block is a block.
                "unchecked" if matches!(self.peek_at(1), Tok::Punct("{")) => {
                    self.pos += 1;
                    StmtKind::Block(self.block()?)
                }
                // `using (var x = ...) body` / `using (expr) body`: nothing here holds unmanaged
                // resources, so disposal is a no-op and the statement is its declaration and body.
                "using" if matches!(self.peek_at(1), Tok::Punct("(")) => {
                    self.pos += 2;
                    let decl = self.simple_stmt()?;
                    self.expect(")")?;
                    let mut body = vec![decl];
                    body.extend(self.body()?);
                    StmtKind::Block(body)
                }
                // `using var x = ...;` (C# 8): a declaration.
                "using" if matches!(self.peek_at(1), Tok::Ident(_)) => {
                    self.pos += 1;
                    let s = self.simple_stmt()?;
                    self.expect(";")?;
                    return Ok(s);
                }
                "switch" => return self.switch(at),
                "goto" | "lock" | "yield" | "fixed" | "unsafe" | "checked" | "await" => {
                    return self.err(format!(
                        "`{k}` statements are not supported in policy expressions"
                    ));
                }
                "try" => {
                    self.pos += 1;
                    let body = self.block()?;
                    let mut catches = Vec::new();
                    while self.eat_ident("catch") {
                        let (mut ty, mut name) = (None, None);
                        if self.eat("(") {
                            ty = Some(self.type_ref()?);
                            if let Tok::Ident(_) = self.peek() {
                                name = Some(self.ident()?);
                            }
                            self.expect(")")?;
                        }
                        if self.eat_ident("when") {
                            return self
                                .err("exception filters (`catch ... when`) are not supported");
                        }
                        catches.push(Catch {
                            ty,
                            name,
                            body: self.block()?,
                        });
                    }
                    let finally = if self.eat_ident("finally") {
                        Some(self.block()?)
                    } else {
                        None
                    };
                    if catches.is_empty() && finally.is_none() {
                        return self.err("`try` needs a `catch` or `finally`");
                    }
                    StmtKind::Try {
                        body,
                        catches,
                        finally,
                    }
                }
                _ => {
                    let s = self.simple_stmt()?;
                    if !matches!(s.kind, StmtKind::LocalFn { .. }) {
                        self.expect(";")?;
                    }
                    return Ok(s);
                }
            },
            _ => {
                let s = self.simple_stmt()?;
                self.expect(";")?;
                return Ok(s);
            }
        };
        Ok(Stmt { kind, at })
    }

    /// A declaration, local function, or expression statement (without the `;`).
    pub(super) fn simple_stmt(&mut self) -> PResult<Stmt> {
        let at = self.at();
        // `const T name = value`: a local that is never assigned again.
        if self.is_ident("const") && matches!(self.peek_at(1), Tok::Ident(_)) {
            self.pos += 1;
        }
        if self.is_ident("var") && matches!(self.peek_at(1), Tok::Ident(_)) {
            self.pos += 1;
            return Ok(Stmt {
                kind: StmtKind::Var {
                    ty: None,
                    decls: self.declarators()?,
                },
                at,
            });
        }
        // `Type name =`, `Type name;`, `Type name(` (local function)
        let save = self.pos;
        if let Ok(ty) = self.type_ref() {
            if let Tok::Ident(name) = self.peek().clone() {
                let after = self.peek_at(1).clone();
                if matches!(after, Tok::Punct("=") | Tok::Punct(";") | Tok::Punct(",")) {
                    let decls = self.declarators_of(Some(&ty))?;
                    return Ok(Stmt {
                        kind: StmtKind::Var {
                            ty: Some(ty),
                            decls,
                        },
                        at,
                    });
                }
                if after == Tok::Punct("(") {
                    if let Some(f) = self.try_local_fn(name)? {
                        return Ok(Stmt { kind: f, at });
                    }
                }
            }
        }
        self.pos = save;
        Ok(Stmt {
            kind: StmtKind::Expr(self.expr()?),
            at,
        })
    }

    pub(super) fn try_local_fn(&mut self, name: String) -> PResult<Option<StmtKind>> {
        let save = self.pos;
        self.pos += 2; // name (
        let mut params = Vec::new();
        while !self.is_punct(")") {
            if self.type_ref().is_err() {
                self.pos = save;
                return Ok(None);
            }
            match self.peek().clone() {
                Tok::Ident(p) => {
                    self.pos += 1;
                    params.push(p);
                }
                _ => {
                    self.pos = save;
                    return Ok(None);
                }
            }
            if !self.eat(",") {
                break;
            }
        }
        if !self.eat(")") {
            self.pos = save;
            return Ok(None);
        }
        let body = if self.is_punct("{") {
            LambdaBody::Block(self.block()?)
        } else if self.eat("=>") {
            let e = self.expr()?;
            self.expect(";")?;
            LambdaBody::Expr(Box::new(e))
        } else {
            self.pos = save;
            return Ok(None);
        };
        Ok(Some(StmtKind::LocalFn { name, params, body }))
    }

    pub(super) fn declarators(&mut self) -> PResult<Vec<(String, Option<Expr>)>> {
        self.declarators_of(None)
    }

    /// Declarators of a local of type `ty`; an array type takes `{ ... }` initializers
    /// (`string[] a = { "x", "y" };`).
    fn declarators_of(&mut self, ty: Option<&TypeRef>) -> PResult<Vec<(String, Option<Expr>)>> {
        let mut out = Vec::new();
        loop {
            let name = self.ident()?;
            let init = if self.eat("=") {
                match ty.filter(|t| t.arrays > 0 && self.is_punct("{")) {
                    Some(t) => {
                        let at = self.at();
                        let items = self.items_init()?;
                        Some(Expr {
                            kind: ExprKind::New {
                                ty: Some(t.clone()),
                                args: vec![],
                                init: Some(Init::Items(items)),
                            },
                            at,
                        })
                    }
                    None => Some(self.expr()?),
                }
            } else {
                None
            };
            out.push((name, init));
            if !self.eat(",") {
                return Ok(out);
            }
        }
    }

    /// `switch (e) { case c1: case c2: ... default: ... }`, read as
    /// `{ var $switch = e; do { if ($switch == c1 || $switch == c2) { ... } else { default } }
    /// while (false); }`: `break` leaves the do-while as it leaves a switch. Constant labels
    /// only; a `continue` in a section (it would continue the do-while, not the enclosing
    /// loop) is refused by name.
    pub(super) fn switch(&mut self, at: usize) -> PResult<Stmt> {
        self.pos += 1;
        self.expect("(")?;
        let value = self.expr()?;
        self.expect(")")?;
        self.expect("{")?;
        let tmp = format!("$switch{at}");
        let is_default =
            |p: &Parser| p.is_ident("default") && matches!(p.peek_at(1), Tok::Punct(":"));
        let mut cases: Vec<(Vec<Expr>, Vec<Stmt>)> = Vec::new();
        let mut default: Option<Vec<Stmt>> = None;
        while !self.eat("}") {
            let mut labels = Vec::new();
            let mut has_default = false;
            loop {
                if self.eat_ident("case") {
                    labels.push(self.expr()?);
                    if let Tok::Ident(_) = self.peek() {
                        return self.err(
                            "`case` patterns (`case T name:`, `case ... when`) are not supported; use constant labels",
                        );
                    }
                    self.expect(":")?;
                } else if is_default(self) {
                    self.pos += 2;
                    has_default = true;
                } else {
                    break;
                }
            }
            if labels.is_empty() && !has_default {
                return self.err("expected `case` or `default` in `switch`");
            }
            let mut body = Vec::new();
            while !self.is_ident("case") && !is_default(self) && !self.is_punct("}") {
                if self.at_eof() {
                    return self.err("expected `}`");
                }
                body.push(self.stmt()?);
            }
            if loose_continue(&body) {
                return self.err("`continue` inside `switch` is not supported");
            }
            if has_default {
                if default.is_some() {
                    return self.err("`switch` has two `default` labels");
                }
                default = Some(body);
            } else {
                cases.push((labels, body));
            }
        }
        let name = |at| Expr {
            kind: ExprKind::Name(tmp.clone()),
            at,
        };
        let mut chain = default;
        for (labels, body) in cases.into_iter().rev() {
            let cond = labels
                .into_iter()
                .map(|l| {
                    let at = l.at;
                    Expr {
                        kind: ExprKind::Binary {
                            op: BinOp::Eq,
                            left: Box::new(name(at)),
                            right: Box::new(l),
                        },
                        at,
                    }
                })
                .reduce(|a, b| {
                    let at = a.at;
                    Expr {
                        kind: ExprKind::Binary {
                            op: BinOp::Or,
                            left: Box::new(a),
                            right: Box::new(b),
                        },
                        at,
                    }
                });
            let Some(cond) = cond else { continue };
            chain = Some(vec![Stmt {
                kind: StmtKind::If {
                    cond,
                    then: body,
                    other: chain,
                },
                at,
            }]);
        }
        let declare = Stmt {
            kind: StmtKind::Var {
                ty: None,
                decls: vec![(tmp.clone(), Some(value))],
            },
            at,
        };
        let run = Stmt {
            kind: StmtKind::DoWhile {
                body: chain.unwrap_or_default(),
                cond: Expr {
                    kind: ExprKind::Lit(Lit::Bool(false)),
                    at,
                },
            },
            at,
        };
        Ok(Stmt {
            kind: StmtKind::Block(vec![declare, run]),
            at,
        })
    }

    // ---- types ----------------------------------------------------------------------------

    pub(super) fn type_ref(&mut self) -> PResult<TypeRef> {
        let at = self.at();
        let mut name = self.ident()?;
        if matches!(
            name.as_str(),
            "if" | "return" | "new" | "true" | "false" | "null" | "this"
        ) {
            self.pos -= 1;
            return self.err("expected a type");
        }
        while self.is_punct(".") && matches!(self.peek_at(1), Tok::Ident(_)) {
            self.pos += 1;
            name.push('.');
            name.push_str(&self.ident()?);
        }
        let mut args = Vec::new();
        if self.is_punct("<") {
            let save = self.pos;
            match self.type_args() {
                Some(a) => args = a,
                None => self.pos = save,
            }
        }
        let nullable = self.is_punct("?") && !self.starts_operand_at(1) && self.eat("?");
        let mut arrays = 0;
        while self.is_punct("[") && matches!(self.peek_at(1), Tok::Punct("]")) {
            self.pos += 2;
            arrays += 1;
        }
        Ok(TypeRef {
            name,
            args,
            nullable,
            arrays,
            at,
        })
    }

    /// `<T, U>`; None (and no progress) if what follows is not a type argument list.
    pub(super) fn type_args(&mut self) -> Option<Vec<TypeRef>> {
        if !self.eat("<") {
            return None;
        }
        let mut out = Vec::new();
        loop {
            out.push(self.type_ref().ok()?);
            if self.eat(",") {
                continue;
            }
            if self.eat(">") {
                return Some(out);
            }
            // `>>` closing two lists is lexed as `>` `>` (no `>>` token), so this is enough.
            return None;
        }
    }
}

/// A `continue` that is not inside a loop of its own.
fn loose_continue(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match &s.kind {
        StmtKind::Continue => true,
        StmtKind::If { then, other, .. } => {
            loose_continue(then) || other.as_deref().is_some_and(loose_continue)
        }
        StmtKind::Block(b) => loose_continue(b),
        StmtKind::Try {
            body,
            catches,
            finally,
        } => {
            loose_continue(body)
                || catches.iter().any(|c| loose_continue(&c.body))
                || finally.as_deref().is_some_and(loose_continue)
        }
        _ => false,
    })
}
