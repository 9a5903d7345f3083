//! AWS cron expressions, as maintenance windows (`schedulingConfig.maintenanceWindows[].startTime`)
//! write them: `cron(Minutes Hours Day-of-month Month Day-of-week Year)`, six fields, UTC, the
//! format AWS shares with EventBridge schedules:
//!
//! | field | values | wildcards |
//! |---|---|---|
//! | Minutes | 0-59 | `, - * /` |
//! | Hours | 0-23 | `, - * /` |
//! | Day-of-month | 1-31 | `, - * ? / L W` |
//! | Month | 1-12 or JAN-DEC | `, - * /` |
//! | Day-of-week | 1-7 or SUN-SAT (1 = Sunday) | `, - * ? L #` |
//! | Year | 1970-2199 | `, - * /` |
//!
//! Exactly one of Day-of-month and Day-of-week is `?`. `L` is the month's last day (`LW` its
//! last weekday), `15W` the weekday nearest the 15th within the month, `5L` the month's last
//! Thursday, `2#1` its first Monday. A range whose end is below its start wraps (`22-2` in
//! Hours is 22, 23, 0, 1, 2).
//!
//! Why not a crate: the Rust cron crates parse Unix (five fields, Sunday = 0) or Quartz
//! (a leading seconds field) syntax; none reads AWS's six fields with its day-of-week
//! numbering, its mandatory `?` and the year field exactly, and reading an AWS expression
//! with another dialect silently shifts windows by a day. The grammar is small, so it lives
//! here with tests from AWS's documented examples.

use std::fmt;

use crate::ValidationError;
use crate::time::{Timestamp, civil_from_days, days_from_civil, days_in_month};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;
const FIRST_YEAR: i64 = 1970;
const LAST_YEAR: i64 = 2199;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpression {
    source: String,
    minutes: u64,
    hours: u32,
    day_of_month: DayOfMonth,
    months: u16,
    day_of_week: DayOfWeek,
    /// Bit `y - 1970` for each year.
    years: [u64; 4],
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DayOfMonth {
    /// `?`: the day of week decides.
    Unspecified,
    /// Bits 1..=31.
    Days(u32),
    /// `L`
    Last,
    /// `LW`
    LastWeekday,
    /// `nW`
    NearestWeekday(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DayOfWeek {
    Unspecified,
    /// Bits 1..=7, 1 = Sunday.
    Days(u8),
    /// `nL`: the month's last such day (`L` alone: Saturday).
    Last(u32),
    /// `d#n`: the month's n-th such day.
    Nth(u32, u32),
}

impl fmt::Display for CronExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One numeric field's rules.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const F_MINUTES: Field = Field {
    name: "Minutes",
    min: 0,
    max: 59,
    names: &[],
};
const F_HOURS: Field = Field {
    name: "Hours",
    min: 0,
    max: 23,
    names: &[],
};
const F_DOM: Field = Field {
    name: "Day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const F_MONTH: Field = Field {
    name: "Month",
    min: 1,
    max: 12,
    names: &MONTHS,
};
const F_DOW: Field = Field {
    name: "Day-of-week",
    min: 1,
    max: 7,
    names: &DAYS,
};
const F_YEAR: Field = Field {
    name: "Year",
    min: FIRST_YEAR as u32,
    max: LAST_YEAR as u32,
    names: &[],
};

impl Field {
    fn value(&self, text: &str) -> Result<u32, String> {
        if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(self.min + i as u32);
        }
        let bad = || {
            format!(
                "'{text}' is not a {} value ({}-{})",
                self.name, self.min, self.max
            )
        };
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 4 {
            return Err(bad());
        }
        let v: u32 = text.parse().map_err(|_| bad())?;
        if v < self.min || v > self.max {
            return Err(bad());
        }
        Ok(v)
    }

    /// `*`, `a`, `a-b` (wrapping when b < a), with an optional `/step`, comma-separated; the
    /// values as a list.
    fn values(&self, text: &str) -> Result<Vec<u32>, String> {
        let mut out = Vec::new();
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => {
                    let step: u32 = step
                        .parse()
                        .ok()
                        .filter(|s| *s >= 1 && *s <= self.max - self.min + 1)
                        .ok_or_else(|| format!("'{item}': bad {} step", self.name))?;
                    (range, step)
                }
                None => (item, 1),
            };
            let (start, end) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                (self.value(a)?, self.value(b)?)
            } else {
                let a = self.value(range)?;
                // `a/step` runs from a to the end of the field.
                (a, if item.contains('/') { self.max } else { a })
            };
            let span = self.max - self.min + 1;
            let length = if end >= start {
                end - start
            } else {
                end + span - start
            };
            let mut offset = 0;
            while offset <= length {
                out.push(self.min + (start - self.min + offset) % span);
                offset += step;
            }
        }
        Ok(out)
    }
}

