//! The evaluator: runs a compiled program over a frame of locals, with a step budget, a depth
//! limit and a string-size limit, so a hostile or buggy expression cannot stall a worker.

use std::sync::Arc;

use super::ast::BinOp;
use super::builtins;
use super::compile::{CArg, CInit, Func, LValue, LambdaCode, Node, Program, Stmt};
use super::context::ContextEnv;
pub use super::operators::{binary, unary};
use super::value::{self, Lambda, Value};

/// Bounds on one evaluation.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_steps: u64,
    pub max_depth: u32,
    /// Largest string or byte array an expression may produce.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: 1_000_000,
            max_depth: 256,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Why an evaluation stopped.
#[derive(Clone, Debug, thiserror::Error)]
pub enum EvalError {
    /// A .NET-style exception (catchable by `try`/`catch` in the expression).
    #[error("{ty}: {message}")]
    Exception { ty: String, message: String },
    /// A limit was reached (not catchable).
    #[error("{0}")]
    Limit(String),
}

impl EvalError {
    pub fn message(&self) -> String {
        match self {
            EvalError::Exception { ty, message } => format!("{ty}: {message}"),
            EvalError::Limit(m) => m.clone(),
        }
    }
}

pub type EResult<T> = Result<T, EvalError>;

/// Positional and named argument values of a call (inline up to four: no allocation for the
/// usual calls).
type Args = (smallvec::SmallVec<[Value; 4]>, Vec<(String, Value)>);

pub fn exception<T>(ty: &str, message: impl Into<String>) -> EResult<T> {
    Err(EvalError::Exception {
        ty: ty.to_string(),
        message: message.into(),
    })
}

pub fn null_ref<T>(what: &str) -> EResult<T> {
    exception(
        "NullReferenceException",
        format!("Object reference not set to an instance of an object ({what})"),
    )
}

enum Flow {
    Normal,
    Return(Value),
    Break,
    Continue,
}

pub struct Machine<'a> {
    pub env: &'a mut dyn ContextEnv,
    frame: Vec<Value>,
    funcs: &'a [Func],
    steps: u64,
    depth: u32,
    /// Nested `eval` / `stmt` calls, for the stack check.
    nesting: u32,
    pub limits: Limits,
}

/// How many nested evaluation steps run between stack checks. Debug-build frames of `eval`
/// reach 20 KB, so 8 of them stay far inside `expr::STACK_RED_ZONE`.
const STACK_CHECK_EVERY: u32 = 8;

/// Evaluate a program against the request context.
pub fn run(p: &Program, env: &mut dyn ContextEnv, limits: Limits) -> EResult<Value> {
    let mut m = Machine {
        env,
        frame: vec![Value::Null; p.slots as usize],
        funcs: &p.funcs,
        steps: 0,
        depth: 0,
        nesting: 0,
        limits,
    };
    match &p.body {
        LambdaCode::Expr(e) => m.eval(e),
        LambdaCode::Block(b) => match m.block(b)? {
            Flow::Return(v) => Ok(v),
            _ => exception(
                "InvalidOperationException",
                "the block ended without `return`",
            ),
        },
    }
}

