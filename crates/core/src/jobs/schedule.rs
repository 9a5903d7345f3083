//! `schedulingConfig` times: AWS writes them `YYYY-MM-DDTHH:MM` (UTC, minute precision). A
//! job's start must lie at least 30 minutes and at most one year ahead; its end at least 30
//! minutes after the start and at most two years after it.

use crate::ValidationError;
use crate::jobs::config::SchedulingConfig;
use crate::jobs::cron::CronExpression;
use crate::time::{Timestamp, civil_from_days, days_from_civil, days_in_month};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;
pub const MIN_LEAD_MINUTES: i64 = 30;

/// Parses `YYYY-MM-DDTHH:MM` as UTC.
pub fn parse_time(member: &str, value: &str) -> Result<Timestamp, ValidationError> {
    let bad = || {
        ValidationError::new(format!(
            "schedulingConfig.{member} '{value}' must be a UTC time written YYYY-MM-DDTHH:MM"
        ))
    };
    let b = value.as_bytes();
    if b.len() != 16 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, ValidationError> {
        let s = &value[range];
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (y, m, d, h, min) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
    );
    if !(1..=12).contains(&m) || d < 1 || h > 23 || min > 59 {
        return Err(bad());
    }
    // Two digits each: the month is 1..=12 and the day below 100, so both fit a u32.
    let (m, d) = (m as u32, d as u32);
    if d > days_in_month(y, m) {
        return Err(bad());
    }
    Ok(Timestamp(
        days_from_civil(y, m, d) * DAY_MS + (h * 60 + min) * MINUTE_MS,
    ))
}

/// A job's start and end instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Schedule {
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

/// Parses and checks a scheduling configuration at creation time `now`.
pub fn check(config: &SchedulingConfig, now: Timestamp) -> Result<Schedule, ValidationError> {
    let start = config
        .start_time
        .as_deref()
        .map(|s| parse_time("startTime", s))
        .transpose()?;
    let end = config
        .end_time
        .as_deref()
        .map(|s| parse_time("endTime", s))
        .transpose()?;
    if let Some(start) = start {
        if start.millis() < now.millis() + MIN_LEAD_MINUTES * MINUTE_MS {
            return Err(ValidationError::new(
                "schedulingConfig.startTime must be at least 30 minutes in the future",
            ));
        }
        if start.millis() > now.millis() + 366 * DAY_MS {
            return Err(ValidationError::new(
                "schedulingConfig.startTime must be at most one year in the future",
            ));
        }
    }
    if let Some(end) = end {
        let Some(start) = start else {
            return Err(ValidationError::new(
                "schedulingConfig.endTime needs a startTime",
            ));
        };
        if end.millis() < start.millis() + MIN_LEAD_MINUTES * MINUTE_MS {
            return Err(ValidationError::new(
                "schedulingConfig.endTime must be at least 30 minutes after startTime",
            ));
        }
        if end.millis() > start.millis() + 2 * 366 * DAY_MS {
            return Err(ValidationError::new(
                "schedulingConfig.endTime must be at most two years after startTime",
            ));
        }
    }
    if config.end_behavior.is_some() && end.is_none() {
        return Err(ValidationError::new(
            "schedulingConfig.endBehavior needs an endTime",
        ));
    }
    Ok(Schedule { start, end })
}

/// Whether a job may roll out (create executions) at `now`: always without maintenance
/// windows; with them, only while one is open. Windows start at each instant their cron
/// expression names and last `durationInMinutes`. (Start and end times gate the job itself;
/// the engine checks them first.)
pub fn rollout_open(config: Option<&SchedulingConfig>, now: Timestamp) -> bool {
    let Some(c) = config.filter(|c| !c.maintenance_windows.is_empty()) else {
        return true;
    };
    c.maintenance_windows.iter().any(|w| {
        CronExpression::parse(&w.start_time)
            .ok()
            .and_then(|e| e.window_open_at(w.duration_in_minutes, now))
            .is_some()
    })
}

/// The start instants of the next `count` maintenance windows at or after `from` (AWS's
/// `scheduledJobRollouts`), earliest first, across all of the job's windows.
pub fn next_windows(
    config: Option<&SchedulingConfig>,
    from: Timestamp,
    count: usize,
) -> Vec<Timestamp> {
    let Some(c) = config else {
        return Vec::new();
    };
    let expressions: Vec<CronExpression> = c
        .maintenance_windows
        .iter()
        .filter_map(|w| CronExpression::parse(&w.start_time).ok())
        .collect();
    let mut out: Vec<Timestamp> = Vec::new();
    let mut cursor = from;
    while out.len() < count {
        let Some(next) = expressions
            .iter()
            .filter_map(|e| e.next_at_or_after(cursor))
            .min()
        else {
            break;
        };
        out.push(next);
        cursor = Timestamp(next.millis() + 1);
    }
    out
}

