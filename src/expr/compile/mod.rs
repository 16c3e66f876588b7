//! The binder: resolves names (locals to frame slots, `context` members, allowed types and
//! their static members), checks member names, and produces the tree the evaluator runs.
//! Every error carries the byte offset of the offending name.

use std::collections::HashMap;
use std::sync::Arc;

use super::ast::{self, BinOp, ExprKind, Init, LambdaBody, Lit, OutArg, StmtKind, UnOp};
use super::builtins;
use super::types::{self, RType, Ty};
use super::value::{Ctx, Lambda, Value};

mod expressions;
mod statements;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message} (at offset {at})")]
pub struct CompileError {
    pub at: usize,
    pub message: String,
}

type CResult<T> = Result<T, CompileError>;

fn err<T>(at: usize, message: impl Into<String>) -> CResult<T> {
    Err(CompileError {
        at,
        message: message.into(),
    })
}

/// A `context` member that yields a value (rather than another context object).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtxProp {
    pub obj: Ctx,
    pub name: &'static str,
}

#[derive(Debug)]
pub enum Node {
    Const(Value),
    Local(u32),
    /// A context object handle (`context.Request`, ...), never null.
    Ctx(Ctx),
    /// A context member read from the running request (may be null: `context.Product`).
    Prop(CtxProp),
    Interp(Vec<(Option<Node>, String)>),
    Member {
        target: Box<Node>,
        name: &'static str,
        null_cond: bool,
    },
    Static {
        ty: Arc<RType>,
        name: &'static str,
    },
    Index {
        target: Box<Node>,
        args: Vec<Node>,
        null_cond: bool,
    },
    Call {
        target: Box<Node>,
        name: &'static str,
        type_args: Vec<RType>,
        args: Vec<CArg>,
        null_cond: bool,
    },
    StaticCall {
        ty: Arc<RType>,
        name: &'static str,
        type_args: Vec<RType>,
        args: Vec<CArg>,
    },
    LocalCall {
        func: u32,
        args: Vec<Node>,
    },
    Invoke {
        target: Box<Node>,
        args: Vec<Node>,
    },
    New {
        ty: Arc<RType>,
        args: Vec<CArg>,
        init: Option<CInit>,
    },
    NewArray {
        items: Vec<Node>,
    },
    NewAnon {
        members: Vec<(String, Node)>,
    },
    Unary {
        op: UnOp,
        expr: Box<Node>,
    },
    Binary {
        op: BinOp,
        left: Box<Node>,
        right: Box<Node>,
    },
    Cond {
        cond: Box<Node>,
        then: Box<Node>,
        other: Box<Node>,
    },
    Assign {
        target: Box<LValue>,
        op: Option<BinOp>,
        value: Box<Node>,
    },
    IncDec {
        target: Box<LValue>,
        delta: i32,
        prefix: bool,
    },
    Cast {
        ty: Arc<RType>,
        expr: Box<Node>,
    },
    Is {
        expr: Box<Node>,
        ty: Arc<RType>,
        bind: Option<u32>,
    },
    IsPattern {
        expr: Box<Node>,
        value: Box<Node>,
        negate: bool,
    },
    As {
        expr: Box<Node>,
        ty: Arc<RType>,
    },
    Lambda(Arc<Lambda>),
    Throw(Option<Box<Node>>),
    Default(Option<Arc<RType>>),
}

#[derive(Debug)]
pub struct CArg {
    pub name: Option<String>,
    /// For `out` arguments: the slot receiving the value.
    pub out: Option<u32>,
    pub value: Node,
}

#[derive(Debug)]
pub enum CInit {
    Items(Vec<Node>),
    Keyed(Vec<(Node, Node)>),
    Members(Vec<(String, Node)>),
}

