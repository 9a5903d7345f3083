//! A job's configuration as AWS shapes it (`presignedUrlConfig`, `jobExecutionsRolloutConfig`,
//! `abortConfig`, `timeoutConfig`, `jobExecutionsRetryConfig`, `schedulingConfig`), with the
//! limits AWS documents. The serde names are AWS's wire names, so the control plane
//! deserializes these directly and the store keeps them as the same JSON.

use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::placeholder;

/// Rollout ceiling AWS documents: at most 1,000 things notified per minute.
pub const MAX_ROLLOUT_PER_MINUTE: i64 = 1000;
/// In-progress and step timeouts: 1..=10080 minutes (one week).
pub const MAX_TIMEOUT_MINUTES: i64 = 10_080;
/// Retries per failure type: 0..=10.
pub const MAX_RETRIES: i64 = 10;
/// A maintenance window lasts 1..=1430 minutes.
pub const MAX_WINDOW_MINUTES: i64 = 1430;

/// Everything about a job beyond its targets and document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presigned_url_config: Option<PresignedUrlConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_executions_rollout_config: Option<RolloutConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_config: Option<AbortConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_config: Option<TimeoutConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_executions_retry_config: Option<RetryConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_config: Option<SchedulingConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresignedUrlConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_sec: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_per_minute: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exponential_rate: Option<ExponentialRate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExponentialRate {
    pub base_rate_per_minute: i64,
    pub increment_factor: f64,
    pub rate_increase_criteria: RateIncreaseCriteria,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateIncreaseCriteria {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_notified_things: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_succeeded_things: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbortConfig {
    pub criteria_list: Vec<AbortCriteria>,
}

/// Which failures an abort or retry criterion counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureType {
    Failed,
    Rejected,
    TimedOut,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AbortAction {
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbortCriteria {
    pub failure_type: FailureType,
    pub action: AbortAction,
    pub threshold_percentage: f64,
    pub min_number_of_executed_things: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress_timeout_in_minutes: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfig {
    pub criteria_list: Vec<RetryCriteria>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryCriteria {
    pub failure_type: FailureType,
    pub number_of_retries: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EndBehavior {
    StopRollout,
    Cancel,
    ForceCancel,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_behavior: Option<EndBehavior>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintenance_windows: Vec<MaintenanceWindow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindow {
    pub start_time: String,
    pub duration_in_minutes: i64,
}

fn invalid(message: impl Into<String>) -> ValidationError {
    ValidationError::new(message)
}

impl JobConfig {
    /// Checks every part against AWS's limits. Scheduling times are checked separately
    /// ([`crate::jobs::schedule::check`]) because they depend on the current time.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(p) = &self.presigned_url_config {
            p.validate()?;
        }
        if let Some(r) = &self.job_executions_rollout_config {
            r.validate()?;
        }
        if let Some(a) = &self.abort_config {
            a.validate()?;
        }
        if let Some(t) = &self.timeout_config {
            t.validate()?;
        }
        if let Some(r) = &self.job_executions_retry_config {
            r.validate()?;
        }
        if let Some(s) = &self.scheduling_config {
            check_windows(&s.maintenance_windows)?;
        }
        Ok(())
    }
}

impl PresignedUrlConfig {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(role) = &self.role_arn
            && !(20..=2048).contains(&role.len())
        {
            return Err(invalid(
                "presignedUrlConfig.roleArn must have length between 20 and 2048",
            ));
        }
        placeholder::presign_expiry(self.expires_in_sec)
            .map(|_| ())
            .map_err(|e| invalid(format!("presignedUrlConfig.{e}")))
    }
}

impl RolloutConfig {
    pub fn validate(&self) -> Result<(), ValidationError> {
        match (self.maximum_per_minute, &self.exponential_rate) {
            (Some(_), Some(_)) => Err(invalid(
                "jobExecutionsRolloutConfig accepts maximumPerMinute or exponentialRate, not both",
            )),
            (Some(n), None) if !(1..=MAX_ROLLOUT_PER_MINUTE).contains(&n) => Err(invalid(format!(
                "jobExecutionsRolloutConfig.maximumPerMinute must be between 1 and \
                 {MAX_ROLLOUT_PER_MINUTE}, not {n}"
            ))),
            (None, Some(e)) => e.validate(),
            _ => Ok(()),
        }
    }
}

impl ExponentialRate {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if !(1..=MAX_ROLLOUT_PER_MINUTE).contains(&self.base_rate_per_minute) {
            return Err(invalid(format!(
                "exponentialRate.baseRatePerMinute must be between 1 and {MAX_ROLLOUT_PER_MINUTE}"
            )));
        }
        // AWS: 1.1..=5 with at most one digit after the decimal point.
        let tenths = self.increment_factor * 10.0;
        if !(1.1..=5.0).contains(&self.increment_factor) || (tenths - tenths.round()).abs() > 1e-9 {
            return Err(invalid(
                "exponentialRate.incrementFactor must be between 1.1 and 5 with one decimal place",
            ));
        }
        let c = &self.rate_increase_criteria;
        match (c.number_of_notified_things, c.number_of_succeeded_things) {
            (Some(n), None) | (None, Some(n)) if n >= 1 => Ok(()),
            (Some(_), Some(_)) => Err(invalid(
                "rateIncreaseCriteria accepts numberOfNotifiedThings or numberOfSucceededThings, not both",
            )),
            _ => Err(invalid(
                "rateIncreaseCriteria needs numberOfNotifiedThings or numberOfSucceededThings of at least 1",
            )),
        }
    }
}

impl AbortConfig {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.criteria_list.is_empty() {
            return Err(invalid("abortConfig.criteriaList must not be empty"));
        }
        let mut seen = Vec::new();
        for c in &self.criteria_list {
            if seen.contains(&c.failure_type) {
                return Err(invalid(
                    "abortConfig.criteriaList has two criteria for one failureType",
                ));
            }
            seen.push(c.failure_type);
            // AWS: at most two digits after the decimal point, up to 100.
            let hundredths = c.threshold_percentage * 100.0;
            if !(0.0..=100.0).contains(&c.threshold_percentage)
                || (hundredths - hundredths.round()).abs() > 1e-6
            {
                return Err(invalid(
                    "abortCriteria.thresholdPercentage must be between 0 and 100 with at most two decimal places",
                ));
            }
            if c.min_number_of_executed_things < 1 {
                return Err(invalid(
                    "abortCriteria.minNumberOfExecutedThings must be at least 1",
                ));
            }
        }
        Ok(())
    }
}

impl TimeoutConfig {
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self.in_progress_timeout_in_minutes {
            Some(m) if !(1..=MAX_TIMEOUT_MINUTES).contains(&m) => Err(invalid(format!(
                "timeoutConfig.inProgressTimeoutInMinutes must be between 1 and \
                 {MAX_TIMEOUT_MINUTES}, not {m}"
            ))),
            _ => Ok(()),
        }
    }
}

