//! Expressions, by precedence climbing: assignment, lambdas, conditional, `??`, binary
//! operators, unary and postfix forms, calls, primaries, `new` and initializers.

use super::*;

impl Parser {
    pub(super) fn starts_operand_at(&self, n: usize) -> bool {
        match self.peek_at(n) {
            Tok::Ident(s) => !matches!(s.as_str(), "is" | "as" | "in"),
            Tok::Int(..) | Tok::Double(_) | Tok::Str(_) | Tok::Char(_) | Tok::Interp(_) => true,
            Tok::Punct(p) => matches!(*p, "(" | "!" | "~" | "-" | "+"),
            Tok::Eof => false,
        }
    }

    pub fn expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = crate::expr::with_stack(|| self.assignment());
        self.depth -= 1;
        r
    }

    pub(super) fn assignment(&mut self) -> PResult<Expr> {
        if let Some(l) = self.try_lambda()? {
            return Ok(l);
        }
        let at = self.at();
        let left = self.conditional()?;
        let op = match self.peek() {
            Tok::Punct("=") => Some(None),
            Tok::Punct("+=") => Some(Some(BinOp::Add)),
            Tok::Punct("-=") => Some(Some(BinOp::Sub)),
            Tok::Punct("*=") => Some(Some(BinOp::Mul)),
            Tok::Punct("/=") => Some(Some(BinOp::Div)),
            Tok::Punct("%=") => Some(Some(BinOp::Rem)),
            Tok::Punct("&=") => Some(Some(BinOp::BitAnd)),
            Tok::Punct("|=") => Some(Some(BinOp::BitOr)),
            Tok::Punct("^=") => Some(Some(BinOp::BitXor)),
            Tok::Punct("<<=") => Some(Some(BinOp::Shl)),
            Tok::Punct(">>=") => Some(Some(BinOp::Shr)),
            Tok::Punct("??=") => Some(Some(BinOp::Coalesce)),
            _ => None,
        };
        if let Some(op) = op {
            self.pos += 1;
            // `a = b = c`: right-recursive, so through `expr` (counted nesting).
            let value = self.expr()?;
            return Ok(Expr {
                kind: ExprKind::Assign {
                    target: Box::new(left),
                    op,
                    value: Box::new(value),
                },
                at,
            });
        }
        Ok(left)
    }

    pub(super) fn try_lambda(&mut self) -> PResult<Option<Expr>> {
        let at = self.at();
        let save = self.pos;
        let mut params = Vec::new();
        match self.peek().clone() {
            Tok::Ident(name) if self.peek_at(1) == &Tok::Punct("=>") => {
                self.pos += 2;
                params.push(name);
            }
            Tok::Punct("(") => {
                self.pos += 1;
                loop {
                    if self.eat(")") {
                        break;
                    }
                    // `(a, b)` or `(string a, int b)`
                    let first = match self.bump() {
                        Tok::Ident(s) => s,
                        _ => {
                            self.pos = save;
                            return Ok(None);
                        }
                    };
                    let name = if let Tok::Ident(second) = self.peek().clone() {
                        self.pos += 1;
                        second
                    } else {
                        first
                    };
                    params.push(name);
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat(")") {
                        break;
                    }
                    self.pos = save;
                    return Ok(None);
                }
                if !self.eat("=>") {
                    self.pos = save;
                    return Ok(None);
                }
            }
            _ => return Ok(None),
        }
        let body = if self.is_punct("{") {
            LambdaBody::Block(self.block()?)
        } else {
            LambdaBody::Expr(Box::new(self.expr()?))
        };
        Ok(Some(Expr {
            kind: ExprKind::Lambda { params, body },
            at,
        }))
    }

    pub(super) fn conditional(&mut self) -> PResult<Expr> {
        let at = self.at();
        let cond = self.coalesce()?;
        if self.eat("?") {
            let then = self.expr()?;
            self.expect(":")?;
            let other = self.expr()?;
            return Ok(Expr {
                kind: ExprKind::Cond {
                    cond: Box::new(cond),
                    then: Box::new(then),
                    other: Box::new(other),
                },
                at,
            });
        }
        Ok(cond)
    }

    /// `a ?? b ?? c` recurses to the right: each level counts as nesting.
    pub(super) fn coalesce(&mut self) -> PResult<Expr> {
        self.keep_depth(|p| {
            p.enter()?;
            p.coalesce_inner()
        })
    }

    pub(super) fn coalesce_inner(&mut self) -> PResult<Expr> {
        let at = self.at();
        let left = self.binary(0)?;
        if self.eat("??") {
            let right = self.coalesce_rhs()?;
            return Ok(Expr {
                kind: ExprKind::Binary {
                    op: BinOp::Coalesce,
                    left: Box::new(left),
                    right: Box::new(right),
                },
                at,
            });
        }
        Ok(left)
    }

    /// The right side of `??` may be a `throw` expression or another coalesce.
    pub(super) fn coalesce_rhs(&mut self) -> PResult<Expr> {
        if self.is_ident("throw") {
            let at = self.at();
            self.pos += 1;
            let e = self.coalesce()?;
            return Ok(Expr {
                kind: ExprKind::Call {
                    target: Box::new(Expr {
                        kind: ExprKind::Name("__throw".into()),
                        at,
                    }),
                    type_args: vec![],
                    args: vec![Arg {
                        name: None,
                        out: None,
                        value: e,
                    }],
                },
                at,
            });
        }
        self.coalesce()
    }

    /// Operators at one precedence build a left-deep tree (`1+1+...+1`): each link counts as a
    /// level of nesting, since every later pass recurses down that spine.
    pub(super) fn binary(&mut self, min: u8) -> PResult<Expr> {
        self.keep_depth(|p| p.binary_chain(min))
    }

    pub(super) fn binary_chain(&mut self, min: u8) -> PResult<Expr> {
        let mut left = self.unary()?;
        loop {
            let at = self.at();
            // is / as bind at relational precedence (7)
            if min <= 7 && self.is_ident("is") {
                self.enter()?;
                self.pos += 1;
                left = self.is_tail(left, at)?;
                continue;
            }
            if min <= 7 && self.is_ident("as") {
                self.enter()?;
                self.pos += 1;
                let ty = self.type_ref()?;
                left = Expr {
                    kind: ExprKind::As {
                        expr: Box::new(left),
                        ty,
                    },
                    at,
                };
                continue;
            }
            // `>>` is lexed as two `>` (so that `List<List<int>>` closes two lists): adjacent,
            // they are the shift.
            let shr = self.is_punct(">")
                && matches!(self.peek_at(1), Tok::Punct(">"))
                && self.toks.get(self.pos + 1).map(|t| t.at)
                    == self.toks.get(self.pos).map(|t| t.at + 1);
            let (op, prec, width) = if shr {
                (BinOp::Shr, 8, 2)
            } else {
                let Some((op, prec)) = binop(self.peek()) else {
                    break;
                };
                (op, prec, 1)
            };
            if prec < min {
                break;
            }
            self.enter()?;
            self.pos += width;
            let right = self.binary(prec + 1)?;
            left = Expr {
                kind: ExprKind::Binary {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                },
                at,
            };
        }
        Ok(left)
    }

    pub(super) fn is_tail(&mut self, left: Expr, at: usize) -> PResult<Expr> {
        let negate = self.eat_ident("not");
        // Constant patterns: null, literals.
        let constant = matches!(
            self.peek(),
            Tok::Int(..) | Tok::Double(_) | Tok::Str(_) | Tok::Char(_)
        ) || self.is_ident("null")
            || self.is_ident("true")
            || self.is_ident("false");
        if constant || negate {
            let value = self.unary()?;
            return Ok(Expr {
                kind: ExprKind::IsPattern {
                    expr: Box::new(left),
                    value: Box::new(value),
                    negate,
                },
                at,
            });
        }
        let ty = self.type_ref()?;
        let bind = match self.peek().clone() {
            Tok::Ident(n) if !matches!(n.as_str(), "and" | "or" | "is" | "as") => {
                self.pos += 1;
                Some(n)
            }
            _ => None,
        };
        Ok(Expr {
            kind: ExprKind::Is {
                expr: Box::new(left),
                ty,
                bind,
            },
            at,
        })
    }

    pub(super) fn unary(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }

    pub(super) fn unary_inner(&mut self) -> PResult<Expr> {
        let at = self.at();
        let op = match self.peek() {
            Tok::Punct("-") => Some(UnOp::Neg),
            Tok::Punct("+") => Some(UnOp::Plus),
            Tok::Punct("!") => Some(UnOp::Not),
            Tok::Punct("~") => Some(UnOp::BitNot),
            _ => None,
        };
        if let Some(op) = op {
            self.pos += 1;
            let e = self.unary()?;
            // Fold negative literals, so `-2147483648` is an int as in C#.
            if op == UnOp::Neg {
                let folded = match e.kind {
                    ExprKind::Lit(Lit::Int(v)) => Some(Lit::Int(v.wrapping_neg())),
                    ExprKind::Lit(Lit::Long(2147483648)) => Some(Lit::Int(i32::MIN)),
                    ExprKind::Lit(Lit::Long(v)) => Some(Lit::Long(v.wrapping_neg())),
                    ExprKind::Lit(Lit::Double(v)) => Some(Lit::Double(-v)),
                    _ => None,
                };
                if let Some(lit) = folded {
                    return Ok(Expr {
                        kind: ExprKind::Lit(lit),
                        at,
                    });
                }
            }
            return Ok(Expr {
                kind: ExprKind::Unary {
                    op,
                    expr: Box::new(e),
                },
                at,
            });
        }
        if self.is_punct("++") || self.is_punct("--") {
            let delta = if self.is_punct("++") { 1 } else { -1 };
            self.pos += 1;
            let e = self.unary()?;
            return Ok(Expr {
                kind: ExprKind::IncDec {
                    target: Box::new(e),
                    delta,
                    prefix: true,
                },
                at,
            });
        }
        // Cast: `(T)x` where T is a known type and an operand follows.
        if self.is_punct("(") {
            let save = self.pos;
            self.pos += 1;
            if let Tok::Ident(n) = self.peek().clone() {
                // `(T)`, also namespace-qualified: `(System.Int32)x`.
                let qualified = matches!(self.peek_at(1), Tok::Punct("."));
                if is_type_like(&n) || qualified {
                    if let Ok(ty) = self.type_ref().and_then(|t| {
                        if is_type_like(&t.name) {
                            Ok(t)
                        } else {
                            self.err("not a type")
                        }
                    }) {
                        if self.eat(")") && self.starts_operand_at(0) {
                            let e = self.unary()?;
                            return Ok(Expr {
                                kind: ExprKind::Cast {
                                    ty,
                                    expr: Box::new(e),
                                },
                                at,
                            });
                        }
                    }
                }
            }
            self.pos = save;
        }
        self.postfix()
    }

    /// Member, call and index chains are left-deep too: each link counts as nesting.
    pub(super) fn postfix(&mut self) -> PResult<Expr> {
        self.keep_depth(Self::postfix_chain)
    }

    pub(super) fn postfix_chain(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        loop {
            self.enter()?;
            let at = self.at();
            match self.peek().clone() {
                Tok::Punct(".") | Tok::Punct("?.") => {
                    let null_cond = self.is_punct("?.");
                    self.pos += 1;
                    let at = self.at();
                    let name = self.ident()?;
                    e = Expr {
                        kind: ExprKind::Member {
                            target: Box::new(e),
                            name,
                            null_cond,
                        },
                        at,
                    };
                    // Generic method: .Name<T>(
                    if self.is_punct("<") {
                        let save = self.pos;
                        match self.type_args() {
                            Some(targs) if self.is_punct("(") => {
                                let args = self.call_args()?;
                                e = Expr {
                                    kind: ExprKind::Call {
                                        target: Box::new(e),
                                        type_args: targs,
                                        args,
                                    },
                                    at,
                                };
                            }
                            _ => self.pos = save,
                        }
                    }
                }
                Tok::Punct("(") => {
                    let args = self.call_args()?;
                    e = Expr {
                        kind: ExprKind::Call {
                            target: Box::new(e),
                            type_args: vec![],
                            args,
                        },
                        at,
                    };
                }
                Tok::Punct("[") | Tok::Punct("?[") => {
                    let null_cond = self.is_punct("?[");
                    self.pos += 1;
                    let mut args = vec![self.expr()?];
                    while self.eat(",") {
                        args.push(self.expr()?);
                    }
                    self.expect("]")?;
                    e = Expr {
                        kind: ExprKind::Index {
                            target: Box::new(e),
                            args,
                            null_cond,
                        },
                        at,
                    };
                }
                Tok::Punct("++") | Tok::Punct("--") => {
                    let delta = if self.is_punct("++") { 1 } else { -1 };
                    self.pos += 1;
                    e = Expr {
                        kind: ExprKind::IncDec {
                            target: Box::new(e),
                            delta,
                            prefix: false,
                        },
                        at,
                    };
                }
                Tok::Punct("!")
                    if matches!(
                        self.peek_at(1),
                        Tok::Punct(".") | Tok::Punct(")") | Tok::Punct(";") | Tok::Punct("[")
                    ) =>
                {
                    // Null-forgiving operator `x!`: no effect.
                    self.pos += 1;
                }
                _ => return Ok(e),
            }
        }
    }

    pub(super) fn call_args(&mut self) -> PResult<Vec<Arg>> {
        self.expect("(")?;
        let mut args = Vec::new();
        if self.eat(")") {
            return Ok(args);
        }
        loop {
            let mut name = None;
            if let (Tok::Ident(n), Tok::Punct(":")) = (self.peek().clone(), self.peek_at(1).clone())
            {
                if !matches!(self.peek_at(2), Tok::Punct(":")) {
                    name = Some(n);
                    self.pos += 2;
                }
            }
            if self.eat_ident("out") {
                let at = self.at();
                let out = if self.eat_ident("var") {
                    OutArg::Declare(self.ident()?)
                } else if matches!(self.peek_at(1), Tok::Ident(_))
                    || matches!(
                        self.peek_at(1),
                        Tok::Punct("<") | Tok::Punct("[") | Tok::Punct(".")
                    )
                {
                    let save = self.pos;
                    match self.type_ref().and_then(|_| self.ident()) {
                        Ok(n) => OutArg::Declare(n),
                        Err(_) => {
                            self.pos = save;
                            OutArg::Existing(self.ident()?)
                        }
                    }
                } else {
                    OutArg::Existing(self.ident()?)
                };
                let var = match &out {
                    OutArg::Declare(n) | OutArg::Existing(n) => n.clone(),
                };
                args.push(Arg {
                    name,
                    out: Some(out),
                    value: Expr {
                        kind: ExprKind::Name(var),
                        at,
                    },
                });
            } else {
                let _ = self.eat_ident("ref") || self.eat_ident("in");
                args.push(Arg {
                    name,
                    out: None,
                    value: self.expr()?,
                });
            }
            if self.eat(",") {
                continue;
            }
            self.expect(")")?;
            return Ok(args);
        }
    }

    pub(super) fn primary(&mut self) -> PResult<Expr> {
        let at = self.at();
        let start = self.pos;
        let kind = match self.bump() {
            Tok::Int(v, kind) => match kind {
                IntKind::Int => ExprKind::Lit(i32::try_from(v).map_or(Lit::Long(v), Lit::Int)),
                _ => ExprKind::Lit(Lit::Long(v)),
            },
            Tok::Double(v) => ExprKind::Lit(Lit::Double(v)),
            Tok::Str(s) => ExprKind::Lit(Lit::Str(s)),
            Tok::Char(c) => ExprKind::Lit(Lit::Char(c)),
            Tok::Interp(parts) => {
                let mut segs = Vec::new();
                for p in parts {
                    match p {
                        InterpPart::Text(t) => segs.push(InterpSeg::Text(t)),
                        InterpPart::Hole {
                            src,
                            offset,
                            format,
                        } => {
                            let base = self.base + offset;
                            let e = parse_expression(&src, base)?;
                            segs.push(InterpSeg::Hole(Box::new(e), format));
                        }
                    }
                }
                ExprKind::Interp(segs)
            }
            Tok::Punct("(") => {
                let e = self.expr()?;
                self.expect(")")?;
                return Ok(e);
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => ExprKind::Lit(Lit::Bool(true)),
                "false" => ExprKind::Lit(Lit::Bool(false)),
                "null" => ExprKind::Lit(Lit::Null),
                "new" => return self.new_expr(at),
                "typeof" => {
                    self.expect("(")?;
                    let t = self.type_ref()?;
                    self.expect(")")?;
                    ExprKind::Type(t)
                }
                // Arithmetic wraps as C#'s default (unchecked) context does.
                "unchecked" if self.is_punct("(") => {
                    self.pos += 1;
                    let e = self.expr()?;
                    self.expect(")")?;
                    return Ok(e);
                }
                "checked" if self.is_punct("(") => {
                    self.pos = start;
                    return self.err(
                        "`checked` arithmetic is not supported (arithmetic wraps, as in C#'s default unchecked context)",
                    );
                }
                "default" => {
                    if self.eat("(") {
                        let t = self.type_ref()?;
                        self.expect(")")?;
                        ExprKind::Default(Some(t))
                    } else {
                        ExprKind::Default(None)
                    }
                }
                _ => {
                    // A generic static type before `.`: `List<string>.`, or a generic call `F<T>(`
                    if self.is_punct("<") {
                        let save = self.pos;
                        if let Some(targs) = self.type_args() {
                            if self.is_punct("(") {
                                let args = self.call_args()?;
                                let target = Expr {
                                    kind: ExprKind::Name(name),
                                    at,
                                };
                                return Ok(Expr {
                                    kind: ExprKind::Call {
                                        target: Box::new(target),
                                        type_args: targs,
                                        args,
                                    },
                                    at,
                                });
                            }
                        }
                        self.pos = save;
                    }
                    ExprKind::Name(name)
                }
            },
            t => {
                self.pos = start;
                return self.err(format!("expected an expression, found {}", describe(&t)));
            }
        };
        Ok(Expr { kind, at })
    }

    pub(super) fn new_expr(&mut self, at: usize) -> PResult<Expr> {
        // new[] { ... }
        if self.is_punct("[") && matches!(self.peek_at(1), Tok::Punct("]")) {
            self.pos += 2;
            let items = self.items_init()?;
            return Ok(Expr {
                kind: ExprKind::New {
                    ty: None,
                    args: vec![],
                    init: Some(Init::Items(items)),
                },
                at,
            });
        }
        // new { a = 1, b } anonymous object
        if self.is_punct("{") {
            let init = self.object_or_collection_init()?;
            return Ok(Expr {
                kind: ExprKind::New {
                    ty: None,
                    args: vec![],
                    init: Some(init),
                },
                at,
            });
        }
        let mut ty = self.type_ref()?;
        // new string[3] / new string[] { } (type_ref consumed `[]`)
        if self.is_punct("[") {
            self.pos += 1;
            let n = self.expr()?;
            self.expect("]")?;
            ty.arrays += 1;
            return Ok(Expr {
                kind: ExprKind::New {
                    ty: Some(ty),
                    args: vec![Arg {
                        name: None,
                        out: None,
                        value: n,
                    }],
                    init: None,
                },
                at,
            });
        }
        if ty.arrays > 0 {
            let items = self.items_init()?;
            return Ok(Expr {
                kind: ExprKind::New {
                    ty: Some(ty),
                    args: vec![],
                    init: Some(Init::Items(items)),
                },
                at,
            });
        }
        let args = if self.is_punct("(") {
            self.call_args()?
        } else {
            vec![]
        };
        let init = if self.is_punct("{") {
            Some(self.object_or_collection_init()?)
        } else {
            None
        };
        Ok(Expr {
            kind: ExprKind::New {
                ty: Some(ty),
                args,
                init,
            },
            at,
        })
    }

    pub(super) fn items_init(&mut self) -> PResult<Vec<Expr>> {
        self.expect("{")?;
        let mut items = Vec::new();
        while !self.eat("}") {
            items.push(self.expr()?);
            if !self.eat(",") {
                self.expect("}")?;
                break;
            }
        }
        Ok(items)
    }

    pub(super) fn object_or_collection_init(&mut self) -> PResult<Init> {
        self.expect("{")?;
        let mut items = Vec::new();
        let mut keyed = Vec::new();
        let mut members = Vec::new();
        while !self.eat("}") {
            if self.is_punct("[") {
                self.pos += 1;
                let k = self.expr()?;
                self.expect("]")?;
                self.expect("=")?;
                keyed.push((k, self.expr()?));
            } else if self.is_punct("{") {
                self.pos += 1;
                let k = self.expr()?;
                self.expect(",")?;
                let v = self.expr()?;
                self.expect("}")?;
                keyed.push((k, v));
            } else if let (Tok::Ident(n), Tok::Punct("=")) =
                (self.peek().clone(), self.peek_at(1).clone())
            {
                self.pos += 2;
                members.push((n, self.expr()?));
            } else {
                let e = self.expr()?;
                // Anonymous-type projection `new { x.Name }` names the member after the last name.
                match &e.kind {
                    ExprKind::Member { name, .. } | ExprKind::Name(name)
                        if items.is_empty() && keyed.is_empty() =>
                    {
                        members.push((name.clone(), e.clone()));
                    }
                    _ => items.push(e),
                }
            }
            if !self.eat(",") {
                self.expect("}")?;
                break;
            }
        }
        if !keyed.is_empty() {
            return Ok(Init::Keyed(keyed));
        }
        if !items.is_empty() {
            // Members parsed from bare names were really collection items.
            let mut all: Vec<Expr> = members.into_iter().map(|(_, e)| e).collect();
            all.extend(items);
            return Ok(Init::Items(all));
        }
        Ok(Init::Members(members))
    }
}

fn binop(t: &Tok) -> Option<(BinOp, u8)> {
    let Tok::Punct(p) = t else { return None };
    Some(match *p {
        "||" => (BinOp::Or, 1),
        "&&" => (BinOp::And, 2),
        "|" => (BinOp::BitOr, 3),
        "^" => (BinOp::BitXor, 4),
        "&" => (BinOp::BitAnd, 5),
        "==" => (BinOp::Eq, 6),
        "!=" => (BinOp::Ne, 6),
        "<" => (BinOp::Lt, 7),
        ">" => (BinOp::Gt, 7),
        "<=" => (BinOp::Le, 7),
        ">=" => (BinOp::Ge, 7),
        "<<" => (BinOp::Shl, 8),
        "+" => (BinOp::Add, 9),
        "-" => (BinOp::Sub, 9),
        "*" => (BinOp::Mul, 10),
        "/" => (BinOp::Div, 10),
        "%" => (BinOp::Rem, 10),
        _ => return None,
    })
}
