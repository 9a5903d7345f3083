//! The device's view of its jobs: what the MQTT topics (`get`, `start-next`, `{jobId}/get`,
//! `{jobId}/update`) and the `iot-jobs-data` HTTPS API (GetPendingJobExecutions,
//! StartNextPendingJobExecution, DescribeJobExecution, UpdateJobExecution) both call. A
//! caller passes the thing it has authenticated as; a device only ever names its own thing,
//! so another thing's executions are out of reach by construction.

use drover_core::jobs::pending::sorted;
use drover_core::jobs::{
    DeviceUpdate, ExecutionStatus, JobExecution, StatusDetails, TransitionError,
    apply_device_update, check_job_id, start,
};
use drover_core::names::check_name;
use drover_core::time::Timestamp;

use super::{Delivery, Jobs};
use crate::ServiceError;

/// How many times a write that lost a compare-and-swap race (to the engine or another node)
/// is recomputed before giving up; only calls without `expectedVersion` retry.
const CAS_ATTEMPTS: usize = 8;

/// Why a device request was refused; each maps to one MQTT rejection code and one
/// `iot-jobs-data` exception.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeviceError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    InvalidStateTransition {
        message: String,
        state: Option<Box<JobExecution>>,
    },
    #[error("{message}")]
    VersionMismatch {
        message: String,
        state: Box<JobExecution>,
    },
    #[error("{0}")]
    Internal(String),
}

impl From<ServiceError> for DeviceError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::InvalidRequest(m) => DeviceError::InvalidRequest(m),
            ServiceError::NotFound(m) => DeviceError::NotFound(m),
            other => DeviceError::Internal(other.to_string()),
        }
    }
}

impl From<drover_store::StoreError> for DeviceError {
    fn from(e: drover_store::StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

fn refused(e: TransitionError, current: &JobExecution) -> DeviceError {
    let state = Box::new(current.clone());
    match e {
        TransitionError::VersionMismatch { .. } => DeviceError::VersionMismatch {
            message: e.to_string(),
            state,
        },
        // AWS's jobs MQTT API answers an update of a finished execution (SUCCEEDED back to
        // IN_PROGRESS, say) with InvalidStateTransition; TerminalStateReached is for describes.
        TransitionError::TerminalState(_) | TransitionError::InvalidTransition { .. } => {
            DeviceError::InvalidStateTransition {
                message: e.to_string(),
                state: Some(state),
            }
        }
        TransitionError::InvalidRequest(m) => DeviceError::InvalidRequest(m),
    }
}

/// GetPendingJobExecutions.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingJobs {
    pub in_progress: Vec<JobExecution>,
    pub queued: Vec<JobExecution>,
    pub at: Timestamp,
}

/// UpdateJobExecution's input beyond the change itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceUpdateRequest {
    pub update: DeviceUpdate,
    pub execution_number: Option<i64>,
    pub include_job_execution_state: bool,
    pub include_job_document: bool,
}

/// UpdateJobExecution's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The execution after the update (rendered only when the device asked for it).
    pub state: JobExecution,
    pub document: Option<String>,
    pub at: Timestamp,
}

fn check_thing(thing: &str) -> Result<(), DeviceError> {
    check_name("thingName", thing).map_err(|e| DeviceError::InvalidRequest(e.0))
}

impl Jobs {
    /// Whether a device may use `thing`'s jobs: its client id names the thing, or its
    /// certificate is attached to the thing (AWS's samples connect with a fixed client id
    /// such as `basicJobsSampleClient` and name the thing only in the topic). The broker has
    /// already applied the device's policies to the topic.
    pub async fn device_may_use(
        &self,
        thing: &str,
        client_id: &str,
        certificate_id: &str,
    ) -> Result<bool, DeviceError> {
        if thing == client_id {
            return Ok(true);
        }
        Ok(self
            .inner
            .store
            .get_thing_principal(thing, certificate_id)
            .await?
            .is_some())
    }

    /// The thing's QUEUED and IN_PROGRESS executions, each in AWS's order.
    pub async fn get_pending_job_executions(
        &self,
        thing: &str,
    ) -> Result<PendingJobs, DeviceError> {
        check_thing(thing)?;
        let pending = self.pending_of(thing).await?;
        let (in_progress, queued) = pending
            .into_iter()
            .partition(|e| e.status == ExecutionStatus::InProgress);
        Ok(PendingJobs {
            in_progress,
            queued,
            at: self.now(),
        })
    }

