//! A thing's pending job executions in AWS's order (IN_PROGRESS before QUEUED, then by
//! `queuedAt`), which `start-next`, `$next` and `notify-next` follow, and the rule for when
//! `notify-next` is due: whenever the first pending execution changes.

use std::cmp::Ordering;

use crate::jobs::{ExecutionStatus, JobExecution};

/// AWS's order of pending executions.
pub fn order(a: &JobExecution, b: &JobExecution) -> Ordering {
    let rank = |e: &JobExecution| match e.status {
        ExecutionStatus::InProgress => 0,
        _ => 1,
    };
    rank(a)
        .cmp(&rank(b))
        .then(a.queued_at.cmp(&b.queued_at))
        .then_with(|| a.job_id.cmp(&b.job_id))
        .then(a.execution_number.cmp(&b.execution_number))
}

/// The pending executions among `executions`, in AWS's order.
pub fn sorted(executions: impl IntoIterator<Item = JobExecution>) -> Vec<JobExecution> {
    let mut pending: Vec<JobExecution> = executions
        .into_iter()
        .filter(|e| !e.status.is_terminal())
        .collect();
    pending.sort_by(order);
    pending
}

/// What identifies "the next execution" for `notify-next`: another execution at the head is
/// news; the head itself starting (QUEUED → IN_PROGRESS) is not, since the device started it
/// (the AWS IoT device SDKs' samples start the next job on each `notify-next` and would
/// start it twice).
pub type NextKey = (String, i64);

fn key(e: &JobExecution) -> NextKey {
    (e.job_id.clone(), e.execution_number)
}

/// The first pending execution's key.
pub fn next_key(pending: &[JobExecution]) -> Option<NextKey> {
    pending
        .iter()
        .filter(|e| !e.status.is_terminal())
        .min_by(|a, b| order(a, b))
        .map(key)
}

/// The first pending execution's key before a change, given the list after it: the changed
/// execution is put back as it was (`before`, or absent if it is new).
pub fn next_key_before(
    after: &[JobExecution],
    changed: &JobExecution,
    before: Option<&JobExecution>,
) -> Option<NextKey> {
    let same = |e: &JobExecution| {
        e.job_id == changed.job_id && e.execution_number == changed.execution_number
    };
    let mut list: Vec<JobExecution> = after.iter().filter(|e| !same(e)).cloned().collect();
    if let Some(b) = before {
        list.push(b.clone());
    }
    next_key(&list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn e(job: &str, status: ExecutionStatus, queued: i64) -> JobExecution {
        let mut x = JobExecution::queued(job, "t", 1, 0, Timestamp(queued));
        x.status = status;
        x
    }

    #[test]
    fn in_progress_first_then_oldest_queued() {
        let list = sorted([
            e("c", ExecutionStatus::Queued, 1),
            e("done", ExecutionStatus::Succeeded, 0),
            e("b", ExecutionStatus::InProgress, 5),
            e("a", ExecutionStatus::Queued, 0),
        ]);
        let ids: Vec<&str> = list.iter().map(|x| x.job_id.as_str()).collect();
        assert_eq!(ids, ["b", "a", "c"]);
    }

    #[test]
    fn notify_next_is_due_when_the_first_changes() {
        let a = e("a", ExecutionStatus::Queued, 0);
        let b = e("b", ExecutionStatus::Queued, 1);
        // A new execution queued behind another: no change at the head.
        let after = vec![a.clone(), b.clone()];
        assert_eq!(next_key_before(&after, &b, None), next_key(&after));
        // The first one queued: the head changed from nothing.
        assert_eq!(next_key_before(std::slice::from_ref(&a), &a, None), None);
        // The head starts: still the same head, not news.
        let mut started = a.clone();
        started.status = ExecutionStatus::InProgress;
        let after = vec![started.clone(), b.clone()];
        assert_eq!(
            next_key_before(&after, &started, Some(&a)),
            next_key(&after)
        );
        // The second one starts and overtakes the head.
        let mut b_started = b.clone();
        b_started.status = ExecutionStatus::InProgress;
        let after = vec![a.clone(), b_started.clone()];
        assert_ne!(
            next_key_before(&after, &b_started, Some(&b)),
            next_key(&after)
        );
        // The head finishes: the next one moves up; the last one finishes: nothing left.
        let mut a_done = started.clone();
        a_done.status = ExecutionStatus::Succeeded;
        let after = vec![b.clone()];
        assert_ne!(
            next_key_before(&after, &a_done, Some(&started)),
            next_key(&after)
        );
        assert_eq!(next_key(&[]), None);
        // An update of the head that keeps its status is not news.
        let after = vec![started.clone(), b];
        assert_eq!(
            next_key_before(&after, &started, Some(&started)),
            next_key(&after)
        );
    }
}
