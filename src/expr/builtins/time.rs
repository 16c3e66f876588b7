//! `DateTime`, `DateTimeOffset` (as UTC DateTime) and `TimeSpan`.

use super::super::datetime::{self as t, DateTime, Kind, TICKS_PER_DAY, TICKS_PER_SECOND};
use super::super::eval::{exception, EResult};
use super::super::types::{RType, Ty};
use super::super::value::Value;
use super::names::Names;
use super::{arg, enum_val, format_value};

/// The names this family implements, registered beside their code: the binder accepts a
/// member, method or static name only when a family registers it (`names.rs` chains them).
pub(super) const NAMES: Names = Names {
    members: &[
        "Year",
        "Month",
        "Day",
        "Hour",
        "Minute",
        "Second",
        "Millisecond",
        "Ticks",
        "DayOfWeek",
        "DayOfYear",
        "Date",
        "TimeOfDay",
        "Kind",
        "TotalDays",
        "TotalHours",
        "TotalMinutes",
        "TotalSeconds",
        "TotalMilliseconds",
        "Days",
        "Hours",
        "Minutes",
        "Seconds",
        "Milliseconds",
        "UtcDateTime",
        "DateTime",
        "Offset",
        "LocalDateTime",
        "UnixEpoch",
    ],
    methods: &[
        "ToString",
        "Equals",
        "CompareTo",
        "Add",
        "AddDays",
        "AddHours",
        "AddMinutes",
        "AddSeconds",
        "AddMilliseconds",
        "AddTicks",
        "AddMonths",
        "AddYears",
        "Subtract",
        "ToUniversalTime",
        "ToLocalTime",
        "ToUnixTimeSeconds",
        "ToUnixTimeMilliseconds",
        "Negate",
        "Duration",
        "IsDaylightSavingTime",
    ],
    static_members: &[
        "UtcNow",
        "Now",
        "Today",
        "MinValue",
        "MaxValue",
        "UnixEpoch",
        "Zero",
        "TicksPerSecond",
        "TicksPerDay",
        "TicksPerMillisecond",
        "TicksPerMinute",
        "TicksPerHour",
    ],
    static_methods: &[
        "Compare",
        "Equals",
        "Parse",
        "TryParse",
        "ParseExact",
        "TryParseExact",
        "ToString",
        "FromSeconds",
        "FromMinutes",
        "FromHours",
        "FromDays",
        "FromMilliseconds",
        "FromTicks",
        "DaysInMonth",
        "IsLeapYear",
        "SpecifyKind",
        "FromUnixTimeSeconds",
        "FromUnixTimeMilliseconds",
    ],
};

const TICKS_PER_MS: i64 = 10_000;

pub fn member(v: &Value, name: &str) -> EResult<Value> {
    match v {
        Value::DateTime(d) => {
            let p = d.parts();
            Ok(match name {
                "Year" => Value::Int(p.year as i32),
                "Month" => Value::Int(p.month as i32),
                "Day" => Value::Int(p.day as i32),
                "Hour" => Value::Int(p.hour as i32),
                "Minute" => Value::Int(p.minute as i32),
                "Second" => Value::Int(p.second as i32),
                "Millisecond" => Value::Int((p.frac / 10_000) as i32),
                "Ticks" => Value::Long(d.ticks),
                "DayOfWeek" => {
                    const N: [&str; 7] = [
                        "Sunday",
                        "Monday",
                        "Tuesday",
                        "Wednesday",
                        "Thursday",
                        "Friday",
                        "Saturday",
                    ];
                    let i = d.day_of_week();
                    enum_val("DayOfWeek", N[i as usize], i as i64)
                }
                "DayOfYear" => Value::Int(
                    (d.ticks.div_euclid(TICKS_PER_DAY) - t::days_from_civil(p.year, 1, 1) + 1)
                        as i32,
                ),
                "Date" => Value::DateTime(DateTime {
                    ticks: d.ticks - d.ticks.rem_euclid(TICKS_PER_DAY),
                    kind: d.kind,
                }),
                "TimeOfDay" => Value::TimeSpan(d.ticks.rem_euclid(TICKS_PER_DAY)),
                "Kind" => match d.kind {
                    Kind::Utc => enum_val("DateTimeKind", "Utc", 1),
                    Kind::Local => enum_val("DateTimeKind", "Local", 2),
                    Kind::Unspecified => enum_val("DateTimeKind", "Unspecified", 0),
                },
                "UtcDateTime" | "DateTime" | "LocalDateTime" => Value::DateTime(DateTime {
                    ticks: d.ticks,
                    kind: Kind::Utc,
                }),
                "Offset" => Value::TimeSpan(0),
                _ => {
                    return exception(
                        "MissingMemberException",
                        format!("'DateTime' does not contain a definition for '{name}'"),
                    )
                }
            })
        }
        Value::TimeSpan(ticks) => {
            let tk = *ticks;
            Ok(match name {
                "TotalDays" => Value::Double(tk as f64 / TICKS_PER_DAY as f64),
                "TotalHours" => Value::Double(tk as f64 / (3600 * TICKS_PER_SECOND) as f64),
                "TotalMinutes" => Value::Double(tk as f64 / (60 * TICKS_PER_SECOND) as f64),
                "TotalSeconds" => Value::Double(tk as f64 / TICKS_PER_SECOND as f64),
                "TotalMilliseconds" => Value::Double(tk as f64 / TICKS_PER_MS as f64),
                "Days" => Value::Int((tk / TICKS_PER_DAY) as i32),
                "Hours" => Value::Int((tk / (3600 * TICKS_PER_SECOND) % 24) as i32),
                "Minutes" => Value::Int((tk / (60 * TICKS_PER_SECOND) % 60) as i32),
                "Seconds" => Value::Int((tk / TICKS_PER_SECOND % 60) as i32),
                "Milliseconds" => Value::Int((tk / TICKS_PER_MS % 1000) as i32),
                "Ticks" => Value::Long(tk),
                _ => {
                    return exception(
                        "MissingMemberException",
                        format!("'TimeSpan' does not contain a definition for '{name}'"),
                    )
                }
            })
        }
        _ => exception("MissingMemberException", name.to_string()),
    }
}

