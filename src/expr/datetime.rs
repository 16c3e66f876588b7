//! .NET-style `DateTime` / `TimeSpan` on 100-ns ticks: calendar math, invariant formatting
//! (standard and custom format strings) and ISO-8601 / invariant parsing.

pub const TICKS_PER_SECOND: i64 = 10_000_000;
pub const TICKS_PER_DAY: i64 = 86_400 * TICKS_PER_SECOND;
/// Ticks from 0001-01-01 to 1970-01-01.
pub const UNIX_EPOCH_TICKS: i64 = 621_355_968_000_000_000;
/// 0001-01-01T00:00:00Z in unix seconds (APIM's quota periods count from it).
pub const EPOCH_0001: i64 = -UNIX_EPOCH_TICKS / TICKS_PER_SECOND;
pub const MAX_TICKS: i64 = 3_155_378_975_999_999_999;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Unspecified,
    Utc,
    Local,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DateTime {
    pub ticks: i64,
    pub kind: Kind,
}

/// Days since 0001-01-01 for a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    // Howard Hinnant's algorithm, shifted to the 0001-01-01 epoch.
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + 719_162
}

pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days - 719_162 + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

pub struct Parts {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// Fraction of a second in ticks (0..10^7).
    pub frac: u32,
}

impl DateTime {
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        y: i64,
        mo: u32,
        d: u32,
        h: u32,
        mi: u32,
        s: u32,
        frac: u32,
        kind: Kind,
    ) -> Option<DateTime> {
        if !(1..=9999).contains(&y)
            || !(1..=12).contains(&mo)
            || d == 0
            || d > days_in_month(y, mo)
            || h > 23
            || mi > 59
            || s > 59
        {
            return None;
        }
        let ticks = days_from_civil(y, mo, d) * TICKS_PER_DAY
            + (h as i64 * 3600 + mi as i64 * 60 + s as i64) * TICKS_PER_SECOND
            + frac as i64;
        Some(DateTime { ticks, kind })
    }

    pub fn from_unix_seconds(s: i64) -> DateTime {
        DateTime {
            ticks: UNIX_EPOCH_TICKS + s * TICKS_PER_SECOND,
            kind: Kind::Utc,
        }
    }

    pub fn now_utc() -> DateTime {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        DateTime {
            ticks: UNIX_EPOCH_TICKS + (d.as_nanos() / 100) as i64,
            kind: Kind::Utc,
        }
    }

    pub fn parts(self) -> Parts {
        let days = self.ticks.div_euclid(TICKS_PER_DAY);
        let rem = self.ticks.rem_euclid(TICKS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let secs = rem / TICKS_PER_SECOND;
        Parts {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: (secs / 60 % 60) as u32,
            second: (secs % 60) as u32,
            frac: (rem % TICKS_PER_SECOND) as u32,
        }
    }

    pub fn unix_seconds(self) -> i64 {
        (self.ticks - UNIX_EPOCH_TICKS).div_euclid(TICKS_PER_SECOND)
    }

    pub fn day_of_week(self) -> u32 {
        // 0001-01-01 was a Monday; .NET DayOfWeek: Sunday = 0.
        ((self.ticks.div_euclid(TICKS_PER_DAY) + 1).rem_euclid(7)) as u32
    }

    pub fn add_months(self, months: i64) -> Option<DateTime> {
        let p = self.parts();
        let total = p.year * 12 + (p.month as i64 - 1) + months;
        let (y, m) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
        let d = p.day.min(days_in_month(y, m));
        let time = self.ticks.rem_euclid(TICKS_PER_DAY);
        DateTime::from_parts(y, m, d, 0, 0, 0, 0, self.kind).map(|x| DateTime {
            ticks: x.ticks + time,
            kind: self.kind,
        })
    }

    /// Format with a .NET standard (`o`, `s`, `u`, `r`, `d`, `D`, `t`, `T`, `g`, `G`, `f`, `F`)
    /// or custom format string, invariant culture.
    pub fn format(self, f: &str) -> String {
        match f {
            "" | "G" => self.format("MM/dd/yyyy HH:mm:ss"),
            "o" | "O" => {
                let suffix = match self.kind {
                    Kind::Utc => "Z",
                    Kind::Local => "+00:00",
                    Kind::Unspecified => "",
                };
                format!("{}{}", self.format("yyyy-MM-ddTHH:mm:ss.fffffff"), suffix)
            }
            "s" => self.format("yyyy-MM-ddTHH:mm:ss"),
            "u" => self.format("yyyy-MM-dd HH:mm:ssZ"),
            "r" | "R" => self.format("ddd, dd MMM yyyy HH:mm:ss 'GMT'"),
            "d" => self.format("MM/dd/yyyy"),
            "D" => self.format("dddd, dd MMMM yyyy"),
            "t" => self.format("HH:mm"),
            "T" => self.format("HH:mm:ss"),
            "g" => self.format("MM/dd/yyyy HH:mm"),
            "f" => self.format("dddd, dd MMMM yyyy HH:mm"),
            "F" => self.format("dddd, dd MMMM yyyy HH:mm:ss"),
            "M" | "m" => self.format("MMMM dd"),
            "Y" | "y" => self.format("yyyy MMMM"),
            custom => self.custom(custom),
        }
    }

    fn custom(self, f: &str) -> String {
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        const DAYS: [&str; 7] = [
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
        ];
        let p = self.parts();
        let chars: Vec<char> = f.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let mut n = 1;
            while i + n < chars.len() && chars[i + n] == c {
                n += 1;
            }
            match c {
                'y' => {
                    if n <= 2 {
                        out.push_str(&format!("{:0w$}", p.year % 100, w = n));
                    } else {
                        out.push_str(&format!("{:0w$}", p.year, w = n));
                    }
                }
                'M' => match n {
                    1 => out.push_str(&p.month.to_string()),
                    2 => out.push_str(&format!("{:02}", p.month)),
                    3 => out.push_str(&MONTHS[p.month as usize - 1][..3]),
                    _ => out.push_str(MONTHS[p.month as usize - 1]),
                },
                'd' => match n {
                    1 => out.push_str(&p.day.to_string()),
                    2 => out.push_str(&format!("{:02}", p.day)),
                    3 => out.push_str(&DAYS[self.day_of_week() as usize][..3]),
                    _ => out.push_str(DAYS[self.day_of_week() as usize]),
                },
                'H' => out.push_str(&if n == 1 {
                    p.hour.to_string()
                } else {
                    format!("{:02}", p.hour)
                }),
                'h' => {
                    let h = if p.hour.is_multiple_of(12) {
                        12
                    } else {
                        p.hour % 12
                    };
                    out.push_str(&if n == 1 {
                        h.to_string()
                    } else {
                        format!("{h:02}")
                    });
                }
                'm' => out.push_str(&if n == 1 {
                    p.minute.to_string()
                } else {
                    format!("{:02}", p.minute)
                }),
                's' => out.push_str(&if n == 1 {
                    p.second.to_string()
                } else {
                    format!("{:02}", p.second)
                }),
                'f' | 'F' => {
                    let digits = format!("{:07}", p.frac);
                    let mut part = digits[..n.min(7)].to_string();
                    if c == 'F' {
                        part = part.trim_end_matches('0').to_string();
                        if part.is_empty() && out.ends_with('.') {
                            out.pop();
                        }
                    }
                    out.push_str(&part);
                }
                't' => out.push_str(if p.hour < 12 {
                    if n == 1 {
                        "A"
                    } else {
                        "AM"
                    }
                } else if n == 1 {
                    "P"
                } else {
                    "PM"
                }),
                'K' => out.push_str(match self.kind {
                    Kind::Utc => "Z",
                    Kind::Local => "+00:00",
                    Kind::Unspecified => "",
                }),
                'z' => out.push_str(match n {
                    1 => "+0",
                    2 => "+00",
                    _ => "+00:00",
                }),
                '\'' | '"' => {
                    let mut k = i + 1;
                    while k < chars.len() && chars[k] != c {
                        out.push(chars[k]);
                        k += 1;
                    }
                    i = k + 1;
                    continue;
                }
                '\\' => {
                    if let Some(nc) = chars.get(i + 1) {
                        out.push(*nc);
                    }
                    i += 2;
                    continue;
                }
                _ => {
                    for _ in 0..n {
                        out.push(c);
                    }
                }
            }
            i += n;
        }
        out
    }

    /// Parse ISO 8601 (`2024-01-02`, `2024-01-02T03:04:05[.fffffff][Z|±hh:mm]`), RFC 1123
    /// (`Tue, 02 Jan 2024 03:04:05 GMT`) and invariant `MM/dd/yyyy[ HH:mm:ss]`.
    pub fn parse(s: &str) -> Option<DateTime> {
        let s = s.trim();
        if let Some(d) = parse_iso(s) {
            return Some(d);
        }
        if let Ok(t) = httpdate::parse_http_date(s) {
            let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
            return Some(DateTime::from_unix_seconds(secs));
        }
        // MM/dd/yyyy [HH:mm[:ss]]
        let (date, time) = s.split_once(' ').unwrap_or((s, ""));
        let mut it = date.split('/');
        let (m, d, y) = (
            it.next()?.parse().ok()?,
            it.next()?.parse().ok()?,
            it.next()?.parse().ok()?,
        );
        let (h, mi, sec) = if time.is_empty() {
            (0, 0, 0)
        } else {
            let mut t = time.split(':');
            (
                t.next()?.parse().ok()?,
                t.next()?.parse().ok()?,
                t.next().map_or(Some(0), |x| x.parse().ok())?,
            )
        };
        DateTime::from_parts(y, m, d, h, mi, sec, 0, Kind::Unspecified)
    }
}