fn bits64(values: &[u32]) -> u64 {
    values.iter().fold(0, |b, v| b | 1 << v)
}

impl CronExpression {
    /// Parses `cron(...)` (the bare six fields are accepted too).
    pub fn parse(text: &str) -> Result<CronExpression, ValidationError> {
        Self::parse_inner(text).map_err(|e| {
            ValidationError::new(format!(
                "maintenanceWindow.startTime '{text}' is not a valid cron expression: {e}"
            ))
        })
    }

    fn parse_inner(text: &str) -> Result<CronExpression, String> {
        let trimmed = text.trim();
        let body = match trimmed.strip_prefix("cron(") {
            Some(rest) => rest.strip_suffix(')').ok_or("it must end with ')'")?.trim(),
            None => trimmed,
        };
        let fields: Vec<&str> = body.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = fields.as_slice() else {
            return Err(format!(
                "it has {} fields; AWS cron expressions have six: Minutes Hours Day-of-month Month Day-of-week Year",
                fields.len()
            ));
        };
        let day_of_month = parse_dom(dom)?;
        let day_of_week = parse_dow(dow)?;
        match (&day_of_month, &day_of_week) {
            (DayOfMonth::Unspecified, DayOfWeek::Unspecified) => {
                return Err("only one of Day-of-month and Day-of-week may be '?'".into());
            }
            (DayOfMonth::Unspecified, _) | (_, DayOfWeek::Unspecified) => {}
            _ => {
                return Err("one of Day-of-month and Day-of-week must be '?'".into());
            }
        }
        let mut years = [0u64; 4];
        for y in F_YEAR.values(year)? {
            let i = (y - FIRST_YEAR as u32) as usize;
            years[i / 64] |= 1 << (i % 64);
        }
        Ok(CronExpression {
            source: text.to_string(),
            minutes: bits64(&F_MINUTES.values(minutes)?),
            hours: bits64(&F_HOURS.values(hours)?) as u32,
            day_of_month,
            months: bits64(&F_MONTH.values(month)?) as u16,
            day_of_week,
            years,
        })
    }

    fn year_matches(&self, y: i64) -> bool {
        if !(FIRST_YEAR..=LAST_YEAR).contains(&y) {
            return false;
        }
        let i = (y - FIRST_YEAR) as usize;
        self.years[i / 64] & (1 << (i % 64)) != 0
    }

    fn day_matches(&self, y: i64, m: u32, d: u32, weekday: u32) -> bool {
        let last = days_in_month(y, m);
        let dom = match &self.day_of_month {
            DayOfMonth::Unspecified => true,
            DayOfMonth::Days(bits) => bits & (1 << d) != 0,
            DayOfMonth::Last => d == last,
            DayOfMonth::LastWeekday => d == nearest_weekday(y, m, last),
            DayOfMonth::NearestWeekday(n) => *n <= last && d == nearest_weekday(y, m, *n),
        };
        let dow = match &self.day_of_week {
            DayOfWeek::Unspecified => true,
            DayOfWeek::Days(bits) => bits & (1 << weekday) != 0,
            DayOfWeek::Last(day) => weekday == *day && d + 7 > last,
            DayOfWeek::Nth(day, n) => weekday == *day && (d - 1) / 7 + 1 == *n,
        };
        dom && dow
    }

