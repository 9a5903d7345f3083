//! The `iot-jobs-data` REST API (API version 2017-09-29): GetPendingJobExecutions,
//! StartNextPendingJobExecution, DescribeJobExecution and UpdateJobExecution. Its paths
//! overlap the control plane's (`GET /things/{thing}/jobs[/{jobId}]`), so `iot/jobs.rs`
//! routes a request here when its SigV4 credential scope names `iot-jobs-data`.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use drover_core::jobs::DeviceUpdate;
use drover_services::Jobs;
use drover_services::jobs::{DeviceError, DeviceUpdateRequest};
use serde_json::{Map, Value, json};

use super::wire::{self, DocumentForm};
use crate::error::ApiError;
use crate::wire::{Params, ok};

/// The data plane's exception names and status codes.
impl From<DeviceError> for ApiError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::InvalidRequest(m) => ApiError::invalid_request(m),
            DeviceError::NotFound(m) => ApiError::not_found(m),
            // The model gives UpdateJobExecution no version-conflict error: a stale
            // expectedVersion and a refused transition both answer as a refused transition.
            DeviceError::InvalidStateTransition { message, .. }
            | DeviceError::VersionMismatch { message, .. } => ApiError::new(
                StatusCode::CONFLICT,
                "InvalidStateTransitionException",
                message,
            ),
            DeviceError::Internal(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "An internal error occurred",
            ),
        }
    }
}

fn body_map(bytes: &Bytes) -> Result<Map<String, Value>, ApiError> {
    let parsed: Value = crate::wire::body(bytes)?;
    match parsed {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid_request(
            "The request body must be a JSON object",
        )),
    }
}

/// GetPendingJobExecutions: `GET /things/{thingName}/jobs`.
pub async fn get_pending(jobs: &Jobs, thing: &str) -> Result<Response, ApiError> {
    let pending = jobs.get_pending_job_executions(thing).await?;
    Ok(ok(json!({
        "inProgressJobs": pending.in_progress.iter().map(wire::summary).collect::<Vec<_>>(),
        "queuedJobs": pending.queued.iter().map(wire::summary).collect::<Vec<_>>(),
    })))
}

/// StartNextPendingJobExecution: `PUT /things/{thingName}/jobs/$next`.
pub async fn start_next(jobs: &Jobs, thing: &str, bytes: &Bytes) -> Result<Response, ApiError> {
    let map = body_map(bytes)?;
    let details =
        wire::status_details(map.get("statusDetails")).map_err(ApiError::invalid_request)?;
    let step = wire::int(&map, "stepTimeoutInMinutes").map_err(ApiError::invalid_request)?;
    let next = jobs
        .start_next_pending_job_execution(thing, details, step)
        .await?;
    Ok(ok(match next {
        Some(d) => json!({"execution": wire::execution(&d, DocumentForm::Text)}),
        None => json!({}),
    }))
}

/// DescribeJobExecution: `GET /things/{thingName}/jobs/{jobId}`.
pub async fn describe(
    jobs: &Jobs,
    thing: &str,
    job_id: &str,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let params = Params::parse(query);
    let include = params.bool("includeJobDocument")?.unwrap_or(false);
    let number = params.i64("executionNumber")?;
    match jobs
        .describe_job_execution_for_device(thing, job_id, number, include)
        .await?
    {
        Some(d) => Ok(ok(
            json!({"execution": wire::execution(&d, DocumentForm::Text)}),
        )),
        None => Err(ApiError::not_found(format!(
            "No pending job execution for thing {thing}"
        ))),
    }
}

/// UpdateJobExecution: `POST /things/{thingName}/jobs/{jobId}`.
pub async fn update(
    jobs: &Jobs,
    thing: &str,
    job_id: &str,
    bytes: &Bytes,
) -> Result<Response, ApiError> {
    let map = body_map(bytes)?;
    let bad = ApiError::invalid_request;
    let status = wire::status(&map).map_err(bad)?;
    if status.is_none() {
        return Err(ApiError::invalid_request("status is required"));
    }
    let request = DeviceUpdateRequest {
        update: DeviceUpdate {
            status,
            status_details: wire::status_details(map.get("statusDetails")).map_err(bad)?,
            expected_version: wire::int(&map, "expectedVersion").map_err(bad)?,
            step_timeout_in_minutes: wire::int(&map, "stepTimeoutInMinutes").map_err(bad)?,
        },
        execution_number: wire::int(&map, "executionNumber").map_err(bad)?,
        include_job_execution_state: wire::boolean(&map, "includeJobExecutionState")
            .map_err(bad)?
            .unwrap_or(false),
        include_job_document: wire::boolean(&map, "includeJobDocument")
            .map_err(bad)?
            .unwrap_or(false),
    };
    let outcome = jobs.update_job_execution(thing, job_id, &request).await?;
    let mut body = json!({});
    if request.include_job_execution_state {
        body["executionState"] = wire::execution_state(&outcome.state);
    }
    if let Some(doc) = &outcome.document {
        body["jobDocument"] = wire::update_document(doc, DocumentForm::Text);
    }
    Ok(ok(body))
}
