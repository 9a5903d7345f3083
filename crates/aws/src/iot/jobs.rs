//! The jobs control plane: CreateJob, DescribeJob, ListJobs, UpdateJob, CancelJob, DeleteJob,
//! GetJobDocument, DescribeJobExecution, ListJobExecutionsForJob, ListJobExecutionsForThing,
//! CancelJobExecution, DeleteJobExecution, Create/Describe/List/DeleteJobTemplate and
//! Update/DescribeEventConfigurations, in botocore's `iot` shapes (timestamps as epoch
//! seconds, `statusDetails` wrapped in `detailsMap`).
//!
//! `GET /things/{thing}/jobs[/{jobId}]` is also an `iot-jobs-data` path; those handlers look
//! at the caller's SigV4 service and hand jobs-data requests to `jobs_data::http`.

use std::collections::BTreeMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use drover_core::jobs::{
    AbortConfig, ExecutionStatus, Job, JobConfig, JobExecution, JobStatus, JobTemplate,
    MaintenanceWindow, PresignedUrlConfig, RetryConfig, RolloutConfig, SchedulingConfig,
    StatusDetails, TargetSelection, TimeoutConfig,
};
use drover_services::jobs::{
    CreateJobRequest, CreateJobTemplateRequest, ListJobsQuery, UpdateJobRequest,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::thing_types::{WireTag, tags};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::jobs_data;
use crate::wire::{Params, body, empty, ok, timestamp};

const JOBS_DATA: &str = "iot-jobs-data";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateJobBody {
    targets: Option<Vec<String>>,
    document_source: Option<String>,
    document: Option<String>,
    description: Option<String>,
    presigned_url_config: Option<PresignedUrlConfig>,
    target_selection: Option<String>,
    job_executions_rollout_config: Option<RolloutConfig>,
    abort_config: Option<AbortConfig>,
    timeout_config: Option<TimeoutConfig>,
    tags: Option<Vec<WireTag>>,
    namespace_id: Option<String>,
    job_template_arn: Option<String>,
    job_executions_retry_config: Option<RetryConfig>,
    document_parameters: Option<BTreeMap<String, String>>,
    scheduling_config: Option<SchedulingConfig>,
}

pub async fn create(
    State(state): State<ApiState>,
    Path(job_id): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let b: CreateJobBody = body(&bytes)?;
    let target_selection = b
        .target_selection
        .as_deref()
        .map(TargetSelection::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_request(e.0))?;
    let job = state
        .jobs
        .create_job(CreateJobRequest {
            job_id,
            targets: b.targets.unwrap_or_default(),
            document: b.document,
            document_source: b.document_source,
            description: b.description,
            target_selection,
            config: JobConfig {
                presigned_url_config: b.presigned_url_config,
                job_executions_rollout_config: b.job_executions_rollout_config,
                abort_config: b.abort_config,
                timeout_config: b.timeout_config,
                job_executions_retry_config: b.job_executions_retry_config,
                scheduling_config: b.scheduling_config,
            },
            tags: tags(b.tags),
            namespace_id: b.namespace_id,
            job_template_arn: b.job_template_arn,
            document_parameters: b.document_parameters.unwrap_or_default(),
        })
        .await?;
    Ok(ok(json!({
        "jobArn": state.jobs.job_arn(&job.job_id),
        "jobId": job.job_id,
        "description": job.description,
    })))
}

/// Adds `more`'s members to the object `v` (the configuration blocks jobs and templates share).
fn extend(v: &mut Value, more: Value) {
    if let (Value::Object(v), Value::Object(more)) = (v, more) {
        v.extend(more);
    }
}

fn config_json(config: &JobConfig) -> Value {
    serde_json::to_value(config).expect("job configurations serialize")
}

fn job_json(state: &ApiState, job: &Job) -> Value {
    let mut v = json!({
        "jobArn": state.jobs.job_arn(&job.job_id),
        "jobId": job.job_id,
        "targetSelection": job.target_selection.as_str(),
        "status": job.status.as_str(),
        "forceCanceled": job.force_canceled,
        "reasonCode": job.reason_code,
        "comment": job.comment,
        "targets": job.targets,
        "description": job.description,
        "createdAt": timestamp(job.created_at),
        "lastUpdatedAt": timestamp(job.last_updated_at),
        "completedAt": job.completed_at.map(timestamp),
        "jobProcessDetails": jobs_data::wire::process_details(&job.process),
        "namespaceId": job.namespace_id,
        "jobTemplateArn": job.job_template_arn,
        "isConcurrent": false,
    });
    extend(&mut v, config_json(&job.config));
    if !job.document_parameters.is_empty() {
        v["documentParameters"] = json!(job.document_parameters);
    }
    v
}

pub async fn describe(
    State(state): State<ApiState>,
    Path(job_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(query.as_deref()).bool("beforeSubstitution")?;
    let job = state.jobs.describe_job(&job_id).await?;
    let mut out = json!({ "job": job_json(&state, &job) });
    let rollouts = state.jobs.scheduled_job_rollouts(&job);
    if !rollouts.is_empty() {
        out["job"]["scheduledJobRollouts"] = rollouts
            .into_iter()
            .map(|start| json!({"startTime": start}))
            .collect();
    }
    if let Some(source) = &job.document_source {
        out["documentSource"] = json!(source);
    }
    Ok(ok(out))
}

pub async fn list(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(query.as_deref());
    let listing = state
        .jobs
        .list_jobs(ListJobsQuery {
            status: p
                .string("status")
                .map(|s| JobStatus::parse(&s))
                .transpose()
                .map_err(|e| ApiError::invalid_request(e.0))?,
            target_selection: p
                .string("targetSelection")
                .map(|s| TargetSelection::parse(&s))
                .transpose()
                .map_err(|e| ApiError::invalid_request(e.0))?,
            thing_group_name: p.string("thingGroupName"),
            thing_group_id: p.string("thingGroupId"),
            namespace_id: p.string("namespaceId"),
            next_token: p.string("nextToken"),
            max_results: p.i64("maxResults")?,
        })
        .await?;
    let jobs: Vec<Value> = listing
        .items
        .iter()
        .map(|j| {
            json!({
                "jobArn": state.jobs.job_arn(&j.job_id),
                "jobId": j.job_id,
                "targetSelection": j.target_selection.as_str(),
                "status": j.status.as_str(),
                "createdAt": timestamp(j.created_at),
                "lastUpdatedAt": timestamp(j.last_updated_at),
                "completedAt": j.completed_at.map(timestamp),
                "isConcurrent": false,
            })
        })
        .collect();
    Ok(ok(json!({"jobs": jobs, "nextToken": listing.next_token})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateJobBody {
    description: Option<String>,
    presigned_url_config: Option<PresignedUrlConfig>,
    job_executions_rollout_config: Option<RolloutConfig>,
    abort_config: Option<AbortConfig>,
    timeout_config: Option<TimeoutConfig>,
    job_executions_retry_config: Option<RetryConfig>,
}

pub async fn update(
    State(state): State<ApiState>,
    Path(job_id): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let b: UpdateJobBody = body(&bytes)?;
    state
        .jobs
        .update_job(
            &job_id,
            UpdateJobRequest {
                description: b.description,
                presigned_url_config: b.presigned_url_config,
                rollout: b.job_executions_rollout_config,
                abort: b.abort_config,
                timeout: b.timeout_config,
                retry: b.job_executions_retry_config,
            },
        )
        .await?;
    Ok(empty())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelJobBody {
    reason_code: Option<String>,
    comment: Option<String>,
}

pub async fn cancel(
    State(state): State<ApiState>,
    Path(job_id): Path<String>,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let force = Params::parse(query.as_deref())
        .bool("force")?
        .unwrap_or(false);
    let b: CancelJobBody = body(&bytes)?;
    let job = state
        .jobs
        .cancel_job(&job_id, force, b.reason_code, b.comment)
        .await?;
    Ok(ok(json!({
        "jobArn": state.jobs.job_arn(&job.job_id),
        "jobId": job.job_id,
        "description": job.description,
    })))
}

pub async fn delete(
    State(state): State<ApiState>,
    Path(job_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let force = Params::parse(query.as_deref())
        .bool("force")?
        .unwrap_or(false);
    state.jobs.delete_job(&job_id, force).await?;
    Ok(empty())
}

pub async fn document(
    State(state): State<ApiState>,
    Path(job_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let before = Params::parse(query.as_deref())
        .bool("beforeSubstitution")?
        .unwrap_or(false);
    let document = state.jobs.get_job_document(&job_id, before).await?;
    Ok(ok(json!({ "document": document })))
}

fn summary_json(e: &JobExecution) -> Value {
    json!({
        "status": e.status.as_str(),
        "queuedAt": timestamp(e.queued_at),
        "startedAt": e.started_at.map(timestamp),
        "lastUpdatedAt": timestamp(e.last_updated_at),
        "executionNumber": e.execution_number,
        "retryAttempt": e.retry_attempt,
    })
}

fn execution_json(state: &ApiState, e: &JobExecution) -> Value {
    let now = drover_core::time::Timestamp(
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000,
    );
    json!({
        "jobId": e.job_id,
        "status": e.status.as_str(),
        "forceCanceled": e.force_canceled,
        "statusDetails": {"detailsMap": e.status_details},
        "thingArn": state.registry.scope().thing(&e.thing_name),
        "queuedAt": timestamp(e.queued_at),
        "startedAt": e.started_at.map(timestamp),
        "lastUpdatedAt": timestamp(e.last_updated_at),
        "executionNumber": e.execution_number,
        "versionNumber": e.version_number,
        "approximateSecondsBeforeTimedOut": e.seconds_before_timed_out(now),
    })
}

fn status_param(p: &Params) -> Result<Option<ExecutionStatus>, ApiError> {
    p.string("status")
        .map(|s| ExecutionStatus::parse(&s))
        .transpose()
        .map_err(|e| ApiError::invalid_request(e.0))
}

pub async fn list_executions_for_job(
    State(state): State<ApiState>,
    Path(job_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(query.as_deref());
    let listing = state
        .jobs
        .list_job_executions_for_job(
            &job_id,
            status_param(&p)?,
            p.string("nextToken").as_deref(),
            p.i64("maxResults")?,
        )
        .await?;
    let items: Vec<Value> = listing
        .items
        .iter()
        .map(|e| {
            json!({
                "thingArn": state.registry.scope().thing(&e.thing_name),
                "jobExecutionSummary": summary_json(e),
            })
        })
        .collect();
    Ok(ok(
        json!({"executionSummaries": items, "nextToken": listing.next_token}),
    ))
}

/// `GET /things/{thing}/jobs`: ListJobExecutionsForThing, or GetPendingJobExecutions for
/// `iot-jobs-data` callers.
pub async fn thing_jobs(
    State(state): State<ApiState>,
    Path(thing): Path<String>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    if caller.service == JOBS_DATA {
        return jobs_data::http::get_pending(&state.jobs, &thing).await;
    }
    let p = Params::parse(query.as_deref());
    let listing = state
        .jobs
        .list_job_executions_for_thing(
            &thing,
            status_param(&p)?,
            p.string("jobId"),
            p.string("nextToken").as_deref(),
            p.i64("maxResults")?,
        )
        .await?;
    let items: Vec<Value> = listing
        .items
        .iter()
        .map(|e| json!({"jobId": e.job_id, "jobExecutionSummary": summary_json(e)}))
        .collect();
    Ok(ok(
        json!({"executionSummaries": items, "nextToken": listing.next_token}),
    ))
}

/// `GET /things/{thing}/jobs/{jobId}`: DescribeJobExecution on either plane.
pub async fn thing_job(
    State(state): State<ApiState>,
    Path((thing, job_id)): Path<(String, String)>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    if caller.service == JOBS_DATA {
        return jobs_data::http::describe(&state.jobs, &thing, &job_id, query.as_deref()).await;
    }
    let number = Params::parse(query.as_deref()).i64("executionNumber")?;
    let e = state
        .jobs
        .describe_job_execution(&job_id, &thing, number)
        .await?;
    Ok(ok(json!({"execution": execution_json(&state, &e)})))
}

/// `POST /things/{thing}/jobs/{jobId}`: UpdateJobExecution (jobs data plane only).
pub async fn thing_job_update(
    State(state): State<ApiState>,
    Path((thing, job_id)): Path<(String, String)>,
    Extension(caller): Extension<Caller>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    if caller.service != JOBS_DATA {
        return Err(ApiError::unknown_operation(
            "POST",
            &format!("/things/{thing}/jobs/{job_id}"),
        ));
    }
    jobs_data::http::update(&state.jobs, &thing, &job_id, &bytes).await
}

/// `PUT /things/{thing}/jobs/$next`: StartNextPendingJobExecution (jobs data plane only).
pub async fn thing_job_start_next(
    State(state): State<ApiState>,
    Path((thing, job_id)): Path<(String, String)>,
    Extension(caller): Extension<Caller>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    if caller.service != JOBS_DATA || job_id != "$next" {
        return Err(ApiError::unknown_operation(
            "PUT",
            &format!("/things/{thing}/jobs/{job_id}"),
        ));
    }
    jobs_data::http::start_next(&state.jobs, &thing, &bytes).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelExecutionBody {
    expected_version: Option<i64>,
    status_details: Option<StatusDetails>,
}

pub async fn cancel_execution(
    State(state): State<ApiState>,
    Path((thing, job_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let force = Params::parse(query.as_deref())
        .bool("force")?
        .unwrap_or(false);
    let b: CancelExecutionBody = body(&bytes)?;
    state
        .jobs
        .cancel_job_execution(&job_id, &thing, force, b.expected_version, b.status_details)
        .await?;
    Ok(empty())
}

pub async fn delete_execution(
    State(state): State<ApiState>,
    Path((thing, job_id, number)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let force = Params::parse(query.as_deref())
        .bool("force")?
        .unwrap_or(false);
    let number: i64 = number
        .parse()
        .map_err(|_| ApiError::invalid_request("executionNumber must be an integer"))?;
    state
        .jobs
        .delete_job_execution(&job_id, &thing, number, force)
        .await?;
    Ok(empty())
}

// ---- job templates -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateTemplateBody {
    job_arn: Option<String>,
    document_source: Option<String>,
    document: Option<String>,
    description: Option<String>,
    presigned_url_config: Option<PresignedUrlConfig>,
    job_executions_rollout_config: Option<RolloutConfig>,
    abort_config: Option<AbortConfig>,
    timeout_config: Option<TimeoutConfig>,
    tags: Option<Vec<WireTag>>,
    job_executions_retry_config: Option<RetryConfig>,
    maintenance_windows: Option<Vec<MaintenanceWindow>>,
}

pub async fn create_template(
    State(state): State<ApiState>,
    Path(template_id): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let b: CreateTemplateBody = body(&bytes)?;
    let description = b
        .description
        .ok_or_else(|| ApiError::invalid_request("description is required"))?;
    let template = state
        .jobs
        .create_job_template(CreateJobTemplateRequest {
            template_id,
            description,
            document: b.document,
            document_source: b.document_source,
            job_arn: b.job_arn,
            config: JobConfig {
                presigned_url_config: b.presigned_url_config,
                job_executions_rollout_config: b.job_executions_rollout_config,
                abort_config: b.abort_config,
                timeout_config: b.timeout_config,
                job_executions_retry_config: b.job_executions_retry_config,
                scheduling_config: None,
            },
            maintenance_windows: b.maintenance_windows.unwrap_or_default(),
            tags: tags(b.tags),
        })
        .await?;
    Ok(ok(json!({
        "jobTemplateArn": state.jobs.template_arn(&template.template_id),
        "jobTemplateId": template.template_id,
    })))
}

fn template_json(state: &ApiState, t: &JobTemplate) -> Value {
    let mut v = json!({
        "jobTemplateArn": state.jobs.template_arn(&t.template_id),
        "jobTemplateId": t.template_id,
        "description": t.description,
        "documentSource": t.document_source,
        "document": t.document,
        "createdAt": timestamp(t.created_at),
    });
    extend(&mut v, config_json(&t.config));
    if !t.maintenance_windows.is_empty() {
        v["maintenanceWindows"] = json!(t.maintenance_windows);
    }
    v
}

pub async fn describe_template(
    State(state): State<ApiState>,
    Path(template_id): Path<String>,
) -> Result<Response, ApiError> {
    let t = state.jobs.describe_job_template(&template_id).await?;
    Ok(ok(template_json(&state, &t)))
}

pub async fn list_templates(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(query.as_deref());
    let listing = state
        .jobs
        .list_job_templates(p.string("nextToken").as_deref(), p.i64("maxResults")?)
        .await?;
    let items: Vec<Value> = listing
        .items
        .iter()
        .map(|t| {
            json!({
                "jobTemplateArn": state.jobs.template_arn(&t.template_id),
                "jobTemplateId": t.template_id,
                "description": t.description,
                "createdAt": timestamp(t.created_at),
            })
        })
        .collect();
    Ok(ok(
        json!({"jobTemplates": items, "nextToken": listing.next_token}),
    ))
}

pub async fn delete_template(
    State(state): State<ApiState>,
    Path(template_id): Path<String>,
) -> Result<Response, ApiError> {
    state.jobs.delete_job_template(&template_id).await?;
    Ok(empty())
}

// ---- event configurations ------------------------------------------------------------

#[derive(Deserialize)]
struct WireConfiguration {
    #[serde(rename = "Enabled")]
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateEventConfigurationsBody {
    event_configurations: Option<BTreeMap<String, WireConfiguration>>,
}

pub async fn update_event_configurations(
    State(state): State<ApiState>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let b: UpdateEventConfigurationsBody = body(&bytes)?;
    let changes: BTreeMap<String, bool> = b
        .event_configurations
        .unwrap_or_default()
        .into_iter()
        .map(|(k, c)| (k, c.enabled.unwrap_or(false)))
        .collect();
    state.jobs.event_configurations().update(&changes).await?;
    Ok(empty())
}

pub async fn describe_event_configurations(
    State(state): State<ApiState>,
) -> Result<Response, ApiError> {
    let s = state.jobs.event_configurations().describe().await?;
    let configs: serde_json::Map<String, Value> = s
        .enabled
        .iter()
        .map(|(k, v)| (k.clone(), json!({"Enabled": v})))
        .collect();
    Ok(ok(json!({
        "eventConfigurations": configs,
        "creationDate": s.created_at.map(timestamp),
        "lastModifiedDate": s.last_modified_at.map(timestamp),
    })))
}
