//! Recursive-descent / precedence-climbing parser for the C# subset real policies use.

use super::ast::*;
use super::lexer::{self, IntKind, InterpPart, Tok, Token};

mod expressions;
mod statements;

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
