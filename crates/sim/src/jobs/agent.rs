//! One simulated device's side of the AWS IoT Jobs MQTT API, as plain data in and out: the
//! topics it subscribes to, and what it does with each message it receives. It behaves like
//! AWS's device samples: on `notify-next` naming an execution it asks `start-next`, and on
//! `start-next/accepted` it reports the execution SUCCEEDED with the `expectedVersion` the
//! broker just gave it. The event loop that feeds it lives in `run.rs`; keeping the protocol
//! here lets it be tested without a broker.

use serde_json::{Value, json};

/// How far one device takes the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cycle {
    /// notify-next → start-next → update SUCCEEDED.
    Full,
    /// Only wait for notify-next (no durable update).
    Notify,
}

/// Where a device is in the cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Subscribed, waiting for notify-next with the job's execution.
    Waiting,
    /// Sent start-next, waiting for its answer.
    Starting,
    /// Sent the SUCCEEDED update, waiting for its answer.
    Updating,
    /// Finished the cycle it was asked for.
    Done,
    /// A request was rejected, or the broker answered with another job: the device stops.
    Failed,
}

/// What the device observed that the run measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Milestone {
    Notified,
    Started,
    Succeeded,
    /// `start-next/rejected` or `{jobId}/update/rejected`, with AWS's error code.
    Rejected(String),
    /// An answer naming another job, or none (nothing pending for this device).
    Unexpected(String),
}

/// A request the device publishes in reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// One device speaking the jobs protocol for one job.
#[derive(Debug)]
pub struct Agent {
    thing: String,
    job_id: String,
    cycle: Cycle,
    phase: Phase,
    /// Distinguishes this device's requests in the broker's answers (AWS echoes it).
    requests: u32,
}