/// `YYYY-MM-DDTHH:MM`, the form AWS writes schedule times in.
pub fn format_time(t: Timestamp) -> String {
    let days = t.millis().div_euclid(DAY_MS);
    let minutes = t.millis().rem_euclid(DAY_MS) / MINUTE_MS;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}",
        minutes / 60,
        minutes % 60
    )
}

/// The schedule of an already accepted configuration (times are not re-checked against now).
pub fn stored(config: Option<&SchedulingConfig>) -> Schedule {
    let Some(c) = config else {
        return Schedule::default();
    };
    Schedule {
        start: c
            .start_time
            .as_deref()
            .and_then(|s| parse_time("startTime", s).ok()),
        end: c
            .end_time
            .as_deref()
            .and_then(|s| parse_time("endTime", s).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::config::{EndBehavior, MaintenanceWindow};

    #[test]
    fn parses_utc_minutes() {
        assert_eq!(
            parse_time("startTime", "1970-01-01T00:01").unwrap(),
            Timestamp(60_000)
        );
        assert_eq!(
            parse_time("startTime", "2024-02-29T12:30").unwrap(),
            Timestamp(1_709_209_800_000)
        );
        for bad in [
            "2023-02-29T00:00",
            "2024-13-01T00:00",
            "2024-01-01 00:00",
            "2024-01-01T24:00",
            "2024-01-01T00:00Z",
            "+024-01-01T00:00",
            "",
        ] {
            assert!(parse_time("startTime", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn maintenance_windows_gate_the_rollout() {
        let cfg = SchedulingConfig {
            maintenance_windows: vec![
                MaintenanceWindow {
                    start_time: "cron(0 22 ? * SUN *)".into(),
                    duration_in_minutes: 60,
                },
                MaintenanceWindow {
                    start_time: "cron(30 3 ? * WED *)".into(),
                    duration_in_minutes: 30,
                },
            ],
            ..SchedulingConfig::default()
        };
        let t = |s| parse_time("t", s).unwrap();
        assert!(rollout_open(None, t("2030-06-09T12:00")));
        assert!(!rollout_open(Some(&cfg), t("2030-06-09T21:59")));
        assert!(rollout_open(Some(&cfg), t("2030-06-09T22:00")));
        assert!(!rollout_open(Some(&cfg), t("2030-06-09T23:00")));
        assert!(rollout_open(Some(&cfg), t("2030-06-12T03:45")));
        assert_eq!(
            next_windows(Some(&cfg), t("2030-06-09T22:01"), 3)
                .into_iter()
                .map(format_time)
                .collect::<Vec<_>>(),
            ["2030-06-12T03:30", "2030-06-16T22:00", "2030-06-19T03:30"]
        );
        assert_eq!(format_time(t("2024-02-29T12:30")), "2024-02-29T12:30");
    }

    #[test]
    fn lead_times_and_order() {
        let now = parse_time("x", "2030-06-01T12:00").unwrap();
        let cfg = |start: Option<&str>, end: Option<&str>| SchedulingConfig {
            start_time: start.map(str::to_string),
            end_time: end.map(str::to_string),
            end_behavior: end.map(|_| EndBehavior::Cancel),
            maintenance_windows: Vec::new(),
        };
        let ok = check(
            &cfg(Some("2030-06-01T12:30"), Some("2030-06-01T13:00")),
            now,
        )
        .unwrap();
        assert_eq!(
            ok.end.unwrap().millis() - ok.start.unwrap().millis(),
            30 * MINUTE_MS
        );
        assert!(check(&cfg(Some("2030-06-01T12:29"), None), now).is_err());
        assert!(check(&cfg(Some("2031-06-03T12:00"), None), now).is_err());
        assert!(
            check(
                &cfg(Some("2030-06-01T13:00"), Some("2030-06-01T13:29")),
                now
            )
            .is_err()
        );
        assert!(check(&cfg(None, Some("2030-06-01T13:29")), now).is_err());
        let mut behaviour_only = cfg(None, None);
        behaviour_only.end_behavior = Some(EndBehavior::StopRollout);
        assert!(check(&behaviour_only, now).is_err());
        assert_eq!(
            stored(Some(&cfg(Some("2030-06-01T12:30"), None))).start,
            ok.start
        );
    }
}