    /// The first instant at or after `from` (rounded up to a whole minute) the expression names,
    /// if any before the end of 2199.
    pub fn next_at_or_after(&self, from: Timestamp) -> Option<Timestamp> {
        let from_minute = from.millis().div_euclid(MINUTE_MS)
            + i64::from(from.millis().rem_euclid(MINUTE_MS) != 0);
        let mut day = from_minute.div_euclid(24 * 60);
        let mut minute_of_day = from_minute.rem_euclid(24 * 60);
        loop {
            let (y, m, d) = civil_from_days(day);
            if y > LAST_YEAR {
                return None;
            }
            if !self.year_matches(y) {
                day = days_from_civil(y + 1, 1, 1);
                minute_of_day = 0;
                continue;
            }
            if self.months & (1 << m) == 0 {
                day = if m == 12 {
                    days_from_civil(y + 1, 1, 1)
                } else {
                    days_from_civil(y, m + 1, 1)
                };
                minute_of_day = 0;
                continue;
            }
            // 1970-01-04 (day 3) was a Sunday, weekday 1.
            let weekday = (day + 4).rem_euclid(7) as u32 + 1;
            if self.day_matches(y, m, d, weekday) {
                for h in (minute_of_day / 60) as u32..24 {
                    if self.hours & (1 << h) == 0 {
                        continue;
                    }
                    let first = if i64::from(h) == minute_of_day / 60 {
                        (minute_of_day % 60) as u32
                    } else {
                        0
                    };
                    if let Some(min) = (first..60).find(|min| self.minutes & (1 << min) != 0) {
                        return Some(Timestamp(
                            day * DAY_MS + (i64::from(h) * 60 + i64::from(min)) * MINUTE_MS,
                        ));
                    }
                }
            }
            day += 1;
            minute_of_day = 0;
        }
    }

    /// Whether a window starting at each instant the expression names and lasting
    /// `duration_minutes` is open at `at`; then the instant it closes.
    pub fn window_open_at(&self, duration_minutes: i64, at: Timestamp) -> Option<Timestamp> {
        let earliest = Timestamp(at.millis() - duration_minutes * MINUTE_MS + 1);
        let start = self.next_at_or_after(earliest)?;
        (start <= at).then(|| Timestamp(start.millis() + duration_minutes * MINUTE_MS))
    }
}

fn parse_dom(text: &str) -> Result<DayOfMonth, String> {
    match text.to_ascii_uppercase().as_str() {
        "?" => Ok(DayOfMonth::Unspecified),
        "L" => Ok(DayOfMonth::Last),
        "LW" => Ok(DayOfMonth::LastWeekday),
        upper if upper.len() > 1 && upper.ends_with('W') => Ok(DayOfMonth::NearestWeekday(
            F_DOM.value(&upper[..upper.len() - 1])?,
        )),
        _ => Ok(DayOfMonth::Days(bits64(&F_DOM.values(text)?) as u32)),
    }
}

fn parse_dow(text: &str) -> Result<DayOfWeek, String> {
    let upper = text.to_ascii_uppercase();
    if upper == "?" {
        return Ok(DayOfWeek::Unspecified);
    }
    if upper == "L" {
        return Ok(DayOfWeek::Last(7));
    }
    if let Some(day) = upper.strip_suffix('L') {
        return Ok(DayOfWeek::Last(F_DOW.value(day)?));
    }
    if let Some((day, n)) = upper.split_once('#') {
        let n: u32 = n
            .parse()
            .ok()
            .filter(|n| (1..=5).contains(n))
            .ok_or_else(|| format!("'{text}': the instance after '#' must be 1-5"))?;
        return Ok(DayOfWeek::Nth(F_DOW.value(day)?, n));
    }
    Ok(DayOfWeek::Days(bits64(&F_DOW.values(text)?) as u8))
}

