//! LINQ (eager) over arrays, lists, sets, dictionaries and JSON arrays, and the instance
//! methods of those collections.

use std::sync::Arc;

use super::super::eval::{binary, exception, EResult, Machine};
use super::super::types::RType;
use super::super::value::{self, shared, Key, Value};
use super::names::Names;
use super::{arg, iterate};

/// The names this family implements, registered beside their code: the binder accepts a
/// member, method or static name only when a family registers it (`names.rs` chains them).
pub(super) const NAMES: Names = Names {
    members: &["Count", "First", "Last"],
    methods: &[
        "Contains",
        "IndexOf",
        "Insert",
        "Remove",
        "Append",
        "Clear",
        "Add",
        "AddRange",
        "RemoveAt",
        "RemoveAll",
        "ContainsKey",
        "ContainsValue",
        "TryGetValue",
        "GetValueOrDefault",
        "TryAdd",
        "Reverse",
        "Sort",
        "ToArray",
        "ToList",
        "ToDictionary",
        "ToHashSet",
        "Exists",
        "Find",
        "FindAll",
        "FindIndex",
        "ForEach",
        "TrueForAll",
        "Peek",
        "Pop",
        "Push",
        "Enqueue",
        "Dequeue",
        "UnionWith",
    ],
    static_members: &["Empty", "Any"],
    static_methods: &[
        "Join", "Concat", "Max", "Min", "Range", "Repeat", "Empty", "IndexOf", "Exists", "Find",
        "Reverse", "Sort",
    ],
};

pub(super) const LINQ: &[&str] = &[
    "Any",
    "All",
    "Where",
    "Select",
    "SelectMany",
    "First",
    "FirstOrDefault",
    "Last",
    "LastOrDefault",
    "Single",
    "SingleOrDefault",
    "Count",
    "LongCount",
    "Sum",
    "Min",
    "Max",
    "Average",
    "OrderBy",
    "OrderByDescending",
    "ThenBy",
    "ThenByDescending",
    "Skip",
    "Take",
    "SkipWhile",
    "TakeWhile",
    "Concat",
    "Distinct",
    "DistinctBy",
    "GroupBy",
    "Aggregate",
    "ElementAt",
    "ElementAtOrDefault",
    "DefaultIfEmpty",
    "Cast",
    "OfType",
    "Zip",
    "Union",
    "Intersect",
    "Except",
    "SequenceEqual",
    "Prepend",
    "Append",
    "ToArray",
    "ToList",
    "ToDictionary",
    "ToHashSet",
    "Contains",
    "Reverse",
    "MaxBy",
    "MinBy",
    "AsEnumerable",
    "SkipLast",
    "TakeLast",
    "Chunk",
    "Join",
];

pub fn is_linq(name: &str) -> bool {
    LINQ.contains(&name)
}

fn pred(m: &mut Machine, f: &Value, x: &Value) -> EResult<bool> {
    match m.call_lambda(f, std::slice::from_ref(x))? {
        Value::Bool(b) => Ok(b),
        v => exception(
            "InvalidCastException",
            format!("a predicate must return bool, found {}", v.type_name()),
        ),
    }
}

