//! Rollout pacing, abort criteria and retry decisions: the arithmetic the jobs engine applies
//! to counts it reads from the store, so every decision can be recomputed after a restart.
//!
//! - Rollout: `maximumPerMinute` caps how many things are notified (their execution created)
//!   in any minute; `exponentialRate` starts at `baseRatePerMinute` and multiplies by
//!   `incrementFactor` each time another `numberOfNotifiedThings` (or
//!   `numberOfSucceededThings`) is reached, never above AWS's 1,000 per minute. With no
//!   rollout configuration every target is released at once.
//! - Abort: once at least `minNumberOfExecutedThings` things have finished, the job is
//!   canceled when the failures of the criterion's type reach `thresholdPercentage` of them.
//! - Retry: a FAILED or TIMED_OUT execution is queued again while the matching criterion
//!   (the specific type before `ALL`) has retries left.

use crate::jobs::config::{
    AbortConfig, AbortCriteria, FailureType, MAX_ROLLOUT_PER_MINUTE, RetryConfig, RolloutConfig,
};
use crate::jobs::{ExecutionStatus, ProcessCounts};

/// How far a rollout has come, for the exponential rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolloutProgress {
    /// Things notified so far (executions created).
    pub notified: i64,
    /// Things whose execution SUCCEEDED.
    pub succeeded: i64,
}

/// The current rollout rate in things per minute; `None` for no limit.
pub fn rate_per_minute(config: Option<&RolloutConfig>, progress: RolloutProgress) -> Option<i64> {
    let config = config?;
    if let Some(max) = config.maximum_per_minute {
        return Some(max);
    }
    let e = config.exponential_rate.as_ref()?;
    let c = &e.rate_increase_criteria;
    let steps = match (c.number_of_notified_things, c.number_of_succeeded_things) {
        (Some(n), _) if n > 0 => progress.notified / n,
        (_, Some(n)) if n > 0 => progress.succeeded / n,
        _ => 0,
    };
    let mut rate = e.base_rate_per_minute as f64;
    for _ in 0..steps {
        rate *= e.increment_factor;
        if rate >= MAX_ROLLOUT_PER_MINUTE as f64 {
            return Some(MAX_ROLLOUT_PER_MINUTE);
        }
    }
    Some((rate.floor() as i64).clamp(1, MAX_ROLLOUT_PER_MINUTE))
}

/// How many more things may be notified now at `per_minute`, given how many were notified
/// in the last minute.
pub fn release_allowance(per_minute: i64, released_in_last_minute: i64) -> usize {
    usize::try_from(per_minute - released_in_last_minute).unwrap_or(0)
}

/// The first abort criterion the counts meet, if any.
pub fn abort_triggered<'a>(
    config: Option<&'a AbortConfig>,
    counts: &ProcessCounts,
) -> Option<&'a AbortCriteria> {
    let config = config?;
    let executed = counts.succeeded + counts.failed + counts.rejected + counts.timed_out;
    config.criteria_list.iter().find(|c| {
        if executed < c.min_number_of_executed_things || executed == 0 {
            return false;
        }
        let failures = match c.failure_type {
            FailureType::Failed => counts.failed,
            FailureType::Rejected => counts.rejected,
            FailureType::TimedOut => counts.timed_out,
            FailureType::All => counts.failed + counts.rejected + counts.timed_out,
        };
        failures as f64 * 100.0 >= c.threshold_percentage * executed as f64
    })
}