fn parse_iso(s: &str) -> Option<DateTime> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)? as i64, num(5..7)?, num(8..10)?);
    if b.len() == 10 {
        return DateTime::from_parts(y, mo, d, 0, 0, 0, 0, Kind::Unspecified);
    }
    if b[10] != b'T' && b[10] != b' ' {
        return None;
    }
    let (h, mi) = (num(11..13)?, num(14..16)?);
    let mut i = 16;
    let mut sec = 0;
    if b.get(16) == Some(&b':') {
        sec = num(17..19)?;
        i = 19;
    }
    let mut frac = 0u32;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut k = start;
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        let digits = &s[start..k];
        let mut padded = digits.chars().take(7).collect::<String>();
        while padded.len() < 7 {
            padded.push('0');
        }
        frac = padded.parse().ok()?;
        i = k;
    }
    let rest = &s[i..];
    let (kind, offset_secs) = match rest {
        "" => (Kind::Unspecified, 0),
        "Z" | "z" => (Kind::Utc, 0),
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest[1..]
                .split_once(':')
                .unwrap_or((rest.get(1..3)?, rest.get(3..5).unwrap_or("0")));
            (
                Kind::Utc,
                sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
            )
        }
    };
    let dt = DateTime::from_parts(y, mo, d, h, mi, sec, frac, kind)?;
    // An explicit offset is converted to UTC (DateTime.Parse gives local time; we run in UTC).
    Some(DateTime {
        ticks: dt.ticks - offset_secs * TICKS_PER_SECOND,
        kind,
    })
}