#[derive(Debug)]
pub enum LValue {
    Local(u32),
    Index { target: Node, args: Vec<Node> },
    Member { target: Node, name: &'static str },
}

#[derive(Debug)]
pub enum Stmt {
    Let(u32, Node),
    Expr(Node),
    If(Node, Vec<Stmt>, Vec<Stmt>),
    Foreach(u32, Node, Vec<Stmt>),
    For(Vec<Stmt>, Option<Node>, Vec<Node>, Vec<Stmt>),
    While(Node, Vec<Stmt>),
    DoWhile(Vec<Stmt>, Node),
    Return(Option<Node>),
    Break,
    Continue,
    Block(Vec<Stmt>),
    Try {
        body: Vec<Stmt>,
        catches: Vec<CatchClause>,
        finally: Vec<Stmt>,
    },
    Throw(Option<Node>),
}

/// `catch (T name) { body }`: the exception type (None = any), the slot for `name`, the body.
pub type CatchClause = (Option<Arc<RType>>, Option<u32>, Vec<Stmt>);

#[derive(Debug)]
pub enum LambdaCode {
    Expr(Node),
    Block(Vec<Stmt>),
}

/// A local function: parameter slots and body.
#[derive(Debug)]
pub struct Func {
    pub params: Vec<u32>,
    pub body: LambdaCode,
}

/// A compiled expression or block.
#[derive(Debug)]
pub struct Program {
    pub body: LambdaCode,
    pub slots: u32,
    pub funcs: Vec<Func>,
    /// Reads `context.Request.Body` / `context.Response.Body`.
    pub reads_request_body: bool,
    pub reads_response_body: bool,
}

struct Binder {
    scopes: Vec<HashMap<String, u32>>,
    funcs: HashMap<String, u32>,
    func_bodies: Vec<Option<Func>>,
    next: u32,
    reads_request_body: bool,
    reads_response_body: bool,
}

pub fn compile_expression(e: &ast::Expr) -> CResult<Program> {
    let mut b = Binder::new();
    let node = b.expr(e)?;
    b.finish(LambdaCode::Expr(node))
}

pub fn compile_block(stmts: &[ast::Stmt]) -> CResult<Program> {
    let mut b = Binder::new();
    let body = b.block(stmts)?;
    if !always_returns(&body) {
        return err(
            0,
            "not all code paths return a value: a `@{ }` block must end in `return`",
        );
    }
    b.finish(LambdaCode::Block(body))
}

/// A `break` that is not inside a loop of its own.
fn loose_break(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match s {
        Stmt::Break => true,
        Stmt::If(_, a, b) => loose_break(a) || loose_break(b),
        Stmt::Block(b) => loose_break(b),
        Stmt::Try {
            body,
            catches,
            finally,
        } => loose_break(body) || catches.iter().any(|c| loose_break(&c.2)) || loose_break(finally),
        _ => false,
    })
}

fn always_returns(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match s {
        Stmt::Return(_) | Stmt::Throw(_) => true,
        Stmt::If(_, a, b) => always_returns(a) && always_returns(b),
        Stmt::Block(b) => always_returns(b),
        Stmt::Try {
            body,
            catches,
            finally,
        } => {
            (always_returns(body) && catches.iter().all(|c| always_returns(&c.2)))
                || always_returns(finally)
        }
        Stmt::While(Node::Const(Value::Bool(true)), _) => true,
        // A `switch` (read as `do { ... } while (false)`) whose sections all return.
        Stmt::DoWhile(b, Node::Const(Value::Bool(false))) => always_returns(b) && !loose_break(b),
        _ => false,
    })
}

impl Binder {
    fn new() -> Binder {
        Binder {
            scopes: vec![HashMap::new()],
            funcs: HashMap::new(),
            func_bodies: Vec::new(),
            next: 0,
            reads_request_body: false,
            reads_response_body: false,
        }
    }

    fn finish(self, body: LambdaCode) -> CResult<Program> {
        let funcs = self.func_bodies.into_iter().flatten().collect();
        Ok(Program {
            body,
            slots: self.next,
            funcs,
            reads_request_body: self.reads_request_body,
            reads_response_body: self.reads_response_body,
        })
    }

    fn declare(&mut self, name: &str, at: usize) -> CResult<u32> {
        if name == "context" {
            return err(at, "`context` cannot be redeclared");
        }
        if self.scopes.iter().any(|s| s.contains_key(name)) {
            return err(
                at,
                format!("a local named `{name}` is already defined in this scope"),
            );
        }
        let slot = self.next;
        self.next += 1;
        if let Some(s) = self.scopes.last_mut() {
            s.insert(name.to_string(), slot);
        }
        Ok(slot)
    }

    fn lookup(&self, name: &str) -> Option<u32> {
        self.scopes.iter().rev().find_map(|s| s.get(name).copied())
    }

    fn scoped<T>(&mut self, f: impl FnOnce(&mut Self) -> CResult<T>) -> CResult<T> {
        self.scopes.push(HashMap::new());
        let r = f(self);
        self.scopes.pop();
        r
    }
}
