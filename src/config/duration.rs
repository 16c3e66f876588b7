//! Human-readable durations in configuration: `250ms`, `30s`, `5m`, `1h`.

use crate::diag::Invalid;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

/// Parse `<number><unit>` with unit one of `ms`, `s`, `m`, `h`, or an ISO 8601 duration as ARM
/// templates, Bicep and APIOps write them (`PT30S`, `PT10M`, `PT1H30M`, `P1D`, `PT0.5S`).
pub fn parse_duration(text: &str) -> Result<Duration, Invalid> {
    let t = text.trim();
    if t.starts_with(['P', 'p']) {
        return parse_iso8601(t);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| crate::invalid!("invalid duration {text:?}: expected e.g. 30s, 250ms, 5m"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => {
            return Err(crate::invalid!(
                "invalid duration {text:?}: unit must be ms, s, m or h"
            ))
        }
    };
    Ok(d)
}

/// `P[nD][T[nH][nM][n[.f]S]]`: days, hours, minutes and (fractional) seconds. Years, months and
/// weeks have no fixed length and are refused.
fn parse_iso8601(text: &str) -> Result<Duration, Invalid> {
    let bad = |why: &str| crate::invalid!("invalid ISO 8601 duration {text:?}: {why}");
    let upper = text.to_ascii_uppercase();
    let rest = &upper[1..];
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = 0f64;
    let mut parts = 0;
    let mut take = |section: &str, units: &[(char, f64)]| -> Result<(), Invalid> {
        let mut num = String::new();
        let mut allowed = units.iter();
        for c in section.chars() {
            if c.is_ascii_digit() || (c == '.' && !num.contains('.')) {
                num.push(c);
                continue;
            }
            // Units in order, each at most once.
            let Some((_, secs)) = allowed.by_ref().find(|(u, _)| *u == c) else {
                return Err(bad(&format!(
                    "unexpected {c:?} (years, months and weeks are not supported)"
                )));
            };
            if num.is_empty() || (num.contains('.') && c != 'S') {
                return Err(bad(
                    "a number must come before each unit (a fraction only in seconds)",
                ));
            }
            let n: f64 = num.parse().map_err(|_| bad("not a number"))?;
            total += n * secs;
            parts += 1;
            num.clear();
        }
        if num.is_empty() {
            Ok(())
        } else {
            Err(bad("a number without a unit"))
        }
    };
    take(date, &[('D', 86_400.0)])?;
    match time {
        Some("") => return Err(bad("nothing after T")),
        Some(t) => take(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?,
        None => {}
    }
    if parts == 0 {
        return Err(bad("no value"));
    }
    // At most ten years: past that a typo, not a timeout.
    if !total.is_finite() || total > 315_360_000.0 {
        return Err(bad("too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn parses_iso8601_as_arm_writes_it() {
        let secs = |t: &str| parse_duration(t).map(|d| d.as_secs_f64());
        assert_eq!(secs("PT30S"), Ok(30.0));
        assert_eq!(secs("PT10M"), Ok(600.0));
        assert_eq!(secs("PT1H"), Ok(3600.0));
        assert_eq!(secs("PT1H30M5S"), Ok(5405.0));
        assert_eq!(secs("P1D"), Ok(86_400.0));
        assert_eq!(secs("P1DT2H"), Ok(93_600.0));
        assert_eq!(secs("PT0.5S"), Ok(0.5));
        assert_eq!(secs("pt2m"), Ok(120.0));
        for bad in [
            "P",
            "PT",
            "P1Y",
            "P1M",
            "P2W",
            "PT1H1H",
            "PT1M1H",
            "PTS",
            "PT1.5M",
            "P1",
            "PT1",
            "PT99999999999H",
            "PT1..2S",
            "P-1D",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
