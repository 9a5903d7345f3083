//! The jobs MQTT API: `$aws/things/{thing}/jobs/get`, `start-next`, `{jobId}/get` and
//! `{jobId}/update`, answered on `<request topic>/accepted` or `/rejected` with AWS's payloads
//! and rejection codes, and the jobs service's announcements rendered onto `notify`,
//! `notify-next` and `$aws/events/...`.
//!
//! A device may only use the topics of its own thing: the one its client id names or a
//! thing its certificate is attached to (AWS's samples use a fixed client id). Replies go out through the broker like any message
//! (so `iot:Receive` applies), in the order the requests arrived.

use std::sync::Arc;

use async_trait::async_trait;
use drover_core::jobs::{DeviceUpdate, ExecutionStatus};
use drover_core::time::Timestamp;
use drover_mqtt::{Broker, DeviceRequest, Message, ReservedTopicHandler};
use drover_services::Jobs;
use drover_services::jobs::{DeviceError, DeviceUpdateRequest, JobNotification, JobPublisher};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::wire::{self, DocumentForm};

const PREFIX: &str = "$aws/things/";
/// Replies and notifications are published at QoS 1; a subscriber receives them at the lower
/// of that and its subscription's QoS.
const QOS: u8 = 1;

/// The reserved-topic handler for `$aws/things/{thing}/jobs/...`.
pub struct JobsTopicHandler {
    jobs: Jobs,
    broker: Broker,
}

impl JobsTopicHandler {
    pub fn new(jobs: Jobs, broker: Broker) -> Self {
        Self { jobs, broker }
    }
}

/// A refusal as the MQTT API names it.
#[derive(Debug)]
struct Rejection {
    code: &'static str,
    message: String,
    state: Option<Value>,
}

impl Rejection {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
            state: None,
        }
    }
}

impl From<DeviceError> for Rejection {
    fn from(e: DeviceError) -> Self {
        let code = match &e {
            DeviceError::InvalidRequest(_) => "InvalidRequest",
            DeviceError::NotFound(_) => "ResourceNotFound",
            DeviceError::InvalidStateTransition { .. } => "InvalidStateTransition",
            DeviceError::VersionMismatch { .. } => "VersionMismatch",
            DeviceError::Internal(_) => "InternalError",
        };
        Rejection {
            code,
            state: wire::refusal_state(&e),
            message: e.to_string(),
        }
    }
}

/// `$aws/things/{thing}/jobs/{rest}` split into the thing and the parts after `jobs`.
fn parse_topic(topic: &str) -> Option<(&str, Vec<&str>)> {
    let rest = topic.strip_prefix(PREFIX)?;
    let (thing, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("jobs/")?;
    Some((thing, rest.split('/').collect()))
}

fn stamp(now: Timestamp) -> Value {
    wire::seconds(now)
}

#[async_trait]
impl ReservedTopicHandler for JobsTopicHandler {
    fn claims(&self, topic: &str) -> bool {
        parse_topic(topic).is_some()
    }

    async fn handle(&self, request: DeviceRequest) {
        let Some((thing, parts)) = parse_topic(&request.topic) else {
            return;
        };
        let thing = thing.to_string();
        let own = request
            .grant
            .context
            .thing
            .as_ref()
            .is_some_and(|t| t.name == thing && t.is_attached)
            || self
                .jobs
                .device_may_use(&thing, &request.client_id, &request.grant.certificate_id)
                .await
                .unwrap_or(false);
        let payload = parse_payload(&request.payload);
        let client_token = payload
            .as_ref()
            .ok()
            .and_then(|m| m.get("clientToken"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let outcome = if !own {
            Err(Rejection::new(
                "InvalidRequest",
                format!(
                    "client {} may only use the jobs topics of its own thing (named by its \
                     client id, or with its certificate attached)",
                    request.client_id
                ),
            ))
        } else {
            match payload {
                Err(r) => Err(r),
                Ok(map) => self.serve(&thing, &parts, &map).await,
            }
        };
        let now = self.jobs_now();
        let (topic, mut body) = match outcome {
            Ok(body) => (format!("{}/accepted", request.topic), body),
            Err(r) => {
                let mut body = json!({"code": r.code, "message": r.message});
                if let Some(state) = r.state {
                    body["executionState"] = state;
                }
                (format!("{}/rejected", request.topic), body)
            }
        };
        body["timestamp"] = stamp(now);
        if let Some(token) = client_token {
            body["clientToken"] = json!(token);
        }
        let bytes = serde_json::to_vec(&body).expect("JSON values serialize");
        if let Err(e) = self
            .broker
            .publish(Message::system(topic, bytes, QOS))
            .await
        {
            tracing::warn!(error = %e, "could not publish a jobs reply");
        }
    }
}

fn parse_payload(payload: &[u8]) -> Result<Map<String, Value>, Rejection> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Rejection::new(
            "InvalidJson",
            "the payload must be a JSON object",
        )),
        Err(e) => Err(Rejection::new(
            "InvalidJson",
            format!("the payload is not valid JSON: {e}"),
        )),
    }
}

