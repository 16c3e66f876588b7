//! Recursive-descent / precedence-climbing parser for the C# subset real policies use.

use super::ast::*;
use super::lexer::{self, IntKind, InterpPart, Tok, Token};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at offset {at})")]
pub struct ParseError {
    pub at: usize,
    pub message: String,
}

type PResult<T> = Result<T, ParseError>;

/// Names that denote types when they appear in `(T)x` casts.
const PREDEFINED: &[&str] = &[
    "string", "int", "long", "bool", "double", "float", "decimal", "char", "byte", "sbyte",
    "short", "ushort", "uint", "ulong", "object",
];

fn is_type_like(name: &str) -> bool {
    PREDEFINED.contains(&name) || super::types::is_known_type(name)
}

pub struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// Offset added to every position (for interpolation holes).
    base: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 200;

/// Parse `@( expr )` content (without the `@(` `)`), or `@{ stmts }` content.
pub fn parse_expression(src: &str, base: usize) -> PResult<Expr> {
    let mut p = Parser::new(src, base)?;
    let e = p.expr()?;
    p.expect_eof()?;
    Ok(e)
}

pub fn parse_block(src: &str, base: usize) -> PResult<Vec<Stmt>> {
    let mut p = Parser::new(src, base)?;
    let mut out = Vec::new();
    while !p.at_eof() {
        out.push(p.stmt()?);
    }
    Ok(out)
}

impl Parser {
    fn new(src: &str, base: usize) -> PResult<Parser> {
        let toks = lexer::lex(src).map_err(|e| ParseError {
            at: base + e.at,
            message: e.message,
        })?;
        Ok(Parser {
            toks,
            pos: 0,
            base,
            depth: 0,
        })
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }

    fn at(&self) -> usize {
        self.base + self.toks[self.pos.min(self.toks.len() - 1)].at
    }

    fn at_eof(&self) -> bool {
        matches!(self.peek(), Tok::Eof)
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(x) if *x == p)
    }

    fn is_ident(&self, name: &str) -> bool {
        matches!(self.peek(), Tok::Ident(x) if x == name)
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_ident(&mut self, name: &str) -> bool {
        if self.is_ident(name) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn err<T>(&self, message: impl Into<String>) -> PResult<T> {
        Err(ParseError {
            at: self.at(),
            message: message.into(),
        })
    }

    fn expect(&mut self, p: &str) -> PResult<()> {
        if self.eat(p) {
            Ok(())
        } else {
            self.err(format!("expected `{p}`, found {}", describe(self.peek())))
        }
    }

    fn expect_eof(&self) -> PResult<()> {
        if self.at_eof() {
            Ok(())
        } else {
            self.err(format!(
                "unexpected {} after the end of the expression",
                describe(self.peek())
            ))
        }
    }

    fn ident(&mut self) -> PResult<String> {
        // `bump` stays put at the end, so step back to where we were, not one before.
        let start = self.pos;
        match self.bump() {
            Tok::Ident(s) => Ok(s),
            t => {
                self.pos = start;
                self.err(format!("expected a name, found {}", describe(&t)))
            }
        }
    }

    /// Run `f`, then give back whatever nesting it entered (chains enter once per link).
    fn keep_depth<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        let depth = self.depth;
        let r = f(self);
        self.depth = depth;
        r
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("expression nests too deeply");
        }
        Ok(())
    }

    // ---- statements ----------------------------------------------------------------------

    fn block(&mut self) -> PResult<Vec<Stmt>> {
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
    fn body(&mut self) -> PResult<Vec<Stmt>> {
        if self.is_punct("{") {
            self.block()
        } else {
            Ok(vec![self.stmt()?])
        }
    }

    fn stmt(&mut self) -> PResult<Stmt> {
        self.enter()?;
        let r = super::with_stack(|| self.stmt_inner());
        self.depth -= 1;
        r
    }

    fn stmt_inner(&mut self) -> PResult<Stmt> {
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
    fn simple_stmt(&mut self) -> PResult<Stmt> {
        let at = self.at();
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
                    return Ok(Stmt {
                        kind: StmtKind::Var {
                            ty: Some(ty),
                            decls: self.declarators()?,
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

    fn try_local_fn(&mut self, name: String) -> PResult<Option<StmtKind>> {
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

    fn declarators(&mut self) -> PResult<Vec<(String, Option<Expr>)>> {
        let mut out = Vec::new();
        loop {
            let name = self.ident()?;
            let init = if self.eat("=") {
                Some(self.expr()?)
            } else {
                None
            };
            out.push((name, init));
            if !self.eat(",") {
                return Ok(out);
            }
        }
    }

    // ---- types ----------------------------------------------------------------------------

    fn type_ref(&mut self) -> PResult<TypeRef> {
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
    fn type_args(&mut self) -> Option<Vec<TypeRef>> {
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

    fn starts_operand_at(&self, n: usize) -> bool {
        match self.peek_at(n) {
            Tok::Ident(s) => !matches!(s.as_str(), "is" | "as" | "in"),
            Tok::Int(..) | Tok::Double(_) | Tok::Str(_) | Tok::Char(_) | Tok::Interp(_) => true,
            Tok::Punct(p) => matches!(*p, "(" | "!" | "~" | "-" | "+"),
            Tok::Eof => false,
        }
    }

    // ---- expressions ------------------------------------------------------------------------

    pub fn expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = super::with_stack(|| self.assignment());
        self.depth -= 1;
        r
    }

    fn assignment(&mut self) -> PResult<Expr> {
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

    fn try_lambda(&mut self) -> PResult<Option<Expr>> {
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

    fn conditional(&mut self) -> PResult<Expr> {
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
    fn coalesce(&mut self) -> PResult<Expr> {
        self.keep_depth(|p| {
            p.enter()?;
            p.coalesce_inner()
        })
    }

    fn coalesce_inner(&mut self) -> PResult<Expr> {
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
    fn coalesce_rhs(&mut self) -> PResult<Expr> {
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
    fn binary(&mut self, min: u8) -> PResult<Expr> {
        self.keep_depth(|p| p.binary_chain(min))
    }

    fn binary_chain(&mut self, min: u8) -> PResult<Expr> {
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
            let Some((op, prec)) = binop(self.peek()) else {
                break;
            };
            if prec < min {
                break;
            }
            self.enter()?;
            self.pos += 1;
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

    fn is_tail(&mut self, left: Expr, at: usize) -> PResult<Expr> {
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

    fn unary(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }

    fn unary_inner(&mut self) -> PResult<Expr> {
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
                if is_type_like(&n) || n.contains('.') {
                    if let Ok(ty) = self.type_ref() {
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
    fn postfix(&mut self) -> PResult<Expr> {
        self.keep_depth(Self::postfix_chain)
    }

    fn postfix_chain(&mut self) -> PResult<Expr> {
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

    fn call_args(&mut self) -> PResult<Vec<Arg>> {
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

    fn primary(&mut self) -> PResult<Expr> {
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

    fn new_expr(&mut self, at: usize) -> PResult<Expr> {
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

    fn items_init(&mut self) -> PResult<Vec<Expr>> {
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

    fn object_or_collection_init(&mut self) -> PResult<Init> {
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

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Int(v, _) => format!("`{v}`"),
        Tok::Double(v) => format!("`{v}`"),
        Tok::Str(_) | Tok::Interp(_) => "a string".into(),
        Tok::Char(c) => format!("`'{c}'`"),
        Tok::Punct(p) => format!("`{p}`"),
        Tok::Eof => "the end".into(),
    }
}
