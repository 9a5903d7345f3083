//! JSON shapes of job executions as devices see them. MQTT and `iot-jobs-data` agree except
//! in one member: over MQTT `jobDocument` is a JSON object, over HTTPS a string. All times
//! are integer epoch seconds (the models' `long`; the device SDKs parse them as seconds).

use drover_core::jobs::{ExecutionStatus, JobExecution, ProcessCounts};
use drover_core::time::Timestamp;
use drover_services::jobs::{Delivery, DeviceError};
use serde_json::{Map, Value, json};

/// Epoch seconds as an integer.
pub fn seconds(t: Timestamp) -> Value {
    json!(t.millis().div_euclid(1000))
}

/// How a document travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentForm {
    /// MQTT: the document as a JSON object.
    Object,
    /// HTTPS: the document as a string.
    Text,
}

fn document_value(document: &str, form: DocumentForm) -> Value {
    match form {
        DocumentForm::Text => json!(document),
        // Stored documents are checked JSON objects; a presigned URL inserted into one keeps
        // it one.
        DocumentForm::Object => serde_json::from_str(document).unwrap_or_else(|_| json!(document)),
    }
}

/// `JobExecutionSummary` (GetPendingJobExecutions, `get`, `notify`).
pub fn summary(e: &JobExecution) -> Value {
    let mut v = json!({
        "jobId": e.job_id,
        "queuedAt": seconds(e.queued_at),
        "lastUpdatedAt": seconds(e.last_updated_at),
        "versionNumber": e.version_number,
        "executionNumber": e.execution_number,
    });
    if let Some(started) = e.started_at {
        v["startedAt"] = seconds(started);
    }
    v
}

/// `JobExecution` as a device receives it.
pub fn execution(d: &Delivery, form: DocumentForm) -> Value {
    let e = &d.execution;
    let mut v = json!({
        "jobId": e.job_id,
        "thingName": e.thing_name,
        "status": e.status.as_str(),
        "statusDetails": e.status_details,
        "queuedAt": seconds(e.queued_at),
        "lastUpdatedAt": seconds(e.last_updated_at),
        "versionNumber": e.version_number,
        "executionNumber": e.execution_number,
    });
    if let Some(started) = e.started_at {
        v["startedAt"] = seconds(started);
    }
    if let Some(secs) = e.seconds_before_timed_out(d.at) {
        v["approximateSecondsBeforeTimedOut"] = json!(secs);
    }
    if let Some(doc) = &d.document {
        v["jobDocument"] = document_value(doc, form);
    }
    v
}

/// `JobExecutionState` (UpdateJobExecution's `executionState`).
pub fn execution_state(e: &JobExecution) -> Value {
    json!({
        "status": e.status.as_str(),
        "statusDetails": e.status_details,
        "versionNumber": e.version_number,
    })
}

/// The document member of an update reply.
pub fn update_document(document: &str, form: DocumentForm) -> Value {
    document_value(document, form)
}

/// The execution state a refusal carries (VersionMismatch, InvalidStateTransition).
pub fn refusal_state(e: &DeviceError) -> Option<Value> {
    match e {
        DeviceError::VersionMismatch { state, .. } => Some(execution_state(state)),
        DeviceError::InvalidStateTransition {
            state: Some(state), ..
        } => Some(execution_state(state)),
        _ => None,
    }
}

/// Parses a device's `statusDetails` (a map of strings).
pub fn status_details(
    value: Option<&Value>,
) -> Result<Option<drover_core::jobs::StatusDetails>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(format!("statusDetails value of '{k}' must be a string")),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err("statusDetails must be an object of strings".into()),
    }
}

/// A job's `jobProcessDetails`: DescribeJob and the `$aws/events/job/...` events both carry it.
pub fn process_details(p: &ProcessCounts) -> Value {
    json!({
        "numberOfCanceledThings": p.canceled,
        "numberOfSucceededThings": p.succeeded,
        "numberOfFailedThings": p.failed,
        "numberOfRejectedThings": p.rejected,
        "numberOfQueuedThings": p.queued,
        "numberOfInProgressThings": p.in_progress,
        "numberOfRemovedThings": p.removed,
        "numberOfTimedOutThings": p.timed_out,
    })
}

/// Reads an optional integer member. A string of decimal digits is accepted too: the AWS IoT
/// Device SDK for Python (v1) sends `expectedVersion` and `executionNumber` as strings, and
/// AWS IoT takes them.
pub fn int(map: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    let invalid = || format!("{name} must be an integer");
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map(Some).map_err(|_| invalid())
        }
        Some(v) => v.as_i64().map(Some).ok_or_else(invalid),
    }
}

/// Reads an optional boolean member.
pub fn boolean(map: &Map<String, Value>, name: &str) -> Result<Option<bool>, String> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("{name} must be true or false")),
    }
}

/// Reads the `status` of an update.
pub fn status(map: &Map<String, Value>) -> Result<Option<ExecutionStatus>, String> {
    match map.get("status") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => ExecutionStatus::parse(s).map(Some).map_err(|e| e.0),
        Some(_) => Err("status must be a string".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_may_arrive_as_digit_strings() {
        let map = |v: Value| serde_json::json!({ "n": v }).as_object().unwrap().clone();
        assert_eq!(int(&map(Value::from(7)), "n"), Ok(Some(7)));
        assert_eq!(int(&map(Value::from("12")), "n"), Ok(Some(12)));
        assert_eq!(int(&map(Value::Null), "n"), Ok(None));
        for bad in [
            Value::from("1.5"),
            Value::from("-1"),
            Value::from(""),
            Value::from("x"),
            Value::from(2.5),
            Value::from(true),
        ] {
            assert_eq!(
                int(&map(bad.clone()), "n"),
                Err("n must be an integer".into()),
                "{bad}"
            );
        }
        assert!(int(&map(Value::from("99999999999999999999")), "n").is_err());
    }
}