fn checked(d: DateTime, ticks: i64) -> EResult<Value> {
    let n = d
        .ticks
        .checked_add(ticks)
        .filter(|n| (0..=t::MAX_TICKS).contains(n));
    match n {
        Some(n) => Ok(Value::DateTime(DateTime {
            ticks: n,
            kind: d.kind,
        })),
        None => exception(
            "ArgumentOutOfRangeException",
            "The added or subtracted value results in an un-representable DateTime.",
        ),
    }
}

pub fn call(v: &Value, name: &str, args: &[Value]) -> EResult<Value> {
    let num = |i: usize| args.get(i).and_then(Value::as_f64).unwrap_or(0.0);
    match v {
        Value::DateTime(d) => match name {
            "AddDays" => checked(*d, (num(0) * TICKS_PER_DAY as f64) as i64),
            "AddHours" => checked(*d, (num(0) * 3600.0 * TICKS_PER_SECOND as f64) as i64),
            "AddMinutes" => checked(*d, (num(0) * 60.0 * TICKS_PER_SECOND as f64) as i64),
            "AddSeconds" => checked(*d, (num(0) * TICKS_PER_SECOND as f64) as i64),
            "AddMilliseconds" => checked(*d, (num(0) * TICKS_PER_MS as f64) as i64),
            "AddTicks" => checked(*d, num(0) as i64),
            "Add" => match args.first() {
                Some(Value::TimeSpan(ts)) => checked(*d, *ts),
                _ => exception("ArgumentException", "DateTime.Add needs a TimeSpan"),
            },
            "AddMonths" => d
                .add_months(num(0) as i64)
                .map(Value::DateTime)
                .map_or_else(|| exception("ArgumentOutOfRangeException", "months"), Ok),
            "AddYears" => d
                .add_months(num(0) as i64 * 12)
                .map(Value::DateTime)
                .map_or_else(|| exception("ArgumentOutOfRangeException", "years"), Ok),
            "Subtract" => match args.first() {
                Some(Value::DateTime(o)) => Ok(Value::TimeSpan(d.ticks - o.ticks)),
                Some(Value::TimeSpan(ts)) => checked(*d, -ts),
                _ => exception(
                    "ArgumentException",
                    "DateTime.Subtract needs a DateTime or TimeSpan",
                ),
            },
            "ToUniversalTime" | "ToLocalTime" => Ok(Value::DateTime(DateTime {
                ticks: d.ticks,
                kind: Kind::Utc,
            })),
            "ToUnixTimeSeconds" => Ok(Value::Long(d.unix_seconds())),
            "ToUnixTimeMilliseconds" => Ok(Value::Long(
                (d.ticks - t::UNIX_EPOCH_TICKS).div_euclid(TICKS_PER_MS),
            )),
            "ToString" => Ok(Value::string(format_value(
                v,
                &args.first().map(Value::to_display).unwrap_or_default(),
            )?)),
            "CompareTo" => Ok(Value::Int(match args.first() {
                Some(Value::DateTime(o)) => d.ticks.cmp(&o.ticks) as i32,
                _ => 1,
            })),
            "IsDaylightSavingTime" => Ok(Value::Bool(false)),
            "Equals" => Ok(Value::Bool(
                matches!(args.first(), Some(Value::DateTime(o)) if o.ticks == d.ticks),
            )),
            _ => exception(
                "MissingMethodException",
                format!("'DateTime' does not contain a method '{name}'"),
            ),
        },
        Value::TimeSpan(ts) => match name {
            "Add" => match args.first() {
                Some(Value::TimeSpan(o)) => Ok(Value::TimeSpan(ts + o)),
                _ => exception("ArgumentException", "TimeSpan.Add needs a TimeSpan"),
            },
            "Subtract" => match args.first() {
                Some(Value::TimeSpan(o)) => Ok(Value::TimeSpan(ts - o)),
                _ => exception("ArgumentException", "TimeSpan.Subtract needs a TimeSpan"),
            },
            "Negate" => Ok(Value::TimeSpan(-ts)),
            "Duration" => Ok(Value::TimeSpan(ts.abs())),
            "ToString" => Ok(Value::string(t::format_timespan(*ts))),
            "CompareTo" => Ok(Value::Int(match args.first() {
                Some(Value::TimeSpan(o)) => ts.cmp(o) as i32,
                _ => 1,
            })),
            _ => exception(
                "MissingMethodException",
                format!("'TimeSpan' does not contain a method '{name}'"),
            ),
        },
        _ => exception("MissingMethodException", name.to_string()),
    }
}

