//! Syntax tree of the C# subset, with the byte offset of every node in the expression source.

#[derive(Clone, Debug, PartialEq)]
pub struct TypeRef {
    /// Dotted name as written (`string`, `JObject`, `System.Text.Encoding`).
    pub name: String,
    pub args: Vec<TypeRef>,
    pub nullable: bool,
    /// Array rank count (`string[]` = 1).
    pub arrays: usize,
    pub at: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Char(char),
    Str(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum InterpSeg {
    Text(String),
    Hole(Box<Expr>, Option<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// Named argument (`preserveContent: true`).
    pub name: Option<String>,
    /// `out var x` / `out T x` / `out x`: the variable receiving the value.
    pub out: Option<OutArg>,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OutArg {
    /// `out var x` or `out T x`: declares a new local.
    Declare(String),
    /// `out x`: assigns an existing local.
    Existing(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
    Coalesce,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
    BitNot,
    Plus,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LambdaBody {
    Expr(Box<Expr>),
    Block(Vec<Stmt>),
}

/// Object / collection initialisers after `new T(...)`.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// `{ a, b }` collection initialiser or array elements.
    Items(Vec<Expr>),
    /// `{ ["k"] = v }` / `{ { "k", v } }` dictionary initialiser.
    Keyed(Vec<(Expr, Expr)>),
    /// `{ Name = v }` object initialiser.
    Members(Vec<(String, Expr)>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Lit(Lit),
    Interp(Vec<InterpSeg>),
    Name(String),
    Member {
        target: Box<Expr>,
        name: String,
        null_cond: bool,
    },
    Index {
        target: Box<Expr>,
        args: Vec<Expr>,
        null_cond: bool,
    },
    Call {
        target: Box<Expr>,
        type_args: Vec<TypeRef>,
        args: Vec<Arg>,
    },
    /// `new T(args) { init }`; `ty` is None for `new[] { .. }` and anonymous `new { .. }`.
    New {
        ty: Option<TypeRef>,
        args: Vec<Arg>,
        init: Option<Init>,
    },
    Unary {
        op: UnOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Cond {
        cond: Box<Expr>,
        then: Box<Expr>,
        other: Box<Expr>,
    },
    /// `target = value`, or a compound `target op= value`.
    Assign {
        target: Box<Expr>,
        op: Option<BinOp>,
        value: Box<Expr>,
    },
    /// `++x` / `x++` / `--x` / `x--`.
    IncDec {
        target: Box<Expr>,
        delta: i32,
        prefix: bool,
    },
    Cast {
        ty: TypeRef,
        expr: Box<Expr>,
    },
    Is {
        expr: Box<Expr>,
        ty: TypeRef,
        bind: Option<String>,
    },
    /// `x is null` / `x is not null` / `x is "lit"`.
    IsPattern {
        expr: Box<Expr>,
        value: Box<Expr>,
        negate: bool,
    },
    As {
        expr: Box<Expr>,
        ty: TypeRef,
    },
    Lambda {
        params: Vec<String>,
        body: LambdaBody,
    },
    /// A type used as a value: `string`, `int` (before `.Member`), `typeof(T)`, `default(T)`.
    Type(TypeRef),
    Default(Option<TypeRef>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub at: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Catch {
    pub ty: Option<TypeRef>,
    pub name: Option<String>,
    pub body: Vec<Stmt>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `var a = 1, b = 2;` / `string s = "";` (ty None for var).
    Var {
        ty: Option<TypeRef>,
        decls: Vec<(String, Option<Expr>)>,
    },
    Expr(Expr),
    If {
        cond: Expr,
        then: Vec<Stmt>,
        other: Option<Vec<Stmt>>,
    },
    Foreach {
        name: String,
        iter: Expr,
        body: Vec<Stmt>,
    },
    For {
        init: Vec<Stmt>,
        cond: Option<Expr>,
        step: Vec<Expr>,
        body: Vec<Stmt>,
    },
    While {
        cond: Expr,
        body: Vec<Stmt>,
    },
    DoWhile {
        body: Vec<Stmt>,
        cond: Expr,
    },
    Return(Option<Expr>),
    Break,
    Continue,
    Block(Vec<Stmt>),
    Try {
        body: Vec<Stmt>,
        catches: Vec<Catch>,
        finally: Option<Vec<Stmt>>,
    },
    Throw(Option<Expr>),
    /// A local function: `string F(string a) { ... }` or `=> expr`.
    LocalFn {
        name: String,
        params: Vec<String>,
        body: LambdaBody,
    },
    Empty,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub at: usize,
}