/// `[-][d.]hh:mm:ss[.fffffff]`
pub fn format_timespan(ticks: i64) -> String {
    let neg = ticks < 0;
    let t = ticks.unsigned_abs();
    let days = t / TICKS_PER_DAY as u64;
    let rem = t % TICKS_PER_DAY as u64;
    let secs = rem / TICKS_PER_SECOND as u64;
    let frac = rem % TICKS_PER_SECOND as u64;
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if days > 0 {
        s.push_str(&format!("{days}."));
    }
    s.push_str(&format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ));
    if frac > 0 {
        s.push_str(&format!(".{frac:07}"));
    }
    s
}

pub fn parse_timespan(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (days, rest) = match s.split_once('.') {
        Some((d, r)) if !d.contains(':') => (d.parse::<i64>().ok()?, r),
        _ => (0, s),
    };
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let mut it = hms.split(':');
    let h: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next().map_or(Some(0), |x| x.parse().ok())?;
    let sec: i64 = it.next().map_or(Some(0), |x| x.parse().ok())?;
    let mut f = frac.chars().take(7).collect::<String>();
    while !f.is_empty() && f.len() < 7 {
        f.push('0');
    }
    let fr: i64 = if f.is_empty() { 0 } else { f.parse().ok()? };
    let t = ((days * 24 + h) * 3600 + m * 60 + sec) * TICKS_PER_SECOND + fr;
    Some(if neg { -t } else { t })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let d = DateTime::from_parts(2024, 2, 29, 13, 5, 9, 1_234_567, Kind::Utc)
            .unwrap_or_else(|| panic!("date"));
        assert_eq!(d.format("o"), "2024-02-29T13:05:09.1234567Z");
        assert_eq!(DateTime::parse("2024-02-29T13:05:09.1234567Z"), Some(d));
        assert_eq!(d.format("yyyyMMdd HH:mm"), "20240229 13:05");
        assert_eq!(d.format("r"), "Thu, 29 Feb 2024 13:05:09 GMT");
        assert_eq!(
            DateTime::from_unix_seconds(0).format("s"),
            "1970-01-01T00:00:00"
        );
        assert_eq!(DateTime::from_unix_seconds(0).day_of_week(), 4);
        assert_eq!(
            d.add_months(12).map(|x| x.format("d")),
            Some("02/28/2025".to_string())
        );
        assert_eq!(
            DateTime::parse("2024-01-02T03:04:05+01:00").map(|x| x.format("o")),
            Some("2024-01-02T02:04:05.0000000Z".to_string())
        );
    }

    #[test]
    fn timespans() {
        assert_eq!(format_timespan(90 * TICKS_PER_SECOND), "00:01:30");
        assert_eq!(format_timespan(TICKS_PER_DAY + 5), "1.00:00:00.0000005");
        assert_eq!(
            parse_timespan("1.02:03:04.5"),
            Some(((26 * 3600 + 3 * 60 + 4) * TICKS_PER_SECOND) + 5_000_000)
        );
    }
}