fn sorted(
    m: &mut Machine,
    items: Vec<Value>,
    key: Option<&Value>,
    desc: bool,
) -> EResult<Vec<Value>> {
    let mut keyed = Vec::with_capacity(items.len());
    for it in items {
        let k = match key {
            Some(f) => m.call_lambda(f, std::slice::from_ref(&it))?,
            None => it.clone(),
        };
        keyed.push((k, it));
    }
    keyed.sort_by(|a, b| {
        let o = value::compare(&a.0, &b.0).unwrap_or(std::cmp::Ordering::Equal);
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    Ok(keyed.into_iter().map(|(_, v)| v).collect())
}

fn none<T>(what: &str) -> EResult<T> {
    exception(
        "InvalidOperationException",
        format!("Sequence contains no {what}"),
    )
}

pub fn call(
    m: &mut Machine,
    v: &Value,
    name: &str,
    targs: &[RType],
    args: &[Value],
) -> EResult<Value> {
    let items = iterate(m, v)?;
    let f = args.first();
    Ok(match name {
        "Any" => match f {
            None => Value::Bool(!items.is_empty()),
            Some(f) => {
                for x in &items {
                    if pred(m, f, x)? {
                        return Ok(Value::Bool(true));
                    }
                }
                Value::Bool(false)
            }
        },
        "All" => {
            let f = arg(args, 0, "All")?;
            for x in &items {
                if !pred(m, f, x)? {
                    return Ok(Value::Bool(false));
                }
            }
            Value::Bool(true)
        }
        "Contains" => {
            let n = arg(args, 0, "Contains")?;
            Value::Bool(items.iter().any(|x| value::equals(x, n)))
        }
        "Where" => {
            let f = arg(args, 0, "Where")?;
            let mut out = Vec::new();
            for x in items {
                if pred(m, f, &x)? {
                    out.push(x);
                }
            }
            Value::list(out)
        }
        "Select" => {
            let f = arg(args, 0, "Select")?;
            let mut out = Vec::with_capacity(items.len());
            for (i, x) in items.into_iter().enumerate() {
                let r = match f {
                    Value::Lambda(l) if l.params.len() == 2 => {
                        m.call_lambda(f, &[x, Value::Int(i as i32)])?
                    }
                    _ => m.call_lambda(f, &[x])?,
                };
                out.push(r);
            }
            Value::list(out)
        }
        "SelectMany" => {
            let f = arg(args, 0, "SelectMany")?;
            let mut out = Vec::new();
            for x in items {
                let r = m.call_lambda(f, &[x])?;
                out.extend(iterate(m, &r)?);
            }
            Value::list(out)
        }
        "First" | "FirstOrDefault" | "Last" | "LastOrDefault" | "Single" | "SingleOrDefault" => {
            let mut matching = Vec::new();
            for x in items {
                let ok = match f {
                    Some(f) if matches!(f, Value::Lambda(_)) => pred(m, f, &x)?,
                    _ => true,
                };
                if ok {
                    matching.push(x);
                }
            }
            let default = || match f {
                Some(d) if !matches!(d, Value::Lambda(_)) => d.clone(),
                _ => args.get(1).cloned().unwrap_or(Value::Null),
            };
            match name {
                "First" => matching
                    .into_iter()
                    .next()
                    .map_or_else(|| none("matching element"), Ok)?,
                "FirstOrDefault" => matching.into_iter().next().unwrap_or_else(default),
                "Last" => matching
                    .pop()
                    .map_or_else(|| none("matching element"), Ok)?,
                "LastOrDefault" => matching.pop().unwrap_or_else(default),
                "Single" if matching.len() == 1 => matching.remove(0),
                "Single" => {
                    return exception(
                        "InvalidOperationException",
                        "Sequence contains no elements or more than one element",
                    )
                }
                _ if matching.len() > 1 => {
                    return exception(
                        "InvalidOperationException",
                        "Sequence contains more than one element",
                    )
                }
                _ => matching.pop().unwrap_or_else(default),
            }
        }
        "Count" | "LongCount" => {
            let n = match f {
                None => items.len(),
                Some(f) => {
                    let mut n = 0;
                    for x in &items {
                        if pred(m, f, x)? {
                            n += 1;
                        }
                    }
                    n
                }
            };
            if name == "Count" {
                Value::Int(n as i32)
            } else {
                Value::Long(n as i64)
            }
        }
        "Sum" | "Min" | "Max" | "Average" => {
            let mut vals = Vec::with_capacity(items.len());
            for x in items {
                vals.push(match f {
                    Some(f) => m.call_lambda(f, &[x])?,
                    None => x,
                });
            }
            match name {
                "Sum" => {
                    let mut acc = Value::Int(0);
                    for x in &vals {
                        acc = binary(super::super::ast::BinOp::Add, &acc, x)?;
                    }
                    acc
                }
                "Average" => {
                    if vals.is_empty() {
                        return none("elements");
                    }
                    let s: f64 = vals.iter().filter_map(Value::as_f64).sum();
                    Value::Double(s / vals.len() as f64)
                }
                _ => {
                    let want = if name == "Min" {
                        std::cmp::Ordering::Less
                    } else {
                        std::cmp::Ordering::Greater
                    };
                    let mut best: Option<Value> = None;
                    for x in vals {
                        best = match best {
                            None => Some(x),
                            Some(b) => Some(if value::compare(&x, &b) == Some(want) {
                                x
                            } else {
                                b
                            }),
                        };
                    }
                    best.map_or_else(|| none("elements"), Ok)?
                }
            }
        }
        "MaxBy" | "MinBy" => {
            let f = arg(args, 0, name)?;
            let s = sorted(m, items, Some(f), name == "MaxBy")?;
            s.into_iter().next().map_or_else(|| none("elements"), Ok)?
        }
        "OrderBy" | "ThenBy" => Value::list(sorted(m, items, f, false)?),
        "OrderByDescending" | "ThenByDescending" => Value::list(sorted(m, items, f, true)?),
        "Reverse" => Value::list(items.into_iter().rev().collect()),
        "Skip" | "Take" | "SkipLast" | "TakeLast" => {
            let n = arg(args, 0, name)?.as_i64().unwrap_or(0).max(0) as usize;
            let len = items.len();
            Value::list(match name {
                "Skip" => items.into_iter().skip(n).collect(),
                "Take" => items.into_iter().take(n).collect(),
                "SkipLast" => items.into_iter().take(len.saturating_sub(n)).collect(),
                _ => items.into_iter().skip(len.saturating_sub(n)).collect(),
            })
        }
        "SkipWhile" | "TakeWhile" => {
            let f = arg(args, 0, name)?;
            let mut out = Vec::new();
            let mut taking = name == "TakeWhile";
            let mut skipping = name == "SkipWhile";
            for x in items {
                if skipping {
                    if pred(m, f, &x)? {
                        continue;
                    }
                    skipping = false;
                }
                if taking && !pred(m, f, &x)? {
                    taking = false;
                    break;
                }
                out.push(x);
            }
            let _ = taking;
            Value::list(out)
        }
        "Concat" | "Union" => {
            let other = iterate(m, arg(args, 0, name)?)?;
            let all: Vec<Value> = items.into_iter().chain(other).collect();
            Value::list(if name == "Union" { distinct(all) } else { all })
        }
        "Prepend" => Value::list(
            std::iter::once(arg(args, 0, name)?.clone())
                .chain(items)
                .collect(),
        ),
        "Append" => Value::list(
            items
                .into_iter()
                .chain(std::iter::once(arg(args, 0, name)?.clone()))
                .collect(),
        ),
        "Distinct" => Value::list(distinct(items)),
        "DistinctBy" => {
            let f = arg(args, 0, name)?;
            let mut seen = indexmap::IndexSet::new();
            let mut out = Vec::new();
            for x in items {
                let k = Key::from_value(&m.call_lambda(f, std::slice::from_ref(&x))?);
                if seen.insert(k) {
                    out.push(x);
                }
            }
            Value::list(out)
        }
        "Intersect" | "Except" => {
            let other = iterate(m, arg(args, 0, name)?)?;
            let keep = name == "Intersect";
            Value::list(distinct(
                items
                    .into_iter()
                    .filter(|x| other.iter().any(|o| value::equals(x, o)) == keep)
                    .collect(),
            ))
        }
        "GroupBy" => {
            let f = arg(args, 0, name)?;
            let mut groups: indexmap::IndexMap<Key, (Value, Vec<Value>)> =
                indexmap::IndexMap::new();
            for x in items {
                let k = m.call_lambda(f, std::slice::from_ref(&x))?;
                groups
                    .entry(Key::from_value(&k))
                    .or_insert_with(|| (k, Vec::new()))
                    .1
                    .push(x);
            }
            // A group is a (Key, items) pair; `g.Key` and enumeration both work on it.
            Value::list(
                groups
                    .into_values()
                    .map(|(k, v)| Value::Pair(Arc::new((k, Value::list(v)))))
                    .collect(),
            )
        }
        "Aggregate" => {
            let (seed, f) = match args {
                [f] => (None, f),
                [seed, f, ..] => (Some(seed.clone()), f),
                [] => return exception("ArgumentException", "Aggregate needs a function"),
            };
            let mut it = items.into_iter();
            let mut acc = match seed {
                Some(s) => s,
                None => it.next().map_or_else(|| none("elements"), Ok)?,
            };
            for x in it {
                acc = m.call_lambda(f, &[acc, x])?;
            }
            acc
        }
        "ElementAt" => {
            let i = arg(args, 0, name)?.as_i64().unwrap_or(-1);
            usize::try_from(i)
                .ok()
                .and_then(|i| items.get(i).cloned())
                .map_or_else(
                    || exception("ArgumentOutOfRangeException", "Index was out of range."),
                    Ok,
                )?
        }
        "ElementAtOrDefault" => usize::try_from(arg(args, 0, name)?.as_i64().unwrap_or(-1))
            .ok()
            .and_then(|i| items.get(i).cloned())
            .unwrap_or(Value::Null),
        "DefaultIfEmpty" => {
            if items.is_empty() {
                Value::list(vec![args.first().cloned().unwrap_or(Value::Null)])
            } else {
                Value::list(items)
            }
        }
        "Cast" | "AsEnumerable" => Value::list(items),
        "OfType" => Value::list(
            items
                .into_iter()
                .filter(|x| targs.first().is_none_or(|t| super::is_type(x, t)))
                .collect(),
        ),
        "Zip" => {
            let other = iterate(m, arg(args, 0, name)?)?;
            let mut out = Vec::new();
            for (a, b) in items.into_iter().zip(other) {
                out.push(match args.get(1) {
                    Some(f) => m.call_lambda(f, &[a, b])?,
                    None => Value::Pair(Arc::new((a, b))),
                });
            }
            Value::list(out)
        }
        "SequenceEqual" => {
            let other = iterate(m, arg(args, 0, name)?)?;
            Value::Bool(
                items.len() == other.len()
                    && items.iter().zip(&other).all(|(a, b)| value::equals(a, b)),
            )
        }
        "Chunk" => {
            let n = arg(args, 0, name)?.as_i64().unwrap_or(1).max(1) as usize;
            Value::list(items.chunks(n).map(|c| Value::list(c.to_vec())).collect())
        }
        "ToArray" | "ToList" => Value::list(items),
        "ToHashSet" => Value::Set(shared(
            items
                .into_iter()
                .map(|x| (Key::from_value(&x), x))
                .collect(),
        )),
        "ToDictionary" => {
            let kf = arg(args, 0, name)?;
            let mut map = indexmap::IndexMap::new();
            for x in items {
                let k = m.call_lambda(kf, std::slice::from_ref(&x))?;
                let v = match args.get(1) {
                    Some(vf) => m.call_lambda(vf, std::slice::from_ref(&x))?,
                    None => x,
                };
                if map.insert(Key::from_value(&k), v).is_some() {
                    return exception(
                        "ArgumentException",
                        format!(
                            "An item with the same key has already been added. Key: {}",
                            k.to_display()
                        ),
                    );
                }
            }
            Value::Dict(shared(map))
        }
        "Join" => {
            return exception(
                "NotSupportedException",
                "LINQ Join is not supported; use Where/Select",
            )
        }
        _ => {
            return exception(
                "MissingMethodException",
                format!("LINQ {name} is not supported"),
            )
        }
    })
}

fn distinct(items: Vec<Value>) -> Vec<Value> {
    let mut seen = indexmap::IndexSet::new();
    items
        .into_iter()
        .filter(|x| seen.insert(Key::from_value(x)))
        .collect()
}

/// Instance methods of lists, sets, dictionaries and byte arrays (non-LINQ).
pub fn collection_call(
    m: &mut Machine,
    v: &Value,
    name: &str,
    targs: &[RType],
    args: &[Value],
    outs: &mut Vec<Value>,
) -> EResult<Value> {
    match v {
        Value::List(l) => {
            let mut g = l.lock();
            Ok(match name {
                "Add" | "Push" | "Enqueue" => {
                    g.push(arg(args, 0, name)?.clone());
                    Value::Null
                }
                "AddRange" => {
                    drop(g);
                    let extra = iterate(m, arg(args, 0, name)?)?;
                    l.lock().extend(extra);
                    Value::Null
                }
                "Insert" => {
                    let i = arg(args, 0, name)?.as_i64().unwrap_or(0) as usize;
                    if i > g.len() {
                        return exception(
                            "ArgumentOutOfRangeException",
                            "Index must be within the bounds of the List.",
                        );
                    }
                    g.insert(i, arg(args, 1, name)?.clone());
                    Value::Null
                }
                "Remove" => {
                    let x = arg(args, 0, name)?;
                    match g.iter().position(|y| value::equals(x, y)) {
                        Some(i) => {
                            g.remove(i);
                            Value::Bool(true)
                        }
                        None => Value::Bool(false),
                    }
                }
                "RemoveAt" => {
                    let i = arg(args, 0, name)?.as_i64().unwrap_or(-1);
                    match usize::try_from(i).ok().filter(|i| *i < g.len()) {
                        Some(i) => {
                            g.remove(i);
                            Value::Null
                        }
                        None => {
                            return exception(
                                "ArgumentOutOfRangeException",
                                "Index was out of range.",
                            )
                        }
                    }
                }
                "Clear" => {
                    g.clear();
                    Value::Null
                }
                "Contains" => Value::Bool(
                    g.iter()
                        .any(|y| value::equals(arg(args, 0, name).unwrap_or(&Value::Null), y)),
                ),
                "IndexOf" => Value::Int(
                    g.iter()
                        .position(|y| value::equals(arg(args, 0, name).unwrap_or(&Value::Null), y))
                        .map_or(-1, |i| i as i32),
                ),
                "Pop" => g.pop().map_or_else(
                    || exception("InvalidOperationException", "Stack empty."),
                    Ok,
                )?,
                "Dequeue" => {
                    if g.is_empty() {
                        return exception("InvalidOperationException", "Queue empty.");
                    }
                    g.remove(0)
                }
                "Peek" => g.last().cloned().map_or_else(
                    || exception("InvalidOperationException", "Stack empty."),
                    Ok,
                )?,
                "Sort" => {
                    g.sort_by(|a, b| value::compare(a, b).unwrap_or(std::cmp::Ordering::Equal));
                    Value::Null
                }
                "Exists" | "Find" | "FindAll" | "FindIndex" | "TrueForAll" | "ForEach"
                | "RemoveAll" => {
                    let items = g.clone();
                    drop(g);
                    let f = arg(args, 0, name)?;
                    match name {
                        "Exists" => return call(m, v, "Any", targs, args),
                        "Find" => return call(m, v, "FirstOrDefault", targs, args),
                        "FindAll" => return call(m, v, "Where", targs, args),
                        "TrueForAll" => return call(m, v, "All", targs, args),
                        "FindIndex" => {
                            for (i, x) in items.iter().enumerate() {
                                if pred(m, f, x)? {
                                    return Ok(Value::Int(i as i32));
                                }
                            }
                            Value::Int(-1)
                        }
                        "ForEach" => {
                            for x in items {
                                m.call_lambda(f, &[x])?;
                            }
                            Value::Null
                        }
                        _ => {
                            let mut keep = Vec::new();
                            let mut removed = 0;
                            for x in items {
                                if pred(m, f, &x)? {
                                    removed += 1;
                                } else {
                                    keep.push(x);
                                }
                            }
                            *l.lock() = keep;
                            Value::Int(removed)
                        }
                    }
                }
                _ => {
                    drop(g);
                    return call(m, v, name, targs, args);
                }
            })
        }
        Value::Dict(d) => {
            let mut g = d.lock();
            Ok(match name {
                "Add" => {
                    let k = Key::from_value(arg(args, 0, name)?);
                    if g.contains_key(&k) {
                        return exception(
                            "ArgumentException",
                            "An item with the same key has already been added.",
                        );
                    }
                    g.insert(k, arg(args, 1, name)?.clone());
                    Value::Null
                }
                "TryAdd" => {
                    let k = Key::from_value(arg(args, 0, name)?);
                    if g.contains_key(&k) {
                        Value::Bool(false)
                    } else {
                        g.insert(k, arg(args, 1, name)?.clone());
                        Value::Bool(true)
                    }
                }
                "ContainsKey" => Value::Bool(g.contains_key(&Key::from_value(arg(args, 0, name)?))),
                "ContainsValue" => Value::Bool(
                    g.values()
                        .any(|x| value::equals(x, arg(args, 0, name).unwrap_or(&Value::Null))),
                ),
                "Remove" => Value::Bool(
                    g.shift_remove(&Key::from_value(arg(args, 0, name)?))
                        .is_some(),
                ),
                "Clear" => {
                    g.clear();
                    Value::Null
                }
                "TryGetValue" => match g.get(&Key::from_value(arg(args, 0, name)?)) {
                    Some(x) => {
                        outs.push(x.clone());
                        Value::Bool(true)
                    }
                    None => {
                        outs.push(Value::Null);
                        Value::Bool(false)
                    }
                },
                "GetValueOrDefault" => g
                    .get(&Key::from_value(arg(args, 0, name)?))
                    .cloned()
                    .unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::Null)),
                "Count" if args.is_empty() => Value::Int(g.len() as i32),
                _ => {
                    drop(g);
                    return call(m, v, name, targs, args);
                }
            })
        }
        Value::Set(s) => {
            let mut g = s.lock();
            Ok(match name {
                "Add" => {
                    let x = arg(args, 0, name)?;
                    Value::Bool(g.insert(Key::from_value(x), x.clone()).is_none())
                }
                "Remove" => Value::Bool(
                    g.shift_remove(&Key::from_value(arg(args, 0, name)?))
                        .is_some(),
                ),
                "Contains" => Value::Bool(g.contains_key(&Key::from_value(arg(args, 0, name)?))),
                "Clear" => {
                    g.clear();
                    Value::Null
                }
                "UnionWith" => {
                    drop(g);
                    let extra = iterate(m, arg(args, 0, name)?)?;
                    let mut g = s.lock();
                    for x in extra {
                        g.insert(Key::from_value(&x), x);
                    }
                    Value::Null
                }
                _ => {
                    drop(g);
                    return call(m, v, name, targs, args);
                }
            })
        }
        _ => call(m, v, name, targs, args),
    }
}

/// `Enumerable.Range`, `Enumerable.Repeat`, `Enumerable.Empty`.
pub fn call_static(m: &mut Machine, name: &str, args: &[Value]) -> EResult<Value> {
    Ok(match name {
        "Range" => {
            let start = arg(args, 0, name)?.as_i64().unwrap_or(0);
            let n = arg(args, 1, name)?.as_i64().unwrap_or(0).max(0);
            m.check_size(n as usize)?;
            Value::list((start..start + n).map(|i| Value::Int(i as i32)).collect())
        }
        "Repeat" => {
            let n = arg(args, 1, name)?.as_i64().unwrap_or(0).max(0) as usize;
            m.check_size(n)?;
            Value::list(vec![arg(args, 0, name)?.clone(); n])
        }
        "Empty" => Value::list(vec![]),
        _ => {
            return exception(
                "MissingMethodException",
                format!("Enumerable.{name} is not supported"),
            )
        }
    })
}
