//! The jobs service: AWS IoT Jobs' behaviour, one implementation for every path. The control
//! plane (`control.rs`), the device API that MQTT and HTTPS share (`device.rs`) and the
//! engine that drives rollouts, schedules, timers, retries, aborts and CONTINUOUS targeting
//! (`engine.rs`) all change executions through the same few functions here, which also
//! decide the notifications and events each change causes (`notify.rs`).
//!
//! Transports never publish: they install a [`JobPublisher`] that renders
//! [`JobNotification`]s onto their wire (the MQTT `notify`/`notify-next` topics and
//! `$aws/events/...`). Presigned-URL placeholders in documents are filled at each delivery by
//! the installed [`DocumentPresigner`].

mod control;
mod device;
mod engine;
mod notify;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use drover_core::arn::ArnScope;
use drover_core::jobs::pending::sorted;
use drover_core::jobs::{ExecutionStatus, Job, JobExecution};
use drover_core::time::Timestamp;
use drover_store::{CasOutcome, SharedStore};
use tokio::sync::Notify;

use crate::event_configurations::EventConfigurations;
use crate::{Clock, Registry, ServiceError, ServiceResult};

pub use control::*;
pub use device::*;
pub use notify::*;

/// Renders and sends what the jobs service announces. Called in the order changes happen;
/// implementations must not block (queue and return).
pub trait JobPublisher: Send + Sync + 'static {
    fn publish(&self, notification: JobNotification);
}

/// Fills a document's `${aws:iot:s3-presigned-url:...}` placeholders for one delivery.
pub trait DocumentPresigner: Send + Sync + 'static {
    fn presign(
        &self,
        document: &str,
        thing: &str,
        expires_in_sec: Option<i64>,
        now: Timestamp,
    ) -> Result<String, String>;
}

/// Reads a CreateJob `documentSource` (an `s3://` or S3-style URL in drover's artifact
/// store, or any http(s) URL).
pub trait DocumentFetcher: Send + Sync + 'static {
    fn fetch(
        &self,
        url: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + '_>>;
}

struct Discard;

impl JobPublisher for Discard {
    fn publish(&self, _: JobNotification) {}
}

/// The jobs service. Cheap to clone; every clone is the same service.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    store: SharedStore,
    scope: ArnScope,
    clock: Arc<dyn Clock>,
    registry: Registry,
    events: EventConfigurations,
    publisher: RwLock<Arc<dyn JobPublisher>>,
    presigner: RwLock<Option<Arc<dyn DocumentPresigner>>>,
    fetcher: RwLock<Option<Arc<dyn DocumentFetcher>>>,
    /// Jobs by id as last read or written on this node: devices' paths read a job's
    /// configuration and document on every call, and they change rarely.
    cache: Mutex<HashMap<String, Arc<Job>>>,
    /// Jobs whose executions changed since the engine last looked (abort and completion).
    touched: Mutex<HashSet<String>>,
    wake: Notify,
}

impl Jobs {
    pub fn new(
        store: SharedStore,
        registry: Registry,
        clock: Arc<dyn Clock>,
        events: EventConfigurations,
    ) -> Self {
        Jobs {
            inner: Arc::new(Inner {
                scope: registry.scope().clone(),
                store,
                clock,
                registry,
                events,
                publisher: RwLock::new(Arc::new(Discard)),
                presigner: RwLock::default(),
                fetcher: RwLock::default(),
                cache: Mutex::default(),
                touched: Mutex::default(),
                wake: Notify::new(),
            }),
        }
    }

    /// Where notifications and events go (the server installs the broker's publisher).
    pub fn set_publisher(&self, publisher: Arc<dyn JobPublisher>) {
        *self.inner.publisher.write().expect("publisher lock") = publisher;
    }

    pub fn set_presigner(&self, presigner: Arc<dyn DocumentPresigner>) {
        *self.inner.presigner.write().expect("presigner lock") = Some(presigner);
    }

    pub fn set_fetcher(&self, fetcher: Arc<dyn DocumentFetcher>) {
        *self.inner.fetcher.write().expect("fetcher lock") = Some(fetcher);
    }

    pub fn scope(&self) -> &ArnScope {
        &self.inner.scope
    }

