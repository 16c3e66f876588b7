//! The unary and binary operators, with C# numeric promotion.

use super::ast::{BinOp, UnOp};
use super::eval::{exception, EResult};
use super::value::{self, Value};

pub fn unary(op: UnOp, v: Value) -> EResult<Value> {
    Ok(match (op, v) {
        (UnOp::Not, Value::Bool(b)) => Value::Bool(!b),
        (UnOp::Neg, Value::Int(i)) => Value::Int(i.wrapping_neg()),
        (UnOp::Neg, Value::Long(i)) => Value::Long(i.wrapping_neg()),
        (UnOp::Neg, Value::Double(d)) => Value::Double(-d),
        (UnOp::Plus, v @ (Value::Int(_) | Value::Long(_) | Value::Double(_))) => v,
        (UnOp::BitNot, Value::Int(i)) => Value::Int(!i),
        (UnOp::BitNot, Value::Long(i)) => Value::Long(!i),
        (_, Value::Null) => Value::Null,
        (op, v) => {
            return exception(
                "InvalidOperationException",
                format!("operator {op:?} cannot be applied to {}", v.type_name()),
            )
        }
    })
}

/// Binary operators with C# numeric promotion; `+` concatenates when either side is a string.
pub fn binary(op: BinOp, l: &Value, r: &Value) -> EResult<Value> {
    use Value::*;
    match op {
        BinOp::Eq => return Ok(Bool(value::equals(l, r))),
        BinOp::Ne => return Ok(Bool(!value::equals(l, r))),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            if l.is_null() || r.is_null() {
                return Ok(Bool(false));
            }
            let ord = match (l, r) {
                (Str(_), Str(_)) => {
                    return exception(
                        "InvalidOperationException",
                        "strings cannot be compared with < or >; use string.Compare",
                    )
                }
                _ => value::compare(l, r),
            };
            let Some(ord) = ord else {
                return exception(
                    "InvalidOperationException",
                    format!("cannot compare {} with {}", l.type_name(), r.type_name()),
                );
            };
            use std::cmp::Ordering::*;
            return Ok(Bool(match op {
                BinOp::Lt => ord == Less,
                BinOp::Le => ord != Greater,
                BinOp::Gt => ord == Greater,
                _ => ord != Less,
            }));
        }
        _ => {}
    }
    if op == BinOp::Add {
        // `ns + "local"`: an XName in that namespace.
        if let (Obj(o), Str(local)) = (l, r) {
            if let value::Obj::XNamespace(ns) = &**o {
                return Ok(Value::obj(value::Obj::XName {
                    ns: ns.clone(),
                    local: local.to_string(),
                }));
            }
        }
        if let (Str(_), _) | (_, Str(_)) = (l, r) {
            let mut s = String::new();
            s.push_str(&l.to_display());
            s.push_str(&r.to_display());
            return Ok(Value::string(s));
        }
        match (l, r) {
            (DateTime(d), TimeSpan(t)) | (TimeSpan(t), DateTime(d)) => {
                return Ok(DateTime(super::datetime::DateTime {
                    ticks: d.ticks + t,
                    kind: d.kind,
                }))
            }
            (TimeSpan(a), TimeSpan(b)) => return Ok(TimeSpan(a + b)),
            _ => {}
        }
    }
    if op == BinOp::Sub {
        match (l, r) {
            (DateTime(a), DateTime(b)) => return Ok(TimeSpan(a.ticks - b.ticks)),
            (DateTime(d), TimeSpan(t)) => {
                return Ok(DateTime(super::datetime::DateTime {
                    ticks: d.ticks - t,
                    kind: d.kind,
                }))
            }
            (TimeSpan(a), TimeSpan(b)) => return Ok(TimeSpan(a - b)),
            _ => {}
        }
    }
    if let (Bool(a), Bool(b)) = (l, r) {
        return match op {
            BinOp::BitAnd => Ok(Bool(*a & *b)),
            BinOp::BitOr => Ok(Bool(*a | *b)),
            BinOp::BitXor => Ok(Bool(*a ^ *b)),
            _ => exception(
                "InvalidOperationException",
                "operator cannot be applied to bool",
            ),
        };
    }
    if l.is_null() || r.is_null() {
        // Lifted operators on nullable values give null.
        return Ok(Null);
    }
    let is_int = |v: &Value| matches!(v, Int(_) | Char(_) | Byte(_));
    if matches!(l, Double(_)) || matches!(r, Double(_)) {
        let (a, b) = (num(l)?, num(r)?);
        return Ok(Double(match op {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Rem => a % b,
            _ => {
                return exception(
                    "InvalidOperationException",
                    "bitwise operators need integers",
                )
            }
        }));
    }
    let (a, b) = (int(l)?, int(r)?);
    let both_int = is_int(l) && is_int(r);
    if matches!(op, BinOp::Div | BinOp::Rem) && b == 0 {
        return exception("DivideByZeroException", "Attempted to divide by zero.");
    }
    let v = match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::Div => a.wrapping_div(b),
        BinOp::Rem => a.wrapping_rem(b),
        BinOp::BitAnd => a & b,
        BinOp::BitOr => a | b,
        BinOp::BitXor => a ^ b,
        BinOp::Shl => a.wrapping_shl(b as u32),
        BinOp::Shr => a.wrapping_shr(b as u32),
        _ => {
            return exception(
                "InvalidOperationException",
                format!("operator {op:?} is not supported here"),
            )
        }
    };
    Ok(if both_int { Int(v as i32) } else { Long(v) })
}

fn num(v: &Value) -> EResult<f64> {
    v.as_f64().map_or_else(
        || {
            exception(
                "InvalidOperationException",
                format!("expected a number, found {}", v.type_name()),
            )
        },
        Ok,
    )
}

fn int(v: &Value) -> EResult<i64> {
    match v {
        Value::Int(_) | Value::Long(_) | Value::Char(_) | Value::Byte(_) | Value::Enum(_) => {
            Ok(v.as_i64().unwrap_or(0))
        }
        _ => exception(
            "InvalidOperationException",
            format!("expected a number, found {}", v.type_name()),
        ),
    }
}