impl Agent {
    pub fn new(thing: &str, job_id: &str, cycle: Cycle) -> Self {
        Agent {
            thing: thing.to_string(),
            job_id: job_id.to_string(),
            cycle,
            phase: Phase::Waiting,
            requests: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    fn topic(&self, rest: &str) -> String {
        format!("$aws/things/{}/jobs/{rest}", self.thing)
    }

    /// The topics to subscribe to (QoS 1) before the job exists.
    pub fn subscriptions(&self) -> Vec<String> {
        let mut topics = vec![self.topic("notify-next")];
        if self.cycle == Cycle::Full {
            topics.push(self.topic("start-next/accepted"));
            topics.push(self.topic("start-next/rejected"));
            topics.push(self.topic(&format!("{}/update/accepted", self.job_id)));
            topics.push(self.topic(&format!("{}/update/rejected", self.job_id)));
        }
        topics
    }

    fn token(&mut self) -> String {
        self.requests += 1;
        format!("{}-{}", self.thing, self.requests)
    }

    /// Handles one received message: what it means for the measurement, and the request to
    /// publish in reply, if any.
    pub fn on_message(
        &mut self,
        topic: &str,
        payload: &[u8],
    ) -> (Option<Milestone>, Option<Request>) {
        let Some(rest) = topic
            .strip_prefix("$aws/things/")
            .and_then(|t| t.strip_prefix(self.thing.as_str()))
            .and_then(|t| t.strip_prefix("/jobs/"))
        else {
            return (None, None);
        };
        let body: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
        let execution = body.get("execution");
        let job_of = |e: Option<&Value>| {
            e.and_then(|e| e.get("jobId"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        match (self.phase, rest) {
            // notify-next also arrives with no execution once the queue empties: not ours.
            (Phase::Waiting, "notify-next") => {
                if job_of(execution).as_deref() != Some(self.job_id.as_str()) {
                    return (None, None);
                }
                if self.cycle == Cycle::Notify {
                    self.phase = Phase::Done;
                    return (Some(Milestone::Notified), None);
                }
                self.phase = Phase::Starting;
                let token = self.token();
                let request = Request {
                    topic: self.topic("start-next"),
                    payload: json!({
                        "statusDetails": {"agent": "drover-sim"},
                        "clientToken": token,
                    })
                    .to_string()
                    .into_bytes(),
                };
                (Some(Milestone::Notified), Some(request))
            }
            (Phase::Starting, "start-next/accepted") => {
                let Some(e) = execution else {
                    self.phase = Phase::Failed;
                    return (
                        Some(Milestone::Unexpected(
                            "start-next found nothing pending".into(),
                        )),
                        None,
                    );
                };
                match job_of(Some(e)) {
                    Some(job) if job == self.job_id => {}
                    other => {
                        self.phase = Phase::Failed;
                        return (
                            Some(Milestone::Unexpected(format!(
                                "start-next started job {}",
                                other.unwrap_or_default()
                            ))),
                            None,
                        );
                    }
                }
                let version = e.get("versionNumber").and_then(Value::as_i64).unwrap_or(0);
                let number = e.get("executionNumber").and_then(Value::as_i64);
                self.phase = Phase::Updating;
                let token = self.token();
                let mut update = json!({
                    "status": "SUCCEEDED",
                    "statusDetails": {"result": "installed"},
                    "expectedVersion": version,
                    "clientToken": token,
                });
                if let Some(n) = number {
                    update["executionNumber"] = json!(n);
                }
                let request = Request {
                    topic: self.topic(&format!("{}/update", self.job_id)),
                    payload: update.to_string().into_bytes(),
                };
                (Some(Milestone::Started), Some(request))
            }
            (Phase::Updating, r) if r == format!("{}/update/accepted", self.job_id) => {
                self.phase = Phase::Done;
                (Some(Milestone::Succeeded), None)
            }
            (Phase::Starting, "start-next/rejected") | (Phase::Updating, _)
                if rest.ends_with("/rejected") =>
            {
                self.phase = Phase::Failed;
                let code = body
                    .get("code")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string();
                (Some(Milestone::Rejected(code)), None)
            }
            _ => (None, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(request: &Request) -> Value {
        serde_json::from_slice(&request.payload).expect("JSON")
    }

    #[test]
    fn full_cycle_like_an_aws_sample_device() {
        let mut a = Agent::new("dev-0000001", "job-1", Cycle::Full);
        assert_eq!(
            a.subscriptions(),
            vec![
                "$aws/things/dev-0000001/jobs/notify-next",
                "$aws/things/dev-0000001/jobs/start-next/accepted",
                "$aws/things/dev-0000001/jobs/start-next/rejected",
                "$aws/things/dev-0000001/jobs/job-1/update/accepted",
                "$aws/things/dev-0000001/jobs/job-1/update/rejected",
            ]
        );
        // An empty notify-next (nothing pending) changes nothing.
        assert_eq!(
            a.on_message(
                "$aws/things/dev-0000001/jobs/notify-next",
                br#"{"timestamp":1}"#
            ),
            (None, None)
        );
        let (m, r) = a.on_message(
            "$aws/things/dev-0000001/jobs/notify-next",
            br#"{"timestamp":1,"execution":{"jobId":"job-1","status":"QUEUED","versionNumber":1}}"#,
        );
        assert_eq!(m, Some(Milestone::Notified));
        let r = r.expect("start-next");
        assert_eq!(r.topic, "$aws/things/dev-0000001/jobs/start-next");
        assert_eq!(body(&r)["clientToken"], "dev-0000001-1");
        let (m, r) = a.on_message(
            "$aws/things/dev-0000001/jobs/start-next/accepted",
            br#"{"execution":{"jobId":"job-1","status":"IN_PROGRESS","versionNumber":2,"executionNumber":1}}"#,
        );
        assert_eq!(m, Some(Milestone::Started));
        let r = r.expect("update");
        assert_eq!(r.topic, "$aws/things/dev-0000001/jobs/job-1/update");
        let update = body(&r);
        assert_eq!(update["status"], "SUCCEEDED");
        assert_eq!(update["expectedVersion"], 2);
        assert_eq!(update["executionNumber"], 1);
        let (m, r) = a.on_message(
            "$aws/things/dev-0000001/jobs/job-1/update/accepted",
            br#"{"timestamp":2}"#,
        );
        assert_eq!((m, r), (Some(Milestone::Succeeded), None));
        assert_eq!(a.phase(), Phase::Done);
        // The notify-next that follows (queue empty) is ignored.
        assert_eq!(
            a.on_message(
                "$aws/things/dev-0000001/jobs/notify-next",
                br#"{"timestamp":3}"#
            ),
            (None, None)
        );
    }

    #[test]
    fn rejections_and_foreign_jobs_stop_the_device() {
        let mut a = Agent::new("d", "job-1", Cycle::Full);
        a.on_message(
            "$aws/things/d/jobs/notify-next",
            br#"{"execution":{"jobId":"job-1"}}"#,
        );
        let (m, r) = a.on_message(
            "$aws/things/d/jobs/start-next/rejected",
            br#"{"code":"InvalidRequest","message":"no"}"#,
        );
        assert_eq!(
            (m, r),
            (Some(Milestone::Rejected("InvalidRequest".into())), None)
        );
        assert_eq!(a.phase(), Phase::Failed);

        let mut a = Agent::new("d", "job-1", Cycle::Full);
        a.on_message(
            "$aws/things/d/jobs/notify-next",
            br#"{"execution":{"jobId":"job-1"}}"#,
        );
        let (m, _) = a.on_message(
            "$aws/things/d/jobs/start-next/accepted",
            br#"{"execution":{"jobId":"older","versionNumber":2}}"#,
        );
        assert_eq!(
            m,
            Some(Milestone::Unexpected("start-next started job older".into()))
        );

        let mut a = Agent::new("d", "job-1", Cycle::Full);
        a.on_message(
            "$aws/things/d/jobs/notify-next",
            br#"{"execution":{"jobId":"job-1"}}"#,
        );
        a.on_message(
            "$aws/things/d/jobs/start-next/accepted",
            br#"{"execution":{"jobId":"job-1","versionNumber":2}}"#,
        );
        let (m, _) = a.on_message(
            "$aws/things/d/jobs/job-1/update/rejected",
            br#"{"code":"VersionMismatch"}"#,
        );
        assert_eq!(m, Some(Milestone::Rejected("VersionMismatch".into())));
    }

    #[test]
    fn notify_cycle_stops_at_notify_next_and_ignores_other_things() {
        let mut a = Agent::new("d", "job-1", Cycle::Notify);
        assert_eq!(a.subscriptions(), vec!["$aws/things/d/jobs/notify-next"]);
        assert_eq!(
            a.on_message(
                "$aws/things/other/jobs/notify-next",
                br#"{"execution":{"jobId":"job-1"}}"#
            ),
            (None, None)
        );
        assert_eq!(
            a.on_message(
                "$aws/things/d/jobs/notify-next",
                br#"{"execution":{"jobId":"other-job"}}"#
            ),
            (None, None)
        );
        let (m, r) = a.on_message(
            "$aws/things/d/jobs/notify-next",
            br#"{"execution":{"jobId":"job-1"}}"#,
        );
        assert_eq!((m, r), (Some(Milestone::Notified), None));
        assert_eq!(a.phase(), Phase::Done);
    }
}
