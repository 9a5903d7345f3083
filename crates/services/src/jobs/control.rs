//! The jobs control plane: CreateJob, DescribeJob, ListJobs, UpdateJob, CancelJob, DeleteJob,
//! GetJobDocument, DescribeJobExecution, ListJobExecutionsForJob/ForThing,
//! CancelJobExecution, DeleteJobExecution and the job templates. Validation happens before
//! any write; a job's executions are created by its rollout (`engine.rs`), the first batch
//! right here so a small job's devices find their work as soon as CreateJob returns.

use std::collections::{BTreeMap, BTreeSet};

use drover_core::arn::ResourceKind;
use drover_core::jobs::{
    ExecutionStatus, Job, JobConfig, JobExecution, JobStatus, JobTemplate, MAX_DOCUMENT_SOURCE_LEN,
    MAX_TARGET_LEN, MAX_TARGETS, MaintenanceWindow, PresignedUrlConfig, RetryConfig, RolloutConfig,
    StatusDetails, TargetSelection, TimeoutConfig, check_job_id, check_job_text, check_reason_code,
    document, schedule,
};
use drover_core::names::{check_name, check_tag};
use drover_core::registry::Tag;
use drover_store::{ExecutionFilter, JobFilter, PageRequest, StoreError};

use super::{JobEventKind, Jobs, job_not_found};
use crate::pagination;
use crate::registry::Listing;
use crate::{ServiceError, ServiceResult};

/// Executions changed per transaction when a job is canceled or deleted.
const BULK: usize = 1_000;

/// CreateJob's input.
#[derive(Debug, Clone, Default)]
pub struct CreateJobRequest {
    pub job_id: String,
    pub targets: Vec<String>,
    pub document: Option<String>,
    pub document_source: Option<String>,
    pub description: Option<String>,
    pub target_selection: Option<TargetSelection>,
    pub config: JobConfig,
    pub tags: Vec<Tag>,
    pub namespace_id: Option<String>,
    pub job_template_arn: Option<String>,
    pub document_parameters: BTreeMap<String, String>,
}

/// UpdateJob's input: each given part replaces the job's.
#[derive(Debug, Clone, Default)]
pub struct UpdateJobRequest {
    pub description: Option<String>,
    pub presigned_url_config: Option<PresignedUrlConfig>,
    pub rollout: Option<RolloutConfig>,
    pub abort: Option<drover_core::jobs::AbortConfig>,
    pub timeout: Option<TimeoutConfig>,
    pub retry: Option<RetryConfig>,
}