fn invalid(message: String) -> Rejection {
    Rejection::new("InvalidRequest", message)
}

impl JobsTopicHandler {
    fn jobs_now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since_epoch.as_millis() as i64)
    }

    async fn serve(
        &self,
        thing: &str,
        parts: &[&str],
        map: &Map<String, Value>,
    ) -> Result<Value, Rejection> {
        match parts {
            ["get"] => {
                let pending = self.jobs.get_pending_job_executions(thing).await?;
                Ok(json!({
                    "inProgressJobs": pending.in_progress.iter().map(wire::summary).collect::<Vec<_>>(),
                    "queuedJobs": pending.queued.iter().map(wire::summary).collect::<Vec<_>>(),
                }))
            }
            ["start-next"] => {
                let details = wire::status_details(map.get("statusDetails")).map_err(invalid)?;
                let step = wire::int(map, "stepTimeoutInMinutes").map_err(invalid)?;
                let next = self
                    .jobs
                    .start_next_pending_job_execution(thing, details, step)
                    .await?;
                Ok(match next {
                    Some(d) => json!({"execution": wire::execution(&d, DocumentForm::Object)}),
                    None => json!({}),
                })
            }
            [job_id, "get"] => {
                let number = wire::int(map, "executionNumber").map_err(invalid)?;
                let include = wire::boolean(map, "includeJobDocument")
                    .map_err(invalid)?
                    .unwrap_or(true);
                let found = self
                    .jobs
                    .describe_job_execution_for_device(thing, job_id, number, include)
                    .await?;
                Ok(match found {
                    Some(d) => json!({"execution": wire::execution(&d, DocumentForm::Object)}),
                    None => json!({}),
                })
            }
            [job_id, "update"] => {
                let status = wire::status(map).map_err(invalid)?;
                if status.is_none() {
                    return Err(invalid("status is required".into()));
                }
                let request = DeviceUpdateRequest {
                    update: DeviceUpdate {
                        status,
                        status_details: wire::status_details(map.get("statusDetails"))
                            .map_err(invalid)?,
                        expected_version: wire::int(map, "expectedVersion").map_err(invalid)?,
                        step_timeout_in_minutes: wire::int(map, "stepTimeoutInMinutes")
                            .map_err(invalid)?,
                    },
                    execution_number: wire::int(map, "executionNumber").map_err(invalid)?,
                    include_job_execution_state: wire::boolean(map, "includeJobExecutionState")
                        .map_err(invalid)?
                        .unwrap_or(false),
                    include_job_document: wire::boolean(map, "includeJobDocument")
                        .map_err(invalid)?
                        .unwrap_or(false),
                };
                let outcome = self
                    .jobs
                    .update_job_execution(thing, job_id, &request)
                    .await?;
                let mut body = json!({});
                if request.include_job_execution_state {
                    body["executionState"] = wire::execution_state(&outcome.state);
                }
                if let Some(doc) = &outcome.document {
                    body["jobDocument"] = wire::update_document(doc, DocumentForm::Object);
                }
                Ok(body)
            }
            _ => Err(Rejection::new(
                "InvalidTopic",
                "unknown jobs topic: use get, start-next, {jobId}/get or {jobId}/update",
            )),
        }
    }
}

/// Publishes the jobs service's announcements through the broker, in order, from one task.
pub struct BrokerJobPublisher {
    queue: mpsc::UnboundedSender<Message>,
}

impl BrokerJobPublisher {
    /// Starts the publishing task; it ends when the publisher is dropped.
    pub fn start(broker: Broker) -> Arc<Self> {
        let (queue, mut messages) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(message) = messages.recv().await {
                if let Err(e) = broker.publish(message).await {
                    tracing::warn!(error = %e, "could not publish a jobs notification");
                }
            }
        });
        Arc::new(BrokerJobPublisher { queue })
    }
}

impl JobPublisher for BrokerJobPublisher {
    fn publish(&self, notification: JobNotification) {
        let (topic, body) = render(&notification);
        let bytes = serde_json::to_vec(&body).expect("JSON values serialize");
        let _ = self.queue.send(Message::system(topic, bytes, QOS));
    }
}