pub fn static_get(name: &str, ty: &RType) -> EResult<Value> {
    let dt = |ticks: i64, kind: Kind| Value::DateTime(DateTime { ticks, kind });
    Ok(match (ty.ty, name) {
        (Ty::DateTime | Ty::DateTimeOffset, "UtcNow" | "Now") => {
            Value::DateTime(DateTime::now_utc())
        }
        (Ty::DateTime | Ty::DateTimeOffset, "Today") => {
            let n = DateTime::now_utc();
            dt(n.ticks - n.ticks.rem_euclid(TICKS_PER_DAY), Kind::Utc)
        }
        (Ty::DateTime | Ty::DateTimeOffset, "MinValue") => dt(0, Kind::Unspecified),
        (Ty::DateTime | Ty::DateTimeOffset, "MaxValue") => dt(t::MAX_TICKS, Kind::Unspecified),
        (Ty::DateTime | Ty::DateTimeOffset, "UnixEpoch") => dt(t::UNIX_EPOCH_TICKS, Kind::Utc),
        (Ty::TimeSpan, "Zero") => Value::TimeSpan(0),
        (Ty::TimeSpan, "MaxValue") => Value::TimeSpan(i64::MAX),
        (Ty::TimeSpan, "MinValue") => Value::TimeSpan(i64::MIN),
        (Ty::TimeSpan, "TicksPerSecond") => Value::Long(TICKS_PER_SECOND),
        (Ty::TimeSpan, "TicksPerMillisecond") => Value::Long(TICKS_PER_MS),
        (Ty::TimeSpan, "TicksPerMinute") => Value::Long(60 * TICKS_PER_SECOND),
        (Ty::TimeSpan, "TicksPerHour") => Value::Long(3600 * TICKS_PER_SECOND),
        (Ty::TimeSpan, "TicksPerDay") => Value::Long(TICKS_PER_DAY),
        _ => return exception("MissingMemberException", format!("{}.{name}", ty.name)),
    })
}