impl RetryConfig {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.criteria_list.is_empty() {
            return Err(invalid(
                "jobExecutionsRetryConfig.criteriaList must not be empty",
            ));
        }
        let mut seen = Vec::new();
        for c in &self.criteria_list {
            if c.failure_type == FailureType::Rejected {
                return Err(invalid(
                    "retryCriteria.failureType must be FAILED, TIMED_OUT or ALL",
                ));
            }
            if seen.contains(&c.failure_type) {
                return Err(invalid(
                    "jobExecutionsRetryConfig.criteriaList has two criteria for one failureType",
                ));
            }
            seen.push(c.failure_type);
            if !(0..=MAX_RETRIES).contains(&c.number_of_retries) {
                return Err(invalid(format!(
                    "retryCriteria.numberOfRetries must be between 0 and {MAX_RETRIES}"
                )));
            }
        }
        Ok(())
    }
}

/// Maintenance windows: a valid AWS cron expression (at most 256 characters) and 1..=1430
/// minutes.
pub fn check_windows(windows: &[MaintenanceWindow]) -> Result<(), ValidationError> {
    for w in windows {
        if w.start_time.is_empty() || w.start_time.len() > 256 {
            return Err(invalid(
                "maintenanceWindow.startTime must have length between 1 and 256",
            ));
        }
        crate::jobs::cron::CronExpression::parse(&w.start_time)?;
        if !(1..=MAX_WINDOW_MINUTES).contains(&w.duration_in_minutes) {
            return Err(invalid(format!(
                "maintenanceWindow.durationInMinutes must be between 1 and {MAX_WINDOW_MINUTES}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(value: serde_json::Value) -> JobConfig {
        serde_json::from_value(value).expect("test configs are well-formed")
    }

    #[test]
    fn wire_json_round_trips() {
        let wire = json!({
            "presignedUrlConfig": {"expiresInSec": 600},
            "jobExecutionsRolloutConfig": {"exponentialRate": {"baseRatePerMinute": 10,
                "incrementFactor": 2.0, "rateIncreaseCriteria": {"numberOfNotifiedThings": 5}}},
            "abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
                "thresholdPercentage": 50.5, "minNumberOfExecutedThings": 2}]},
            "timeoutConfig": {"inProgressTimeoutInMinutes": 10},
            "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 3}]},
            "schedulingConfig": {"startTime": "2030-01-01T10:00", "endBehavior": "STOP_ROLLOUT"}
        });
        let c = config(wire.clone());
        c.validate().unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap(), wire);
    }

    #[test]
    fn limits_are_enforced() {
        let bad = [
            json!({"presignedUrlConfig": {"expiresInSec": 59}}),
            json!({"presignedUrlConfig": {"expiresInSec": 3601}}),
            json!({"presignedUrlConfig": {"roleArn": "short"}}),
            json!({"jobExecutionsRolloutConfig": {"maximumPerMinute": 0}}),
            json!({"jobExecutionsRolloutConfig": {"maximumPerMinute": 1001}}),
            json!({"jobExecutionsRolloutConfig": {"maximumPerMinute": 5, "exponentialRate":
                {"baseRatePerMinute": 1, "incrementFactor": 2, "rateIncreaseCriteria": {"numberOfNotifiedThings": 1}}}}),
            json!({"jobExecutionsRolloutConfig": {"exponentialRate":
                {"baseRatePerMinute": 1, "incrementFactor": 1.05, "rateIncreaseCriteria": {"numberOfNotifiedThings": 1}}}}),
            json!({"jobExecutionsRolloutConfig": {"exponentialRate":
                {"baseRatePerMinute": 1, "incrementFactor": 5.1, "rateIncreaseCriteria": {"numberOfNotifiedThings": 1}}}}),
            json!({"jobExecutionsRolloutConfig": {"exponentialRate":
                {"baseRatePerMinute": 1, "incrementFactor": 2, "rateIncreaseCriteria": {}}}}),
            json!({"jobExecutionsRolloutConfig": {"exponentialRate":
                {"baseRatePerMinute": 0, "incrementFactor": 2, "rateIncreaseCriteria": {"numberOfSucceededThings": 1}}}}),
            json!({"abortConfig": {"criteriaList": []}}),
            json!({"abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
                "thresholdPercentage": 100.5, "minNumberOfExecutedThings": 1}]}}),
            json!({"abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
                "thresholdPercentage": 10.999, "minNumberOfExecutedThings": 1}]}}),
            json!({"abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
                "thresholdPercentage": 10, "minNumberOfExecutedThings": 0}]}}),
            json!({"timeoutConfig": {"inProgressTimeoutInMinutes": 0}}),
            json!({"timeoutConfig": {"inProgressTimeoutInMinutes": 10081}}),
            json!({"jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 11}]}}),
            json!({"jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "REJECTED", "numberOfRetries": 1}]}}),
            json!({"jobExecutionsRetryConfig": {"criteriaList": []}}),
            json!({"schedulingConfig": {"maintenanceWindows": [{"startTime": "cron(0 0 * * ? *)", "durationInMinutes": 1431}]}}),
            json!({"schedulingConfig": {"maintenanceWindows": [{"startTime": "cron(0 0 * * * *)", "durationInMinutes": 60}]}}),
            json!({"schedulingConfig": {"maintenanceWindows": [{"startTime": "every sunday", "durationInMinutes": 60}]}}),
        ];
        for b in bad {
            assert!(config(b.clone()).validate().is_err(), "{b}");
        }
        let good = [
            json!({"jobExecutionsRolloutConfig": {"maximumPerMinute": 1000}}),
            json!({"abortConfig": {"criteriaList": [{"failureType": "ALL", "action": "CANCEL",
                "thresholdPercentage": 10.99, "minNumberOfExecutedThings": 1}]}}),
            json!({"jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "ALL", "numberOfRetries": 10}]}}),
            json!({"timeoutConfig": {"inProgressTimeoutInMinutes": 10080}}),
            json!({"schedulingConfig": {"maintenanceWindows": [{"startTime": "cron(0 22 ? * SUN *)", "durationInMinutes": 1430}]}}),
        ];
        for g in good {
            assert!(config(g.clone()).validate().is_ok(), "{g}");
        }
    }

    #[test]
    fn unknown_enum_values_do_not_parse() {
        let r: Result<JobConfig, _> = serde_json::from_value(
            json!({"abortConfig": {"criteriaList": [
            {"failureType": "SOMETIMES", "action": "CANCEL", "thresholdPercentage": 1, "minNumberOfExecutedThings": 1}]}}),
        );
        assert!(r.is_err());
    }
}