/// The topic and payload of an announcement.
pub fn render(notification: &JobNotification) -> (String, Value) {
    match notification {
        JobNotification::Notify { thing, pending, at } => {
            let mut jobs = Map::new();
            let in_progress: Vec<Value> = pending
                .iter()
                .filter(|e| e.status == ExecutionStatus::InProgress)
                .map(wire::summary)
                .collect();
            let queued: Vec<Value> = pending
                .iter()
                .filter(|e| e.status == ExecutionStatus::Queued)
                .map(wire::summary)
                .collect();
            if !in_progress.is_empty() {
                jobs.insert("IN_PROGRESS".into(), Value::Array(in_progress));
            }
            if !queued.is_empty() {
                jobs.insert("QUEUED".into(), Value::Array(queued));
            }
            (
                format!("{PREFIX}{thing}/jobs/notify"),
                json!({"timestamp": stamp(*at), "jobs": jobs}),
            )
        }
        JobNotification::NotifyNext { thing, next, at } => {
            let mut body = json!({"timestamp": stamp(*at)});
            if let Some(d) = next {
                body["execution"] = wire::execution(d, DocumentForm::Object);
            }
            (format!("{PREFIX}{thing}/jobs/notify-next"), body)
        }
        JobNotification::JobEvent {
            kind,
            job,
            job_arn,
            at,
        } => {
            let mut body = json!({
                "eventType": "JOB",
                "eventId": uuid::Uuid::new_v4().to_string(),
                "timestamp": stamp(*at),
                "operation": kind.as_str(),
                "jobId": job.job_id,
                "jobArn": job_arn,
                "status": job.status.as_str(),
                "targetSelection": job.target_selection.as_str(),
                "targets": job.targets,
                "description": job.description,
                "createdAt": stamp(job.created_at),
                "lastUpdatedAt": stamp(job.last_updated_at),
                "jobProcessDetails": wire::process_details(&job.process),
            });
            if let Some(done) = job.completed_at {
                body["completedAt"] = stamp(done);
            }
            if let Some(c) = &job.comment {
                body["comment"] = json!(c);
            }
            if let Some(r) = &job.reason_code {
                body["reasonCode"] = json!(r);
            }
            if job.description.is_none() {
                body.as_object_mut()
                    .expect("an object")
                    .remove("description");
            }
            (
                format!("$aws/events/job/{}/{}", job.job_id, kind.as_str()),
                body,
            )
        }
        JobNotification::ExecutionEvent {
            execution,
            thing_arn,
            at,
        } => {
            let operation = execution.status.event_name();
            (
                format!("$aws/events/jobExecution/{}/{operation}", execution.job_id),
                json!({
                    "eventType": "JOB_EXECUTION",
                    "eventId": uuid::Uuid::new_v4().to_string(),
                    "timestamp": stamp(*at),
                    "operation": operation,
                    "jobId": execution.job_id,
                    "thingArn": thing_arn,
                    "status": execution.status.as_str(),
                    "statusDetails": execution.status_details,
                    "executionNumber": execution.execution_number,
                    "versionNumber": execution.version_number,
                }),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_core::jobs::JobExecution;
    use drover_services::jobs::Delivery;

    #[test]
    fn topics_split_into_thing_and_request() {
        assert_eq!(
            parse_topic("$aws/things/dev-1/jobs/get"),
            Some(("dev-1", vec!["get"]))
        );
        assert_eq!(
            parse_topic("$aws/things/dev-1/jobs/j1/update"),
            Some(("dev-1", vec!["j1", "update"]))
        );
        assert_eq!(parse_topic("$aws/things/dev-1/shadow/get"), None);
        assert_eq!(parse_topic("devices/dev-1/jobs/get"), None);
    }

    #[test]
    fn payloads_must_be_json_objects() {
        assert!(parse_payload(b"").unwrap().is_empty());
        assert_eq!(parse_payload(b"{bad").err().unwrap().code, "InvalidJson");
        assert_eq!(parse_payload(b"[1]").err().unwrap().code, "InvalidJson");
        assert_eq!(parse_payload(b"\xff").err().unwrap().code, "InvalidJson");
    }

    #[test]
    fn notify_next_without_execution_when_the_queue_is_empty() {
        let (topic, body) = render(&JobNotification::NotifyNext {
            thing: "t".into(),
            next: None,
            at: Timestamp(1_700_000_000_999),
        });
        assert_eq!(topic, "$aws/things/t/jobs/notify-next");
        assert_eq!(body, json!({"timestamp": 1_700_000_000}));
        let e = JobExecution::queued("j", "t", 1, 0, Timestamp(1_700_000_000_000));
        let (_, body) = render(&JobNotification::NotifyNext {
            thing: "t".into(),
            next: Some(Delivery {
                execution: e.clone(),
                document: Some(r#"{"a":1}"#.into()),
                at: Timestamp(1_700_000_001_000),
            }),
            at: Timestamp(1_700_000_001_000),
        });
        assert_eq!(body["execution"]["jobDocument"], json!({"a": 1}));
        assert_eq!(body["execution"]["queuedAt"], json!(1_700_000_000));
        assert_eq!(body["execution"]["status"], "QUEUED");
        let (topic, body) = render(&JobNotification::Notify {
            thing: "t".into(),
            pending: vec![],
            at: Timestamp(0),
        });
        assert_eq!(topic, "$aws/things/t/jobs/notify");
        assert_eq!(body, json!({"timestamp": 0, "jobs": {}}));
    }
}