/// ListJobs' input.
#[derive(Debug, Clone, Default)]
pub struct ListJobsQuery {
    pub status: Option<JobStatus>,
    pub target_selection: Option<TargetSelection>,
    pub thing_group_name: Option<String>,
    pub thing_group_id: Option<String>,
    pub namespace_id: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

/// CreateJobTemplate's input.
#[derive(Debug, Clone, Default)]
pub struct CreateJobTemplateRequest {
    pub template_id: String,
    pub description: String,
    pub document: Option<String>,
    pub document_source: Option<String>,
    pub job_arn: Option<String>,
    pub config: JobConfig,
    pub maintenance_windows: Vec<MaintenanceWindow>,
    pub tags: Vec<Tag>,
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::InvalidRequest(message.into())
}

impl Jobs {
    /// CreateJob. Returns the stored job.
    pub async fn create_job(&self, request: CreateJobRequest) -> ServiceResult<Job> {
        check_job_id("jobId", &request.job_id)?;
        if request.targets.is_empty() || request.targets.len() > MAX_TARGETS {
            return Err(invalid(format!(
                "targets must list between 1 and {MAX_TARGETS} thing or thing group ARNs"
            )));
        }
        if request.targets.iter().any(|t| t.len() > MAX_TARGET_LEN) {
            return Err(invalid(format!(
                "each target ARN must be at most {MAX_TARGET_LEN} characters"
            )));
        }
        if let Some(d) = &request.description {
            check_job_text("description", d)?;
        }
        for tag in &request.tags {
            check_tag(&tag.key, &tag.value)?;
        }
        if let Some(ns) = &request.namespace_id
            && !ns
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid("namespaceId must match [a-zA-Z0-9_-]+"));
        }
        let mut config = request.config.clone();
        let mut document_text = request.document.clone();
        let mut document_source = request.document_source.clone();
        if let Some(arn) = &request.job_template_arn {
            let template = self.template_by_arn(arn).await?;
            if document_text.is_some() || document_source.is_some() {
                return Err(invalid(
                    "A job created from a template takes the template's document; omit document and documentSource",
                ));
            }
            document_text = template.document.clone();
            document_source = template.document_source.clone();
            merge_config(&mut config, &template.config);
        } else if !request.document_parameters.is_empty() {
            return Err(invalid(
                "documentParameters can only be used with a jobTemplateArn",
            ));
        }
        config.validate()?;
        let now = self.now();
        let schedule = match &config.scheduling_config {
            Some(s) => schedule::check(s, now)?,
            None => schedule::Schedule::default(),
        };
        let raw = self
            .resolve_document(document_text, document_source.as_deref())
            .await?;
        let (final_document, before) = if document::parameter_names(&raw)?.is_empty()
            && request.document_parameters.is_empty()
        {
            document::check(&raw)?;
            (raw, None)
        } else {
            let substituted = document::substitute_parameters(&raw, &request.document_parameters)?;
            (substituted, Some(raw))
        };
        let things = self.resolve_targets(&request.targets).await?;
        let job = Job {
            job_id: request.job_id.clone(),
            status: if schedule.start.is_some() {
                JobStatus::Scheduled
            } else {
                JobStatus::InProgress
            },
            target_selection: request.target_selection.unwrap_or_default(),
            targets: request.targets.clone(),
            document: final_document,
            document_before_substitution: before,
            document_source,
            description: request.description.clone(),
            config,
            document_parameters: request.document_parameters.clone(),
            job_template_arn: request.job_template_arn.clone(),
            namespace_id: request.namespace_id.clone(),
            tags: request.tags.clone(),
            force_canceled: false,
            reason_code: None,
            comment: None,
            created_at: now,
            last_updated_at: now,
            completed_at: None,
            version: 1,
            process: Default::default(),
        };
        match self.inner.store.insert_job(&job, &things).await {
            Ok(()) => {}
            Err(StoreError::AlreadyExists(_)) => {
                return Err(ServiceError::AlreadyExists {
                    message: format!("Job {} already exists", job.job_id),
                    resource_id: job.job_id.clone(),
                    resource_arn: self.job_arn(&job.job_id),
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.remember(std::sync::Arc::new(job.clone()));
        if job.status == JobStatus::InProgress {
            self.roll_out(&job, Some(drover_store::EXECUTION_BATCH))
                .await?;
        }
        self.touch(&job.job_id);
        Ok(job)
    }

    async fn resolve_document(
        &self,
        document: Option<String>,
        source: Option<&str>,
    ) -> ServiceResult<String> {
        match (document, source) {
            (Some(d), None) => Ok(d),
            (None, Some(url)) => {
                if url.is_empty() || url.len() > MAX_DOCUMENT_SOURCE_LEN {
                    return Err(invalid(format!(
                        "documentSource must have length between 1 and {MAX_DOCUMENT_SOURCE_LEN}"
                    )));
                }
                let fetcher = self.inner.fetcher.read().expect("fetcher lock").clone();
                let fetcher = fetcher.ok_or_else(|| {
                    invalid("documentSource cannot be read: this server has no artifact store")
                })?;
                fetcher
                    .fetch(url)
                    .await
                    .map_err(|e| invalid(format!("documentSource {url} cannot be read: {e}")))
            }
            (Some(_), Some(_)) => Err(invalid(
                "Specify either document or documentSource, not both",
            )),
            (None, None) => Err(invalid(
                "A job needs a document, a documentSource or a jobTemplateArn",
            )),
        }
    }

    /// The things `targets` name today: things themselves and the members of thing groups
    /// and their descendants, without duplicates, in name order.
    pub(crate) async fn resolve_targets(&self, targets: &[String]) -> ServiceResult<Vec<String>> {
        let scope = &self.inner.scope;
        let mut things = BTreeSet::new();
        for target in targets {
            if let Some(thing) = scope.parse(ResourceKind::Thing, target) {
                if self.inner.store.get_thing(thing).await?.is_none() {
                    return Err(ServiceError::NotFound(format!(
                        "Thing {thing} cannot be found"
                    )));
                }
                things.insert(thing.to_string());
            } else if let Some(group) = scope.parse(ResourceKind::ThingGroup, target) {
                things.extend(self.group_things(group).await?);
            } else {
                return Err(invalid(format!(
                    "Target {target} is not a thing or thing group ARN of this account and region"
                )));
            }
        }
        Ok(things.into_iter().collect())
    }

    /// Every thing in `group` and its descendants; `NotFound` when the group does not exist.
    pub(crate) async fn group_things(&self, group: &str) -> ServiceResult<Vec<String>> {
        if self.inner.store.get_thing_group(group).await?.is_none() {
            return Err(ServiceError::NotFound(format!(
                "Thing group {group} cannot be found"
            )));
        }
        let mut groups = vec![group.to_string()];
        groups.extend(self.inner.registry.descendants(group).await?);
        let mut things = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .inner
                .store
                .list_things_in_groups(
                    &groups,
                    &PageRequest {
                        after,
                        limit: 10_000,
                    },
                )
                .await?;
            things.extend(page.items);
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(things),
            }
        }
    }

    /// DescribeJob.
    pub async fn describe_job(&self, job_id: &str) -> ServiceResult<Job> {
        check_job_id("jobId", job_id)?;
        self.fresh_job(job_id).await
    }

    /// AWS's `scheduledJobRollouts`: the start times (`YYYY-MM-DDTHH:MM`, UTC) of the next
    /// seven maintenance windows of a job that is still to roll out, from its start time or
    /// now, whichever is later. Empty without windows, and once the job is canceled or done.
    pub fn scheduled_job_rollouts(&self, job: &Job) -> Vec<String> {
        if !matches!(job.status, JobStatus::Scheduled | JobStatus::InProgress) {
            return Vec::new();
        }
        let config = job.config.scheduling_config.as_ref();
        let when = schedule::stored(config);
        let from = when.start.map_or(self.now(), |start| start.max(self.now()));
        schedule::next_windows(config, from, 7)
            .into_iter()
            .filter(|t| when.end.is_none_or(|end| *t < end))
            .map(schedule::format_time)
            .collect()
    }

    /// How many targeted things the rollout has not notified yet.
    pub async fn pending_targets(&self, job_id: &str) -> ServiceResult<i64> {
        Ok(self.inner.store.count_pending_things(job_id).await?)
    }

    /// GetJobDocument; `before_substitution` returns the template document with its
    /// `${aws:iot:parameter:...}` placeholders.
    pub async fn get_job_document(
        &self,
        job_id: &str,
        before_substitution: bool,
    ) -> ServiceResult<String> {
        let job = self.describe_job(job_id).await?;
        Ok(
            match (before_substitution, job.document_before_substitution) {
                (true, Some(before)) => before,
                _ => job.document,
            },
        )
    }

    /// ListJobs.
    pub async fn list_jobs(&self, query: ListJobsQuery) -> ServiceResult<Listing<Job>> {
        let page = pagination::request(query.next_token.as_deref(), query.max_results)?;
        if query.thing_group_id.is_some() {
            return Err(invalid(
                "drover filters ListJobs by thingGroupName; thingGroupId is not supported",
            ));
        }
        let target = match &query.thing_group_name {
            Some(name) => {
                check_name("thingGroupName", name)?;
                Some(self.inner.scope.thing_group(name))
            }
            None => None,
        };
        let filter = JobFilter {
            status: query.status,
            target_selection: query.target_selection,
            target,
            namespace_id: query.namespace_id,
        };
        Ok(self.inner.store.list_jobs(&filter, &page).await?.into())
    }

    /// UpdateJob.
    pub async fn update_job(&self, job_id: &str, update: UpdateJobRequest) -> ServiceResult<()> {
        check_job_id("jobId", job_id)?;
        if let Some(d) = &update.description {
            check_job_text("description", d)?;
        }
        loop {
            let job = self.fresh_job(job_id).await?;
            if job.status.is_final() {
                return Err(invalid(format!(
                    "Job {job_id} is {} and cannot be updated",
                    job.status
                )));
            }
            let mut next = job.clone();
            if let Some(d) = &update.description {
                next.description = Some(d.clone());
            }
            if let Some(p) = &update.presigned_url_config {
                next.config.presigned_url_config = Some(p.clone());
            }
            if let Some(r) = &update.rollout {
                next.config.job_executions_rollout_config = Some(r.clone());
            }
            if let Some(a) = &update.abort {
                next.config.abort_config = Some(a.clone());
            }
            if let Some(t) = &update.timeout {
                next.config.timeout_config = Some(t.clone());
            }
            if let Some(r) = &update.retry {
                next.config.job_executions_retry_config = Some(r.clone());
            }
            next.config.validate()?;
            next.last_updated_at = self.now();
            next.version += 1;
            if self.write_job(&next, job.version).await? {
                self.touch(job_id);
                return Ok(());
            }
        }
    }

    /// CancelJob: QUEUED executions (and IN_PROGRESS ones with `force`) become CANCELED,
    /// things not yet notified never will be.
    pub async fn cancel_job(
        &self,
        job_id: &str,
        force: bool,
        reason_code: Option<String>,
        comment: Option<String>,
    ) -> ServiceResult<Job> {
        check_job_id("jobId", job_id)?;
        if let Some(r) = &reason_code {
            check_reason_code(r)?;
        }
        if let Some(c) = &comment {
            check_job_text("comment", c)?;
        }
        let job = loop {
            let job = self.fresh_job(job_id).await?;
            match job.status {
                JobStatus::Completed => {
                    return Err(invalid(format!(
                        "Job {job_id} is COMPLETED and cannot be canceled"
                    )));
                }
                JobStatus::DeletionInProgress => {
                    return Err(invalid(format!("Job {job_id} is being deleted")));
                }
                JobStatus::Canceled if !force || job.force_canceled => return Ok(job),
                _ => {}
            }
            let mut next = job.clone();
            next.status = JobStatus::Canceled;
            next.force_canceled = job.force_canceled || force;
            if reason_code.is_some() {
                next.reason_code = reason_code.clone();
            }
            if comment.is_some() {
                next.comment = comment.clone();
            }
            next.last_updated_at = self.now();
            next.completed_at = Some(self.now());
            next.version += 1;
            if self.write_job(&next, job.version).await? {
                break next;
            }
        };
        self.job_event(JobEventKind::CancellationInProgress, &job)
            .await;
        self.cancel_executions(&job, force).await?;
        let job = self.fresh_job(job_id).await?;
        self.job_event(JobEventKind::Canceled, &job).await;
        Ok(job)
    }

    /// Cancels a canceled job's pending executions (and drops its not-yet-notified things).
    /// Safe to repeat: the engine calls it again after a restart cut it short.
    pub(crate) async fn cancel_executions(&self, job: &Job, force: bool) -> ServiceResult<()> {
        self.inner.store.clear_pending_things(&job.job_id).await?;
        let statuses: &[ExecutionStatus] = if force {
            &[ExecutionStatus::Queued, ExecutionStatus::InProgress]
        } else {
            &[ExecutionStatus::Queued]
        };
        loop {
            let batch = self
                .inner
                .store
                .executions_in_status(&job.job_id, statuses, BULK)
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            let now = self.now();
            let updates: Vec<(JobExecution, i64)> = batch
                .iter()
                .filter_map(|e| {
                    drover_core::jobs::cancel(e, force, None, now)
                        .ok()
                        .map(|next| (next, e.version_number))
                })
                .collect();
            let outcomes = self.inner.store.update_executions(&updates).await?;
            for ((next, _), outcome) in updates.iter().zip(outcomes) {
                if outcome == drover_store::CasOutcome::Done {
                    let before = batch
                        .iter()
                        .find(|b| b.thing_name == next.thing_name)
                        .expect("every update comes from the batch");
                    self.announce(&next.thing_name, Some(before), next).await?;
                    self.execution_event(next).await;
                }
            }
        }
    }

    /// DeleteJob. Without `force` only a COMPLETED or CANCELED job can be deleted.
    pub async fn delete_job(&self, job_id: &str, force: bool) -> ServiceResult<()> {
        check_job_id("jobId", job_id)?;
        let job = loop {
            let job = self.fresh_job(job_id).await?;
            if job.status == JobStatus::DeletionInProgress {
                break job;
            }
            if !force && !matches!(job.status, JobStatus::Completed | JobStatus::Canceled) {
                return Err(ServiceError::InvalidStateTransition(format!(
                    "Job {job_id} is {}; delete it with force or cancel it first",
                    job.status
                )));
            }
            let mut next = job.clone();
            next.status = JobStatus::DeletionInProgress;
            next.last_updated_at = self.now();
            next.version += 1;
            if self.write_job(&next, job.version).await? {
                self.job_event(JobEventKind::DeletionInProgress, &next)
                    .await;
                break next;
            }
        };
        self.finish_deletion(&job).await
    }

    /// Removes a DELETION_IN_PROGRESS job and tells its devices; repeated by the engine if a
    /// restart cut it short.
    pub(crate) async fn finish_deletion(&self, job: &Job) -> ServiceResult<()> {
        let mut gone = Vec::new();
        loop {
            let batch = self
                .inner
                .store
                .executions_in_status(
                    &job.job_id,
                    &[ExecutionStatus::Queued, ExecutionStatus::InProgress],
                    BULK,
                )
                .await?;
            let more = batch.len() == BULK;
            gone.extend(batch);
            if !more || gone.len() >= 100 * BULK {
                break;
            }
        }
        self.inner.store.delete_job(&job.job_id).await?;
        self.forget(&job.job_id);
        for e in &gone {
            self.announce_gone(e).await?;
        }
        self.job_event(JobEventKind::Deleted, job).await;
        Ok(())
    }

    /// DescribeJobExecution (control plane): by number, or the thing's latest.
    pub async fn describe_job_execution(
        &self,
        job_id: &str,
        thing: &str,
        execution_number: Option<i64>,
    ) -> ServiceResult<JobExecution> {
        check_job_id("jobId", job_id)?;
        check_name("thingName", thing)?;
        self.inner
            .store
            .get_execution(job_id, thing, execution_number)
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "Job execution of job {job_id} on thing {thing} does not exist"
                ))
            })
    }

    /// ListJobExecutionsForJob: each thing's latest execution.
    pub async fn list_job_executions_for_job(
        &self,
        job_id: &str,
        status: Option<ExecutionStatus>,
        next_token: Option<&str>,
        max_results: Option<i64>,
    ) -> ServiceResult<Listing<JobExecution>> {
        check_job_id("jobId", job_id)?;
        let page = pagination::request(next_token, max_results)?;
        if self.cached_job(job_id).await?.is_none() {
            return Err(job_not_found(job_id));
        }
        Ok(self
            .inner
            .store
            .list_executions_for_job(job_id, status, &page)
            .await?
            .into())
    }

    /// ListJobExecutionsForThing: the thing's latest execution of each job.
    pub async fn list_job_executions_for_thing(
        &self,
        thing: &str,
        status: Option<ExecutionStatus>,
        job_id: Option<String>,
        next_token: Option<&str>,
        max_results: Option<i64>,
    ) -> ServiceResult<Listing<JobExecution>> {
        check_name("thingName", thing)?;
        if let Some(j) = &job_id {
            check_job_id("jobId", j)?;
        }
        let page = pagination::request(next_token, max_results)?;
        let filter = ExecutionFilter { status, job_id };
        Ok(self
            .inner
            .store
            .list_executions_for_thing(thing, &filter, &page)
            .await?
            .into())
    }

    /// CancelJobExecution: QUEUED → CANCELED, IN_PROGRESS only with `force`.
    pub async fn cancel_job_execution(
        &self,
        job_id: &str,
        thing: &str,
        force: bool,
        expected_version: Option<i64>,
        status_details: Option<StatusDetails>,
    ) -> ServiceResult<()> {
        loop {
            let current = self.describe_job_execution(job_id, thing, None).await?;
            if let Some(v) = expected_version
                && v != current.version_number
            {
                return Err(ServiceError::VersionConflict(format!(
                    "expectedVersion {v} does not match the job execution's version {}",
                    current.version_number
                )));
            }
            let next =
                drover_core::jobs::cancel(&current, force, status_details.as_ref(), self.now())
                    .map_err(|e| match e {
                        drover_core::jobs::TransitionError::InvalidRequest(m) => invalid(m),
                        other => ServiceError::InvalidStateTransition(other.to_string()),
                    })?;
            if self.commit_execution(&current, &next).await? {
                return Ok(());
            }
            if expected_version.is_some() {
                return Err(ServiceError::VersionConflict(
                    "the job execution changed concurrently".into(),
                ));
            }
        }
    }

    /// DeleteJobExecution. Without `force` only a terminal execution can be deleted.
    pub async fn delete_job_execution(
        &self,
        job_id: &str,
        thing: &str,
        execution_number: i64,
        force: bool,
    ) -> ServiceResult<()> {
        let current = self
            .describe_job_execution(job_id, thing, Some(execution_number))
            .await?;
        if !current.status.is_terminal() && !force {
            return Err(ServiceError::InvalidStateTransition(format!(
                "Job execution {job_id} on {thing} is {}; delete it with force",
                current.status
            )));
        }
        if self
            .inner
            .store
            .delete_execution(job_id, thing, execution_number)
            .await?
            && !current.status.is_terminal()
        {
            self.announce_gone(&current).await?;
        }
        self.touch(job_id);
        Ok(())
    }

    // ---- job templates ------------------------------------------------------------------

    /// CreateJobTemplate.
    pub async fn create_job_template(
        &self,
        request: CreateJobTemplateRequest,
    ) -> ServiceResult<JobTemplate> {
        check_job_id("jobTemplateId", &request.template_id)?;
        check_job_text("description", &request.description)?;
        for tag in &request.tags {
            check_tag(&tag.key, &tag.value)?;
        }
        drover_core::jobs::check_windows(&request.maintenance_windows)?;
        let mut config = request.config.clone();
        config.validate()?;
        let (document, document_source, source_job_arn) = match (
            request.document,
            request.document_source,
            request.job_arn,
        ) {
            (Some(d), None, None) => {
                if document::parameter_names(&d)?.is_empty() {
                    document::check(&d)?;
                }
                (Some(d), None, None)
            }
            (None, Some(s), None) => {
                if s.is_empty() || s.len() > MAX_DOCUMENT_SOURCE_LEN {
                    return Err(invalid(format!(
                        "documentSource must have length between 1 and {MAX_DOCUMENT_SOURCE_LEN}"
                    )));
                }
                (None, Some(s), None)
            }
            (None, None, Some(arn)) => {
                let job_id = arn
                    .rsplit_once(":job/")
                    .map(|(_, id)| id.to_string())
                    .ok_or_else(|| invalid(format!("{arn} is not a job ARN")))?;
                let job = self.describe_job(&job_id).await?;
                merge_config(&mut config, &job.config);
                (
                    Some(job.document_before_substitution.unwrap_or(job.document)),
                    None,
                    Some(arn),
                )
            }
            _ => {
                return Err(invalid(
                    "Specify exactly one of document, documentSource and jobArn",
                ));
            }
        };
        let template = JobTemplate {
            template_id: request.template_id.clone(),
            description: request.description,
            document,
            document_source,
            config,
            maintenance_windows: request.maintenance_windows,
            source_job_arn,
            tags: request.tags,
            created_at: self.now(),
        };
        match self.inner.store.insert_job_template(&template).await {
            Ok(()) => Ok(template),
            // CreateJobTemplate's model names ConflictException, not ResourceAlreadyExists.
            Err(StoreError::AlreadyExists(_)) => Err(ServiceError::Conflict(format!(
                "Job template {} already exists",
                template.template_id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn describe_job_template(&self, template_id: &str) -> ServiceResult<JobTemplate> {
        check_job_id("jobTemplateId", template_id)?;
        self.inner
            .store
            .get_job_template(template_id)
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!("Job template {template_id} does not exist"))
            })
    }

    pub async fn list_job_templates(
        &self,
        next_token: Option<&str>,
        max_results: Option<i64>,
    ) -> ServiceResult<Listing<JobTemplate>> {
        let page = pagination::request(next_token, max_results)?;
        Ok(self.inner.store.list_job_templates(&page).await?.into())
    }

    pub async fn delete_job_template(&self, template_id: &str) -> ServiceResult<()> {
        check_job_id("jobTemplateId", template_id)?;
        if self.inner.store.delete_job_template(template_id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "Job template {template_id} does not exist"
            )))
        }
    }

    async fn template_by_arn(&self, arn: &str) -> ServiceResult<JobTemplate> {
        let id = arn
            .rsplit_once(":jobtemplate/")
            .map(|(_, id)| id)
            .ok_or_else(|| invalid(format!("{arn} is not a job template ARN")))?;
        self.describe_job_template(id).await
    }
}

/// Fills the parts of `config` that are absent from a template's (or job's) configuration.
fn merge_config(config: &mut JobConfig, from: &JobConfig) {
    if config.presigned_url_config.is_none() {
        config.presigned_url_config = from.presigned_url_config.clone();
    }
    if config.job_executions_rollout_config.is_none() {
        config.job_executions_rollout_config = from.job_executions_rollout_config.clone();
    }
    if config.abort_config.is_none() {
        config.abort_config = from.abort_config.clone();
    }
    if config.timeout_config.is_none() {
        config.timeout_config = from.timeout_config.clone();
    }
    if config.job_executions_retry_config.is_none() {
        config.job_executions_retry_config = from.job_executions_retry_config.clone();
    }
}