impl Machine<'_> {
    fn tick(&mut self) -> EResult<()> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(EvalError::Limit(format!(
                "expression exceeded its budget of {} steps",
                self.limits.max_steps
            )));
        }
        Ok(())
    }

    pub fn check_size(&self, len: usize) -> EResult<()> {
        if len > self.limits.max_bytes {
            return Err(EvalError::Limit(format!(
                "expression produced {len} bytes; the limit is {}",
                self.limits.max_bytes
            )));
        }
        Ok(())
    }

    /// Call a lambda value with arguments (used by LINQ and friends).
    pub fn call_lambda(&mut self, f: &Value, args: &[Value]) -> EResult<Value> {
        let Value::Lambda(l) = f else {
            return exception(
                "InvalidCastException",
                format!("expected a function, found {}", f.type_name()),
            );
        };
        self.invoke(l, args)
    }

    fn invoke(&mut self, l: &Arc<Lambda>, args: &[Value]) -> EResult<Value> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(EvalError::Limit(
                "expression nests or recurses too deeply".into(),
            ));
        }
        for (slot, a) in l.params.iter().zip(args) {
            self.frame[*slot as usize] = a.clone();
        }
        let r = match &l.body {
            LambdaCode::Expr(e) => self.eval(e),
            LambdaCode::Block(b) => match self.block(b) {
                Ok(Flow::Return(v)) => Ok(v),
                Ok(_) => Ok(Value::Null),
                Err(e) => Err(e),
            },
        };
        self.depth -= 1;
        r
    }

    fn call_func(&mut self, f: u32, args: Vec<Value>) -> EResult<Value> {
        let funcs = self.funcs;
        let func = funcs
            .get(f as usize)
            .ok_or(EvalError::Limit("unknown local function".into()))?;
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(EvalError::Limit(
                "expression nests or recurses too deeply".into(),
            ));
        }
        // Save parameters so simple recursion works.
        let saved: Vec<Value> = func
            .params
            .iter()
            .map(|s| self.frame[*s as usize].clone())
            .collect();
        for (slot, a) in func.params.iter().zip(args) {
            self.frame[*slot as usize] = a;
        }
        let r = match &func.body {
            LambdaCode::Expr(e) => self.eval(e),
            LambdaCode::Block(b) => match self.block(b) {
                Ok(Flow::Return(v)) => Ok(v),
                Ok(_) => Ok(Value::Null),
                Err(e) => Err(e),
            },
        };
        for (slot, v) in func.params.iter().zip(saved) {
            self.frame[*slot as usize] = v;
        }
        self.depth -= 1;
        r
    }

    fn block(&mut self, stmts: &[Stmt]) -> EResult<Flow> {
        for s in stmts {
            match self.stmt(s)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn cond(&mut self, n: &Node) -> EResult<bool> {
        match self.eval(n)? {
            Value::Bool(b) => Ok(b),
            v => exception(
                "InvalidCastException",
                format!("a condition must be bool, found {}", v.type_name()),
            ),
        }
    }

    fn stmt(&mut self, s: &Stmt) -> EResult<Flow> {
        self.nest(|m| m.stmt_unguarded(s))
    }

    /// Every `STACK_CHECK_EVERY` levels of nested evaluation, make sure enough stack is left
    /// (`expr::with_stack`): a deep expression or recursive local function cannot overflow
    /// a worker thread's stack. Between checks, only a counter.
    #[inline]
    fn nest<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        self.nesting += 1;
        let r = if self.nesting.is_multiple_of(STACK_CHECK_EVERY) {
            super::with_stack(|| f(self))
        } else {
            f(self)
        };
        self.nesting -= 1;
        r
    }

    fn stmt_unguarded(&mut self, s: &Stmt) -> EResult<Flow> {
        self.tick()?;
        match s {
            Stmt::Let(slot, e) => {
                let v = self.eval(e)?;
                self.frame[*slot as usize] = v;
            }
            Stmt::Expr(e) => {
                self.eval(e)?;
            }
            Stmt::If(c, t, o) => {
                return if self.cond(c)? {
                    self.block(t)
                } else {
                    self.block(o)
                };
            }
            Stmt::Foreach(slot, iter, body) => {
                let it = self.eval(iter)?;
                let items = builtins::iterate(self, &it)?;
                for it in items {
                    self.tick()?;
                    self.frame[*slot as usize] = it;
                    match self.block(body)? {
                        Flow::Break => break,
                        Flow::Return(v) => return Ok(Flow::Return(v)),
                        _ => {}
                    }
                }
            }
            Stmt::For(init, cond, step, body) => {
                for s in init {
                    self.stmt(s)?;
                }
                loop {
                    self.tick()?;
                    if let Some(c) = cond {
                        if !self.cond(c)? {
                            break;
                        }
                    }
                    match self.block(body)? {
                        Flow::Break => break,
                        Flow::Return(v) => return Ok(Flow::Return(v)),
                        _ => {}
                    }
                    for e in step {
                        self.eval(e)?;
                    }
                }
            }
            Stmt::While(c, body) => {
                while self.cond(c)? {
                    self.tick()?;
                    match self.block(body)? {
                        Flow::Break => break,
                        Flow::Return(v) => return Ok(Flow::Return(v)),
                        _ => {}
                    }
                }
            }
            Stmt::DoWhile(body, c) => loop {
                self.tick()?;
                match self.block(body)? {
                    Flow::Break => break,
                    Flow::Return(v) => return Ok(Flow::Return(v)),
                    _ => {}
                }
                if !self.cond(c)? {
                    break;
                }
            },
            Stmt::Return(e) => {
                let v = match e {
                    Some(e) => self.eval(e)?,
                    None => Value::Null,
                };
                return Ok(Flow::Return(v));
            }
            Stmt::Break => return Ok(Flow::Break),
            Stmt::Continue => return Ok(Flow::Continue),
            Stmt::Block(b) => return self.block(b),
            Stmt::Try {
                body,
                catches,
                finally,
            } => {
                let r = self.block(body);
                let r = match r {
                    Err(EvalError::Exception { ty, message }) if !catches.is_empty() => {
                        let (_, slot, cbody) = &catches[0];
                        if let Some(s) = slot {
                            self.frame[*s as usize] = Value::obj(value::Obj::Exception {
                                ty: ty.clone(),
                                message: message.clone(),
                            });
                        }
                        self.block(cbody)
                    }
                    other => other,
                };
                if !finally.is_empty() {
                    self.block(finally)?;
                }
                return r;
            }
            Stmt::Throw(e) => {
                let v = match e {
                    Some(e) => self.eval(e)?,
                    None => Value::Null,
                };
                return Err(to_exception(v));
            }
        }
        Ok(Flow::Normal)
    }

    pub fn eval(&mut self, n: &Node) -> EResult<Value> {
        self.nest(|m| m.eval_unguarded(n))
    }

    fn eval_unguarded(&mut self, n: &Node) -> EResult<Value> {
        self.tick()?;
        match n {
            Node::Const(v) => Ok(v.clone()),
            Node::Local(s) => Ok(self.frame[*s as usize].clone()),
            Node::Ctx(c) => Ok(Value::Ctx(*c)),
            Node::Prop(p) => self
                .env
                .prop(p.obj, p.name)
                .map_err(|m| EvalError::Exception {
                    ty: "InvalidOperationException".into(),
                    message: m.0,
                }),
            Node::Interp(parts) => {
                let mut s = String::new();
                for (e, text) in parts {
                    match e {
                        None => s.push_str(text),
                        Some(e) => {
                            let v = self.eval(e)?;
                            s.push_str(&builtins::format_value(&v, text)?);
                        }
                    }
                    self.check_size(s.len())?;
                }
                Ok(Value::string(s))
            }
            Node::Member {
                target,
                name,
                null_cond,
            } => {
                let t = self.eval(target)?;
                if t.is_null() {
                    // Nullable<T>.HasValue on null is false, not an error.
                    return if *name == "HasValue" {
                        Ok(Value::Bool(false))
                    } else if *null_cond {
                        Ok(Value::Null)
                    } else {
                        null_ref(name)
                    };
                }
                builtins::get_member(self, &t, name)
            }
            Node::Static { ty, name } => builtins::static_get(self, ty, name),
            Node::Index {
                target,
                args,
                null_cond,
            } => {
                let t = self.eval(target)?;
                if t.is_null() {
                    return if *null_cond {
                        Ok(Value::Null)
                    } else {
                        null_ref("indexer")
                    };
                }
                let a = self.eval_all(args)?;
                builtins::index_get(self, &t, &a)
            }
            Node::Call {
                target,
                name,
                type_args,
                args,
                null_cond,
            } => {
                let t = self.eval(target)?;
                if t.is_null() {
                    return if *null_cond {
                        Ok(Value::Null)
                    } else {
                        null_ref(name)
                    };
                }
                let (vals, named) = self.eval_args(args)?;
                let mut outs = Vec::new();
                let r = builtins::call_method(self, &t, name, type_args, &vals, &named, &mut outs)?;
                self.store_outs(args, outs);
                Ok(r)
            }
            Node::StaticCall {
                ty,
                name,
                type_args,
                args,
            } => {
                let (vals, named) = self.eval_args(args)?;
                let mut outs = Vec::new();
                let r = builtins::call_static(self, ty, name, type_args, &vals, &named, &mut outs)?;
                self.store_outs(args, outs);
                Ok(r)
            }
            Node::LocalCall { func, args } => {
                let a = self.eval_all(args)?;
                self.call_func(*func, a)
            }
            Node::Invoke { target, args } => {
                let f = self.eval(target)?;
                let a = self.eval_all(args)?;
                self.call_lambda(&f, &a)
            }
            Node::New { ty, args, init } => {
                let (vals, _) = self.eval_args(args)?;
                let init = match init {
                    None => None,
                    Some(CInit::Items(items)) => {
                        Some(builtins::Initializer::Items(self.eval_all(items)?))
                    }
                    Some(CInit::Keyed(kv)) => {
                        let mut out = Vec::new();
                        for (k, v) in kv {
                            out.push((self.eval(k)?, self.eval(v)?));
                        }
                        Some(builtins::Initializer::Keyed(out))
                    }
                    Some(CInit::Members(m)) => {
                        let mut out = Vec::new();
                        for (k, v) in m {
                            out.push((k.clone(), self.eval(v)?));
                        }
                        Some(builtins::Initializer::Members(out))
                    }
                };
                builtins::construct(self, ty, vals.into_vec(), init)
            }
            Node::NewArray { items } => {
                let v = self.eval_all(items)?;
                Ok(builtins::typed_array(v))
            }
            Node::NewAnon { members } => {
                let mut map = value::JMap::default();
                for (k, v) in members {
                    let v = self.eval(v)?;
                    map.insert(k.clone(), v);
                }
                Ok(Value::JObject(value::shared(map)))
            }
            Node::Unary { op, expr } => {
                let v = self.eval(expr)?;
                unary(*op, v)
            }
            Node::Binary { op, left, right } => match op {
                BinOp::And => Ok(Value::Bool(self.cond(left)? && self.cond(right)?)),
                BinOp::Or => Ok(Value::Bool(self.cond(left)? || self.cond(right)?)),
                BinOp::Coalesce => {
                    let l = self.eval(left)?;
                    if l.is_null() {
                        self.eval(right)
                    } else {
                        Ok(l)
                    }
                }
                _ => {
                    let l = self.eval(left)?;
                    let r = self.eval(right)?;
                    let v = binary(*op, &l, &r)?;
                    if let Value::Str(s) = &v {
                        self.check_size(s.len())?;
                    }
                    Ok(v)
                }
            },
            Node::Cond { cond, then, other } => {
                if self.cond(cond)? {
                    self.eval(then)
                } else {
                    self.eval(other)
                }
            }
            Node::Assign { target, op, value } => {
                let v = match op {
                    None => self.eval(value)?,
                    Some(BinOp::Coalesce) => {
                        let cur = self.read_lvalue(target)?;
                        if !cur.is_null() {
                            return Ok(cur);
                        }
                        self.eval(value)?
                    }
                    Some(op) => {
                        let cur = self.read_lvalue(target)?;
                        let r = self.eval(value)?;
                        binary(*op, &cur, &r)?
                    }
                };
                self.write_lvalue(target, v.clone())?;
                Ok(v)
            }
            Node::IncDec {
                target,
                delta,
                prefix,
            } => {
                let cur = self.read_lvalue(target)?;
                let next = binary(BinOp::Add, &cur, &Value::Int(*delta))?;
                self.write_lvalue(target, next.clone())?;
                Ok(if *prefix { next } else { cur })
            }
            Node::Cast { ty, expr } => {
                let v = self.eval(expr)?;
                builtins::cast(self, v, ty)
            }
            Node::Is { expr, ty, bind } => {
                let v = self.eval(expr)?;
                let ok = builtins::is_type(&v, ty);
                if ok {
                    if let Some(s) = bind {
                        self.frame[*s as usize] = v;
                    }
                }
                Ok(Value::Bool(ok))
            }
            Node::IsPattern {
                expr,
                value,
                negate,
            } => {
                let v = self.eval(expr)?;
                let p = self.eval(value)?;
                Ok(Value::Bool(value::equals(&v, &p) != *negate))
            }
            Node::As { expr, ty } => {
                let v = self.eval(expr)?;
                Ok(if builtins::is_type(&v, ty) {
                    v
                } else {
                    Value::Null
                })
            }
            Node::Lambda(l) => Ok(Value::Lambda(l.clone())),
            Node::Throw(e) => {
                let v = match e {
                    Some(e) => self.eval(e)?,
                    None => Value::Null,
                };
                Err(to_exception(v))
            }
            Node::Default(t) => Ok(t.as_ref().map_or(Value::Null, |t| builtins::default_of(t))),
        }
    }

    fn eval_all(&mut self, ns: &[Node]) -> EResult<Vec<Value>> {
        let mut out = Vec::with_capacity(ns.len());
        for n in ns {
            out.push(self.eval(n)?);
        }
        Ok(out)
    }

    fn eval_args(&mut self, args: &[CArg]) -> EResult<Args> {
        let mut vals = smallvec::SmallVec::new();
        let mut named = Vec::new();
        for a in args {
            let v = self.eval(&a.value)?;
            match &a.name {
                Some(n) => named.push((n.clone(), v)),
                None => vals.push(v),
            }
        }
        Ok((vals, named))
    }

    fn store_outs(&mut self, args: &[CArg], outs: Vec<Value>) {
        let mut it = outs.into_iter();
        for a in args {
            if let Some(slot) = a.out {
                if let Some(v) = it.next() {
                    self.frame[slot as usize] = v;
                }
            }
        }
    }

    fn read_lvalue(&mut self, lv: &LValue) -> EResult<Value> {
        match lv {
            LValue::Local(s) => Ok(self.frame[*s as usize].clone()),
            LValue::Index { target, args } => {
                let t = self.eval(target)?;
                let a = self.eval_all(args)?;
                builtins::index_get(self, &t, &a)
            }
            LValue::Member { target, name } => {
                let t = self.eval(target)?;
                builtins::get_member(self, &t, name)
            }
        }
    }

    fn write_lvalue(&mut self, lv: &LValue, v: Value) -> EResult<()> {
        match lv {
            LValue::Local(s) => {
                self.frame[*s as usize] = v;
                Ok(())
            }
            LValue::Index { target, args } => {
                let t = self.eval(target)?;
                let a = self.eval_all(args)?;
                builtins::index_set(&t, &a, v)
            }
            LValue::Member { target, name } => {
                let t = self.eval(target)?;
                builtins::set_member(&t, name, v)
            }
        }
    }
}

fn to_exception(v: Value) -> EvalError {
    match &v {
        Value::Obj(o) => match &**o {
            value::Obj::Exception { ty, message } => EvalError::Exception {
                ty: ty.clone(),
                message: message.clone(),
            },
            _ => EvalError::Exception {
                ty: "Exception".into(),
                message: v.to_display(),
            },
        },
        _ => EvalError::Exception {
            ty: "Exception".into(),
            message: v.to_display(),
        },
    }
}