/// The weekday (Monday to Friday) nearest day `n` of the month, never leaving the month.
fn nearest_weekday(y: i64, m: u32, n: u32) -> u32 {
    let last = days_in_month(y, m);
    let weekday = (days_from_civil(y, m, n) + 4).rem_euclid(7) as u32 + 1;
    match weekday {
        7 if n == 1 => 3,
        7 => n - 1,
        1 if n == last => n - 2,
        1 => n + 1,
        _ => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::schedule::parse_time;

    fn at(text: &str) -> Timestamp {
        parse_time("t", text).unwrap()
    }

    fn next(expr: &str, from: &str) -> String {
        let e = CronExpression::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let t = e.next_at_or_after(at(from)).expect("a next instant");
        let (y, m, d) = civil_from_days(t.millis().div_euclid(DAY_MS));
        let minutes = t.millis().rem_euclid(DAY_MS) / MINUTE_MS;
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}",
            minutes / 60,
            minutes % 60
        )
    }

    fn all(expr: &str, from: &str, n: usize) -> Vec<String> {
        let e = CronExpression::parse(expr).unwrap();
        let mut t = at(from);
        let mut out = Vec::new();
        for _ in 0..n {
            let s = e.next_at_or_after(t).unwrap();
            let (y, m, d) = civil_from_days(s.millis().div_euclid(DAY_MS));
            let minutes = s.millis().rem_euclid(DAY_MS) / MINUTE_MS;
            out.push(format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}",
                minutes / 60,
                minutes % 60
            ));
            t = Timestamp(s.millis() + 1);
        }
        out
    }

    #[test]
    fn civil_round_trip() {
        for day in [-1, 0, 59, 11_016, 19_782, 84_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    /// AWS's documented examples (EventBridge "Cron expressions" table).
    #[test]
    fn aws_examples() {
        // 2030-06-03 is a Monday.
        assert_eq!(
            next("cron(0 10 * * ? *)", "2030-06-03T10:01"),
            "2030-06-04T10:00"
        );
        assert_eq!(
            next("cron(15 12 * * ? *)", "2030-06-03T00:00"),
            "2030-06-03T12:15"
        );
        assert_eq!(
            next("cron(0 18 ? * MON-FRI *)", "2030-06-07T18:01"),
            "2030-06-10T18:00"
        );
        assert_eq!(
            next("cron(0 8 1 * ? *)", "2030-06-03T00:00"),
            "2030-07-01T08:00"
        );
        assert_eq!(
            all("cron(0/15 * * * ? *)", "2030-06-03T00:01", 3),
            ["2030-06-03T00:15", "2030-06-03T00:30", "2030-06-03T00:45"]
        );
        assert_eq!(
            all("cron(0/10 * ? * MON-FRI *)", "2030-06-07T23:55", 2),
            ["2030-06-10T00:00", "2030-06-10T00:10"]
        );
        assert_eq!(
            all("cron(0/5 8-17 ? * MON-FRI *)", "2030-06-03T17:52", 2),
            ["2030-06-03T17:55", "2030-06-04T08:00"]
        );
        // The first Monday of each month.
        assert_eq!(
            next("cron(0 9 ? * 2#1 *)", "2030-06-04T00:00"),
            "2030-07-01T09:00"
        );
        // The brief's example: Sundays at 22:00.
        assert_eq!(
            next("cron(0 22 ? * SUN *)", "2030-06-03T00:00"),
            "2030-06-09T22:00"
        );
    }

    #[test]
    fn wildcards() {
        // Last day of February in a leap year, last weekday of a month ending on a Sunday.
        assert_eq!(
            next("cron(0 0 L * ? *)", "2032-02-01T00:00"),
            "2032-02-29T00:00"
        );
        assert_eq!(
            next("cron(0 0 LW * ? *)", "2030-06-01T00:00"),
            "2030-06-28T00:00"
        );
        // 2030-06-15 is a Saturday: the nearest weekday is Friday the 14th; 2030-09-01 is a
        // Sunday, the 1st's nearest weekday inside the month is Monday the 2nd.
        assert_eq!(
            next("cron(30 1 15W * ? *)", "2030-06-01T00:00"),
            "2030-06-14T01:30"
        );
        assert_eq!(
            next("cron(0 0 1W * ? *)", "2030-08-02T00:00"),
            "2030-09-02T00:00"
        );
        // The last Friday (6L) of June 2030 is the 28th.
        assert_eq!(
            next("cron(0 12 ? * 6L *)", "2030-06-01T00:00"),
            "2030-06-28T12:00"
        );
        // Wrapping hours, names in any case, lists, years.
        assert_eq!(
            all("cron(0 22-1 ? * mon *)", "2030-06-03T21:00", 4),
            [
                "2030-06-03T22:00",
                "2030-06-03T23:00",
                "2030-06-10T00:00",
                "2030-06-10T01:00"
            ]
        );
        assert_eq!(
            next("cron(5,10 0 1 JAN,jul ? 2031)", "2030-06-03T00:00"),
            "2031-01-01T00:05"
        );
        assert_eq!(
            next("0 0 1 1 ? 2031-2033/2", "2032-01-01T00:00"),
            "2033-01-01T00:00"
        );
        let only_2031 = CronExpression::parse("cron(0 0 * * ? 2031)").unwrap();
        assert_eq!(only_2031.next_at_or_after(at("2032-01-01T00:00")), None);
    }

    #[test]
    fn windows() {
        let sundays = CronExpression::parse("cron(0 22 ? * SUN *)").unwrap();
        assert_eq!(sundays.window_open_at(60, at("2030-06-09T21:59")), None);
        assert_eq!(
            sundays.window_open_at(60, at("2030-06-09T22:00")),
            Some(at("2030-06-09T23:00"))
        );
        assert!(sundays.window_open_at(60, at("2030-06-09T22:59")).is_some());
        assert_eq!(sundays.window_open_at(60, at("2030-06-09T23:00")), None);
        // A window running past midnight.
        assert!(
            sundays
                .window_open_at(180, at("2030-06-10T00:30"))
                .is_some()
        );
    }

    #[test]
    fn invalid_expressions() {
        for bad in [
            "",
            "cron()",
            "cron(0 22 ? * SUN)",
            "cron(0 22 ? * SUN * *)",
            "cron(0 22 * * SUN *)",
            "cron(0 22 ? * ? *)",
            "cron(60 22 ? * SUN *)",
            "cron(0 24 ? * SUN *)",
            "cron(0 0 32 * ? *)",
            "cron(0 0 0 * ? *)",
            "cron(0 0 ? 13 SUN *)",
            "cron(0 0 ? * 8 *)",
            "cron(0 0 ? * 0 *)",
            "cron(0 0 ? * 2#6 *)",
            "cron(0 0 ? * SUN 1969)",
            "cron(0 0 ? * SUN 2200)",
            "cron(0/0 0 ? * SUN *)",
            "cron(0 0 ? * FUN *)",
            "cron(0 22 ? * SUN *",
            "cron(a b c d e f)",
            "cron(0 0 ? * SUN *) x",
        ] {
            assert!(CronExpression::parse(bad).is_err(), "{bad} parsed");
        }
        let e = CronExpression::parse("cron(0 22 * * SUN *)").unwrap_err();
        assert!(e.0.contains("must be '?'"), "{e}");
    }
}