    pub fn event_configurations(&self) -> &EventConfigurations {
        &self.inner.events
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    fn publish(&self, notification: JobNotification) {
        let publisher = self.inner.publisher.read().expect("publisher lock").clone();
        publisher.publish(notification);
    }

    /// The job's ARN.
    pub fn job_arn(&self, job_id: &str) -> String {
        format!(
            "arn:aws:iot:{}:{}:job/{job_id}",
            self.inner.scope.region, self.inner.scope.account_id
        )
    }

    pub fn template_arn(&self, template_id: &str) -> String {
        format!(
            "arn:aws:iot:{}:{}:jobtemplate/{template_id}",
            self.inner.scope.region, self.inner.scope.account_id
        )
    }

    /// The job, from this node's cache when it has it.
    async fn cached_job(&self, job_id: &str) -> ServiceResult<Option<Arc<Job>>> {
        if let Some(job) = self.inner.cache.lock().expect("cache lock").get(job_id) {
            return Ok(Some(job.clone()));
        }
        let job = self.inner.store.get_job(job_id).await?.map(Arc::new);
        if let Some(job) = &job {
            self.remember(job.clone());
        }
        Ok(job)
    }

    fn remember(&self, job: Arc<Job>) {
        let mut cache = self.inner.cache.lock().expect("cache lock");
        // A bound for fleets with many finished jobs: dropping everything is cheap to refill.
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(job.job_id.clone(), job);
    }

    fn forget(&self, job_id: &str) {
        self.inner.cache.lock().expect("cache lock").remove(job_id);
    }

    /// The job read fresh from the store (counters change with every execution).
    async fn fresh_job(&self, job_id: &str) -> ServiceResult<Job> {
        let job = self
            .inner
            .store
            .get_job(job_id)
            .await?
            .ok_or_else(|| job_not_found(job_id))?;
        self.remember(Arc::new(job.clone()));
        Ok(job)
    }

    /// Writes a job change (compare-and-swap on its version) and refreshes the cache.
    async fn write_job(&self, next: &Job, expected_version: i64) -> ServiceResult<bool> {
        match self.inner.store.replace_job(next, expected_version).await? {
            CasOutcome::Done => {
                self.remember(Arc::new(next.clone()));
                Ok(true)
            }
            CasOutcome::NotFound => Err(job_not_found(&next.job_id)),
            CasOutcome::VersionMismatch => {
                self.forget(&next.job_id);
                Ok(false)
            }
        }
    }

    fn touch(&self, job_id: &str) {
        self.inner
            .touched
            .lock()
            .expect("touched lock")
            .insert(job_id.to_string());
        self.inner.wake.notify_one();
    }

    /// The document a device receives for `execution`: presigned-URL placeholders filled for
    /// its thing, now.
    async fn document_for(&self, execution: &JobExecution) -> ServiceResult<String> {
        let job = self
            .cached_job(&execution.job_id)
            .await?
            .ok_or_else(|| job_not_found(&execution.job_id))?;
        if !job.document.contains("${") {
            return Ok(job.document.clone());
        }
        let presigner = self.inner.presigner.read().expect("presigner lock").clone();
        let Some(presigner) = presigner else {
            return Ok(job.document.clone());
        };
        let expires = job
            .config
            .presigned_url_config
            .as_ref()
            .and_then(|p| p.expires_in_sec);
        presigner
            .presign(&job.document, &execution.thing_name, expires, self.now())
            .map_err(|e| {
                tracing::error!(job = %job.job_id, error = %e, "presigning a job document failed");
                ServiceError::Internal(format!("presigning the job document failed: {e}"))
            })
    }

    /// Writes one execution change (compare-and-swap) and then announces it: notifications,
    /// events and a nudge to the engine. A FAILED or TIMED_OUT change that the job's retry
    /// configuration retries queues the next execution number in the same write.
    /// Returns `false` when the stored version moved.
    async fn commit_execution(
        &self,
        before: &JobExecution,
        after: &JobExecution,
    ) -> ServiceResult<bool> {
        let ended = before.status != after.status && after.status.is_terminal();
        let retry = if ended {
            self.retry_for(after).await?
        } else {
            None
        };
        let written = self
            .inner
            .store
            .update_execution(after, before.version_number, retry.as_ref())
            .await?;
        match written.outcome {
            CasOutcome::Done => {}
            CasOutcome::VersionMismatch => return Ok(false),
            CasOutcome::NotFound => {
                return Err(ServiceError::NotFound(format!(
                    "Job execution {} of thing {} does not exist",
                    after.job_id, after.thing_name
                )));
            }
        }
        let pending = sorted(written.pending);
        match retry.filter(|_| written.retried) {
            Some(next) => {
                // Announced as two changes, as they would have been one after the other: the
                // ended execution leaves the pending list, then its retry joins it.
                let without_retry: Vec<JobExecution> = pending
                    .iter()
                    .filter(|e| {
                        e.execution_number != next.execution_number || e.job_id != next.job_id
                    })
                    .cloned()
                    .collect();
                self.announce_with(&after.thing_name, &without_retry, Some(before), after)
                    .await?;
                self.execution_event(after).await;
                self.announce_with(&next.thing_name, &pending, None, &next)
                    .await?;
            }
            None => {
                self.announce_with(&after.thing_name, &pending, Some(before), after)
                    .await?;
                if ended {
                    self.execution_event(after).await;
                }
            }
        }
        self.touch(&after.job_id);
        Ok(true)
    }

    /// The execution that retries `ended`, when the job's retry configuration asks for one.
    async fn retry_for(&self, ended: &JobExecution) -> ServiceResult<Option<JobExecution>> {
        if !matches!(
            ended.status,
            ExecutionStatus::Failed | ExecutionStatus::TimedOut
        ) {
            return Ok(None);
        }
        let Some(job) = self.cached_job(&ended.job_id).await? else {
            return Ok(None);
        };
        if job.status.is_final() || !job.retry_after(ended.status, ended.retry_attempt) {
            return Ok(None);
        }
        Ok(Some(drover_core::jobs::retry(ended, self.now())))
    }

    /// Queues the retry an already-ended execution is owed but lacks (the engine's sweep after
    /// a restart, for executions that ended before retries were written with them).
    async fn maybe_retry(&self, ended: &JobExecution) -> ServiceResult<()> {
        let Some(next) = self.retry_for(ended).await? else {
            return Ok(());
        };
        match self.inner.store.insert_execution(&next).await {
            Ok(()) => self.announce(&next.thing_name, None, &next).await,
            // Another node (or an earlier attempt) queued it already.
            Err(drover_store::StoreError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

pub(crate) fn job_not_found(job_id: &str) -> ServiceError {
    ServiceError::NotFound(format!("Job {job_id} does not exist"))
}