    async fn pending_of(&self, thing: &str) -> Result<Vec<JobExecution>, DeviceError> {
        Ok(sorted(
            self.inner
                .store
                .pending_executions(&[thing.to_string()])
                .await?,
        ))
    }

    /// StartNextPendingJobExecution / `start-next`: the first pending execution, started if
    /// it was QUEUED; `None` when nothing is pending.
    pub async fn start_next_pending_job_execution(
        &self,
        thing: &str,
        status_details: Option<StatusDetails>,
        step_timeout_in_minutes: Option<i64>,
    ) -> Result<Option<Delivery>, DeviceError> {
        check_thing(thing)?;
        for _ in 0..CAS_ATTEMPTS {
            let Some(first) = self.pending_of(thing).await?.into_iter().next() else {
                return Ok(None);
            };
            let job = self.cached_job(&first.job_id).await?;
            let timeout = job.as_ref().and_then(|j| j.in_progress_timeout_minutes());
            let started = start(
                &first,
                status_details.as_ref(),
                step_timeout_in_minutes,
                timeout,
                self.now(),
            )
            .map_err(|e| refused(e, &first))?;
            let execution = match started {
                None => first,
                Some(next) => {
                    if !self.commit_execution(&first, &next).await? {
                        continue;
                    }
                    next
                }
            };
            let document = Some(self.document_for(&execution).await?);
            return Ok(Some(Delivery {
                execution,
                document,
                at: self.now(),
            }));
        }
        Err(DeviceError::Internal(
            "the job execution kept changing; try again".into(),
        ))
    }

    /// DescribeJobExecution / `{jobId}/get`. `job_id` may be `$next` (the first pending
    /// execution, unchanged; `None` when nothing is pending).
    pub async fn describe_job_execution_for_device(
        &self,
        thing: &str,
        job_id: &str,
        execution_number: Option<i64>,
        include_document: bool,
    ) -> Result<Option<Delivery>, DeviceError> {
        check_thing(thing)?;
        let execution = if job_id == "$next" {
            match self.pending_of(thing).await?.into_iter().next() {
                Some(e) => e,
                None => return Ok(None),
            }
        } else {
            check_job_id("jobId", job_id).map_err(|e| DeviceError::InvalidRequest(e.0))?;
            self.inner
                .store
                .get_execution(job_id, thing, execution_number)
                .await?
                .ok_or_else(|| execution_not_found(job_id, thing))?
        };
        let document = if include_document {
            Some(self.document_for(&execution).await?)
        } else {
            None
        };
        Ok(Some(Delivery {
            execution,
            document,
            at: self.now(),
        }))
    }

    /// UpdateJobExecution / `{jobId}/update`.
    pub async fn update_job_execution(
        &self,
        thing: &str,
        job_id: &str,
        request: &DeviceUpdateRequest,
    ) -> Result<UpdateOutcome, DeviceError> {
        check_thing(thing)?;
        check_job_id("jobId", job_id).map_err(|e| DeviceError::InvalidRequest(e.0))?;
        for _ in 0..CAS_ATTEMPTS {
            let current = self
                .inner
                .store
                .get_execution(job_id, thing, request.execution_number)
                .await?
                .ok_or_else(|| execution_not_found(job_id, thing))?;
            let job = self.cached_job(job_id).await?;
            let timeout = job.as_ref().and_then(|j| j.in_progress_timeout_minutes());
            let next = apply_device_update(&current, &request.update, timeout, self.now())
                .map_err(|e| refused(e, &current))?;
            if !self.commit_execution(&current, &next).await? {
                if request.update.expected_version.is_some() {
                    // The version the device expected was current when read and is not now.
                    let latest = self
                        .inner
                        .store
                        .get_execution(job_id, thing, Some(current.execution_number))
                        .await?
                        .unwrap_or(current);
                    return Err(DeviceError::VersionMismatch {
                        message: "the job execution changed concurrently".into(),
                        state: Box::new(latest),
                    });
                }
                continue;
            }
            let document = if request.include_job_document {
                Some(self.document_for(&next).await?)
            } else {
                None
            };
            return Ok(UpdateOutcome {
                state: next,
                document,
                at: self.now(),
            });
        }
        Err(DeviceError::Internal(
            "the job execution kept changing; try again".into(),
        ))
    }
}

fn execution_not_found(job_id: &str, thing: &str) -> DeviceError {
    DeviceError::NotFound(format!(
        "Job execution of job {job_id} on thing {thing} does not exist"
    ))
}