/// Whether an execution that ended in `status` after `retry_attempt` retries is queued again.
pub fn should_retry(
    config: Option<&RetryConfig>,
    status: ExecutionStatus,
    retry_attempt: i64,
) -> bool {
    let Some(config) = config else {
        return false;
    };
    let specific = match status {
        ExecutionStatus::Failed => FailureType::Failed,
        ExecutionStatus::TimedOut => FailureType::TimedOut,
        _ => return false,
    };
    let criterion = config
        .criteria_list
        .iter()
        .find(|c| c.failure_type == specific)
        .or_else(|| {
            config
                .criteria_list
                .iter()
                .find(|c| c.failure_type == FailureType::All)
        });
    criterion.is_some_and(|c| retry_attempt < c.number_of_retries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::config::{AbortAction, ExponentialRate, RateIncreaseCriteria, RetryCriteria};

    fn exponential(
        base: i64,
        factor: f64,
        notified: Option<i64>,
        succeeded: Option<i64>,
    ) -> RolloutConfig {
        RolloutConfig {
            maximum_per_minute: None,
            exponential_rate: Some(ExponentialRate {
                base_rate_per_minute: base,
                increment_factor: factor,
                rate_increase_criteria: RateIncreaseCriteria {
                    number_of_notified_things: notified,
                    number_of_succeeded_things: succeeded,
                },
            }),
        }
    }

    #[test]
    fn fixed_and_unlimited_rates() {
        assert_eq!(rate_per_minute(None, RolloutProgress::default()), None);
        let fixed = RolloutConfig {
            maximum_per_minute: Some(7),
            exponential_rate: None,
        };
        assert_eq!(
            rate_per_minute(
                Some(&fixed),
                RolloutProgress {
                    notified: 500,
                    succeeded: 0
                }
            ),
            Some(7)
        );
        assert_eq!(release_allowance(7, 5), 2);
        assert_eq!(release_allowance(7, 7), 0);
        assert_eq!(release_allowance(7, 9), 0);
    }

    #[test]
    fn exponential_rate_grows_per_criterion_and_caps_at_1000() {
        let c = exponential(10, 2.0, Some(5), None);
        let at = |notified| {
            rate_per_minute(
                Some(&c),
                RolloutProgress {
                    notified,
                    succeeded: 0,
                },
            )
        };
        assert_eq!(at(0), Some(10));
        assert_eq!(at(4), Some(10));
        assert_eq!(at(5), Some(20));
        assert_eq!(at(12), Some(40));
        assert_eq!(at(1_000_000), Some(1000));
        let s = exponential(3, 1.5, None, Some(2));
        let at = |succeeded| {
            rate_per_minute(
                Some(&s),
                RolloutProgress {
                    notified: 100,
                    succeeded,
                },
            )
        };
        assert_eq!(at(1), Some(3));
        assert_eq!(at(2), Some(4));
        assert_eq!(at(4), Some(6));
    }

    fn criteria(failure_type: FailureType, threshold: f64, min: i64) -> AbortConfig {
        AbortConfig {
            criteria_list: vec![AbortCriteria {
                failure_type,
                action: AbortAction::Cancel,
                threshold_percentage: threshold,
                min_number_of_executed_things: min,
            }],
        }
    }

    #[test]
    fn abort_waits_for_the_minimum_then_compares_the_percentage() {
        let c = criteria(FailureType::Failed, 50.0, 4);
        let mut counts = ProcessCounts {
            failed: 3,
            ..ProcessCounts::default()
        };
        assert!(
            abort_triggered(Some(&c), &counts).is_none(),
            "3 executed < 4"
        );
        counts.succeeded = 1;
        assert!(abort_triggered(Some(&c), &counts).is_some(), "3/4 failed");
        counts.succeeded = 4;
        assert!(abort_triggered(Some(&c), &counts).is_none(), "3/7 < 50%");
        counts.succeeded = 3;
        assert!(abort_triggered(Some(&c), &counts).is_some(), "3/6 = 50%");
        counts.queued = 1000;
        assert!(
            abort_triggered(Some(&c), &counts).is_some(),
            "queued things are not executed"
        );
    }

    #[test]
    fn abort_failure_types() {
        let counts = ProcessCounts {
            rejected: 1,
            timed_out: 1,
            succeeded: 2,
            ..ProcessCounts::default()
        };
        assert!(abort_triggered(Some(&criteria(FailureType::Failed, 10.0, 1)), &counts).is_none());
        assert!(
            abort_triggered(Some(&criteria(FailureType::Rejected, 25.0, 1)), &counts).is_some()
        );
        assert!(
            abort_triggered(Some(&criteria(FailureType::TimedOut, 25.01, 1)), &counts).is_none()
        );
        assert!(abort_triggered(Some(&criteria(FailureType::All, 50.0, 4)), &counts).is_some());
        assert!(abort_triggered(None, &counts).is_none());
    }

    #[test]
    fn retries_prefer_the_specific_criterion() {
        let c = RetryConfig {
            criteria_list: vec![
                RetryCriteria {
                    failure_type: FailureType::All,
                    number_of_retries: 1,
                },
                RetryCriteria {
                    failure_type: FailureType::TimedOut,
                    number_of_retries: 3,
                },
            ],
        };
        assert!(should_retry(Some(&c), ExecutionStatus::Failed, 0));
        assert!(!should_retry(Some(&c), ExecutionStatus::Failed, 1));
        assert!(should_retry(Some(&c), ExecutionStatus::TimedOut, 2));
        assert!(!should_retry(Some(&c), ExecutionStatus::TimedOut, 3));
        assert!(!should_retry(Some(&c), ExecutionStatus::Rejected, 0));
        assert!(!should_retry(Some(&c), ExecutionStatus::Canceled, 0));
        assert!(!should_retry(None, ExecutionStatus::Failed, 0));
        let only_failed = RetryConfig {
            criteria_list: vec![RetryCriteria {
                failure_type: FailureType::Failed,
                number_of_retries: 2,
            }],
        };
        assert!(!should_retry(
            Some(&only_failed),
            ExecutionStatus::TimedOut,
            0
        ));
    }
}