pub fn call_static(
    ty: &RType,
    name: &str,
    args: &[Value],
    outs: &mut Vec<Value>,
) -> EResult<Value> {
    let num = |i: usize| args.get(i).and_then(Value::as_f64).unwrap_or(0.0);
    let s0 = || args.first().map(Value::to_display).unwrap_or_default();
    match (ty.ty, name) {
        (Ty::TimeSpan, "FromSeconds") => {
            Ok(Value::TimeSpan((num(0) * TICKS_PER_SECOND as f64) as i64))
        }
        (Ty::TimeSpan, "FromMinutes") => Ok(Value::TimeSpan(
            (num(0) * 60.0 * TICKS_PER_SECOND as f64) as i64,
        )),
        (Ty::TimeSpan, "FromHours") => Ok(Value::TimeSpan(
            (num(0) * 3600.0 * TICKS_PER_SECOND as f64) as i64,
        )),
        (Ty::TimeSpan, "FromDays") => Ok(Value::TimeSpan((num(0) * TICKS_PER_DAY as f64) as i64)),
        (Ty::TimeSpan, "FromMilliseconds") => {
            Ok(Value::TimeSpan((num(0) * TICKS_PER_MS as f64) as i64))
        }
        (Ty::TimeSpan, "FromTicks") => Ok(Value::TimeSpan(num(0) as i64)),
        (Ty::TimeSpan, "Parse") => t::parse_timespan(&s0()).map(Value::TimeSpan).map_or_else(
            || {
                exception(
                    "FormatException",
                    "String was not recognized as a valid TimeSpan.",
                )
            },
            Ok,
        ),
        (Ty::TimeSpan, "TryParse") => {
            let r = t::parse_timespan(&s0());
            outs.push(Value::TimeSpan(r.unwrap_or(0)));
            Ok(Value::Bool(r.is_some()))
        }
        (_, "Parse" | "ParseExact") => DateTime::parse(&s0()).map(Value::DateTime).map_or_else(
            || {
                exception(
                    "FormatException",
                    format!("String '{}' was not recognized as a valid DateTime.", s0()),
                )
            },
            Ok,
        ),
        (_, "TryParse" | "TryParseExact") => {
            let r = DateTime::parse(&s0());
            outs.push(Value::DateTime(r.unwrap_or(DateTime {
                ticks: 0,
                kind: Kind::Unspecified,
            })));
            Ok(Value::Bool(r.is_some()))
        }
        (_, "DaysInMonth") => Ok(Value::Int(
            t::days_in_month(num(0) as i64, num(1) as u32) as i32
        )),
        (_, "IsLeapYear") => Ok(Value::Bool(t::is_leap(num(0) as i64))),
        (_, "SpecifyKind") => match (args.first(), args.get(1)) {
            (Some(Value::DateTime(d)), Some(Value::Enum(k))) => Ok(Value::DateTime(DateTime {
                ticks: d.ticks,
                kind: match k.name {
                    "Utc" => Kind::Utc,
                    "Local" => Kind::Local,
                    _ => Kind::Unspecified,
                },
            })),
            _ => exception("ArgumentException", "SpecifyKind(DateTime, DateTimeKind)"),
        },
        (_, "FromUnixTimeSeconds") => {
            Ok(Value::DateTime(DateTime::from_unix_seconds(num(0) as i64)))
        }
        (_, "FromUnixTimeMilliseconds") => Ok(Value::DateTime(DateTime {
            ticks: t::UNIX_EPOCH_TICKS + num(0) as i64 * TICKS_PER_MS,
            kind: Kind::Utc,
        })),
        (_, "Compare") => match (args.first(), args.get(1)) {
            (Some(Value::DateTime(a)), Some(Value::DateTime(b))) => {
                Ok(Value::Int(a.ticks.cmp(&b.ticks) as i32))
            }
            _ => exception("ArgumentException", "Compare(DateTime, DateTime)"),
        },
        _ => {
            let _ = arg(args, 0, name);
            exception(
                "MissingMethodException",
                format!("{}.{name} is not supported", ty.name),
            )
        }
    }
}

pub fn construct(ty: &RType, args: &[Value]) -> EResult<Value> {
    let n = |i: usize| args.get(i).and_then(Value::as_i64).unwrap_or(0);
    match ty.ty {
        Ty::TimeSpan => Ok(Value::TimeSpan(match args.len() {
            1 => n(0),
            3 => (n(0) * 3600 + n(1) * 60 + n(2)) * TICKS_PER_SECOND,
            4 => ((n(0) * 24 + n(1)) * 3600 + n(2) * 60 + n(3)) * TICKS_PER_SECOND,
            5 => {
                ((n(0) * 24 + n(1)) * 3600 + n(2) * 60 + n(3)) * TICKS_PER_SECOND
                    + n(4) * TICKS_PER_MS
            }
            _ => 0,
        })),
        _ => {
            if args.len() == 1 {
                return Ok(Value::DateTime(DateTime {
                    ticks: n(0),
                    kind: Kind::Unspecified,
                }));
            }
            let kind = match args.last() {
                Some(Value::Enum(e)) if e.name == "Utc" => Kind::Utc,
                Some(Value::Enum(e)) if e.name == "Local" => Kind::Local,
                Some(Value::TimeSpan(_)) => Kind::Utc,
                _ => Kind::Unspecified,
            };
            let h = if args.len() >= 6 {
                (n(3), n(4), n(5))
            } else {
                (0, 0, 0)
            };
            let ms = if args.len() >= 7 && !matches!(args[6], Value::Enum(_)) {
                n(6)
            } else {
                0
            };
            DateTime::from_parts(
                n(0),
                n(1) as u32,
                n(2) as u32,
                h.0 as u32,
                h.1 as u32,
                h.2 as u32,
                (ms * TICKS_PER_MS) as u32,
                kind,
            )
            .map(Value::DateTime)
            .map_or_else(
                || {
                    exception(
                        "ArgumentOutOfRangeException",
                        "Year, Month, and Day parameters describe an un-representable DateTime.",
                    )
                },
                Ok,
            )
        }
    }
}
