//! The jobs data plane (`iot-jobs-data`, the HTTPS device API) through the official
//! `aws-sdk-iotjobsdataplane` crate against a real `drover serve`: a device program finds the
//! endpoint with DescribeEndpoint(iot:Jobs), signs with SigV4 (service `iot-jobs-data`), and
//! works its queue with GetPendingJobExecutions, DescribeJobExecution,
//! StartNextPendingJobExecution and UpdateJobExecution; refusals arrive as the typed errors the
//! SDK models and change nothing, as a control-plane read-back through `aws-sdk-iot` shows.
//!
//! Every test starts its own server, as in `registry.rs`.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use aws_sdk_iotjobsdataplane::Client as JobsClient;
use aws_sdk_iotjobsdataplane::types::JobExecutionStatus;
use drover_compat_sdk::Server;
use serde_json::{Value, json};

/// The jobs data plane's times are integer epoch seconds of a recent instant.
fn assert_recent_seconds(secs: i64, what: &str) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_secs() as i64;
    assert!(
        (-60..600).contains(&(now - secs)),
        "{what} is {secs}, not epoch seconds of a recent instant"
    );
}

fn details(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The server, a control-plane client, and a data-plane client on the iot:Jobs endpoint.
async fn setup() -> Result<(Server, aws_sdk_iot::Client, JobsClient)> {
    let server = Server::start().await?;
    let iot = server.client()?;
    let address = iot
        .describe_endpoint()
        .endpoint_type("iot:Jobs")
        .send()
        .await?
        .endpoint_address()
        .context("DescribeEndpoint(iot:Jobs) has no endpointAddress")?
        .to_string();
    assert!(
        !address.contains("://"),
        "endpointAddress is a host[:port], not a URL: {address}"
    );
    let data = server.jobs_data_client(&format!("https://{address}"), None)?;
    Ok((server, iot, data))
}

async fn thing_and_jobs(
    server: &Server,
    iot: &aws_sdk_iot::Client,
    thing: &str,
    jobs: &[(&str, Value)],
) -> Result<()> {
    iot.create_thing().thing_name(thing).send().await?;
    let arn = format!(
        "arn:aws:iot:{}:{}:thing/{thing}",
        server.endpoint.region, server.account_id
    );
    for (job_id, document) in jobs {
        iot.create_job()
            .job_id(*job_id)
            .targets(&arn)
            .document(document.to_string())
            .send()
            .await?;
        // queuedAt has one-second resolution; keep the queue order unambiguous.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    Ok(())
}

async fn control_status(
    iot: &aws_sdk_iot::Client,
    thing: &str,
    job_id: &str,
) -> Result<(String, i64, HashMap<String, String>)> {
    let out = iot
        .describe_job_execution()
        .thing_name(thing)
        .job_id(job_id)
        .send()
        .await?;
    let execution = out.execution().context("execution")?;
    Ok((
        execution
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        execution.version_number(),
        execution
            .status_details()
            .and_then(|d| d.details_map())
            .cloned()
            .unwrap_or_default(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_program_works_its_queue_over_https() -> Result<()> {
    let (server, iot, data) = setup().await?;
    thing_and_jobs(
        &server,
        &iot,
        "dev1",
        &[
            (
                "install-2",
                json!({"operation": "install", "version": "2.0"}),
            ),
            ("upload-config", json!({"operation": "config-upload"})),
        ],
    )
    .await?;

    let pending = data
        .get_pending_job_executions()
        .thing_name("dev1")
        .send()
        .await?;
    let queued: Vec<_> = pending
        .queued_jobs()
        .iter()
        .map(|s| s.job_id().unwrap_or_default())
        .collect();
    assert_eq!(queued, ["install-2", "upload-config"]);
    assert!(pending.in_progress_jobs().is_empty());
    let first = &pending.queued_jobs()[0];
    assert_recent_seconds(first.queued_at(), "queuedAt");
    assert_eq!(first.execution_number(), Some(1));

    let described = data
        .describe_job_execution()
        .thing_name("dev1")
        .job_id("install-2")
        .include_job_document(true)
        .send()
        .await?;
    let execution = described.execution().context("execution")?;
    assert_eq!(execution.status(), Some(&JobExecutionStatus::Queued));
    assert_eq!(execution.thing_name(), Some("dev1"));
    let document: Value = serde_json::from_str(execution.job_document().context("jobDocument")?)?;
    assert_eq!(document, json!({"operation": "install", "version": "2.0"}));

    // `$next` describes the head of the queue without starting it.
    let next = data
        .describe_job_execution()
        .thing_name("dev1")
        .job_id("$next")
        .send()
        .await?;
    assert_eq!(next.execution().and_then(|e| e.job_id()), Some("install-2"));
    assert_eq!(control_status(&iot, "dev1", "install-2").await?.0, "QUEUED");

    let started = data
        .start_next_pending_job_execution()
        .thing_name("dev1")
        .status_details("step", "download")
        .step_timeout_in_minutes(30)
        .send()
        .await?;
    let execution = started.execution().context("start-next started nothing")?;
    assert_eq!(execution.job_id(), Some("install-2"));
    assert_eq!(execution.status(), Some(&JobExecutionStatus::InProgress));
    assert_eq!(
        execution.status_details(),
        Some(&details(&[("step", "download")]))
    );
    assert_recent_seconds(execution.started_at().context("startedAt")?, "startedAt");
    let timeout = execution
        .approximate_seconds_before_timed_out()
        .context("a step timer was asked for")?;
    assert!((1..=1800).contains(&timeout), "{timeout}");
    let version = execution.version_number();

    let updated = data
        .update_job_execution()
        .thing_name("dev1")
        .job_id("install-2")
        .status(JobExecutionStatus::Succeeded)
        .status_details("result", "ok")
        .expected_version(version)
        .include_job_execution_state(true)
        .include_job_document(true)
        .send()
        .await?;
    let state = updated.execution_state().context("executionState")?;
    assert_eq!(state.status(), Some(&JobExecutionStatus::Succeeded));
    assert_eq!(state.version_number(), version + 1);
    let document: Value = serde_json::from_str(updated.job_document().context("jobDocument")?)?;
    assert_eq!(document["version"], "2.0");
    let (status, control_version, control_details) =
        control_status(&iot, "dev1", "install-2").await?;
    assert_eq!(status, "SUCCEEDED");
    assert_eq!(control_version, version + 1);
    assert_eq!(
        control_details.get("result").map(String::as_str),
        Some("ok")
    );

    // The next job, reported FAILED straight from QUEUED.
    let started = data
        .start_next_pending_job_execution()
        .thing_name("dev1")
        .send()
        .await?;
    assert_eq!(
        started.execution().and_then(|e| e.job_id()),
        Some("upload-config")
    );
    data.update_job_execution()
        .thing_name("dev1")
        .job_id("upload-config")
        .status(JobExecutionStatus::Failed)
        .send()
        .await?;

    // An empty queue: start-next answers with no execution.
    let nothing = data
        .start_next_pending_job_execution()
        .thing_name("dev1")
        .send()
        .await?;
    assert!(nothing.execution().is_none(), "{nothing:?}");
    let pending = data
        .get_pending_job_executions()
        .thing_name("dev1")
        .send()
        .await?;
    assert!(pending.queued_jobs().is_empty() && pending.in_progress_jobs().is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_typed_errors_and_change_nothing() -> Result<()> {
    let (server, iot, data) = setup().await?;
    thing_and_jobs(&server, &iot, "dev2", &[("job-a", json!({"op": "a"}))]).await?;

    let err = data
        .describe_job_execution()
        .thing_name("dev2")
        .job_id("no-such-job")
        .send()
        .await
        .expect_err("an unknown job must not be found")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    let err = data
        .update_job_execution()
        .thing_name("dev2")
        .job_id("no-such-job")
        .status(JobExecutionStatus::InProgress)
        .send()
        .await
        .expect_err("an unknown job cannot be updated")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    // A stale expectedVersion is refused, whatever the error's name.
    let (_, version, _) = control_status(&iot, "dev2", "job-a").await?;
    let err = data
        .update_job_execution()
        .thing_name("dev2")
        .job_id("job-a")
        .status(JobExecutionStatus::InProgress)
        .expected_version(version + 7)
        .send()
        .await
        .expect_err("a stale expectedVersion must be refused");
    assert!(err.raw_response().is_some(), "the server answered: {err:?}");
    assert_eq!(
        control_status(&iot, "dev2", "job-a").await?,
        ("QUEUED".to_string(), version, HashMap::new())
    );

    // A device may not report a status only the service sets.
    let err = data
        .update_job_execution()
        .thing_name("dev2")
        .job_id("job-a")
        .status(JobExecutionStatus::Canceled)
        .send()
        .await
        .expect_err("CANCELED is not a device's to set")
        .into_service_error();
    assert!(
        err.is_invalid_request_exception() || err.is_invalid_state_transition_exception(),
        "{err:?}"
    );

    data.update_job_execution()
        .thing_name("dev2")
        .job_id("job-a")
        .status(JobExecutionStatus::Succeeded)
        .send()
        .await?;
    let (_, done_version, _) = control_status(&iot, "dev2", "job-a").await?;
    let err = data
        .update_job_execution()
        .thing_name("dev2")
        .job_id("job-a")
        .status(JobExecutionStatus::InProgress)
        .send()
        .await
        .expect_err("a SUCCEEDED execution cannot go back to IN_PROGRESS")
        .into_service_error();
    assert!(err.is_invalid_state_transition_exception(), "{err:?}");
    assert_eq!(
        control_status(&iot, "dev2", "job-a").await?,
        ("SUCCEEDED".to_string(), done_version, HashMap::new())
    );

    // A request signed with a key drover never issued is refused and changes nothing.
    let address = iot
        .describe_endpoint()
        .endpoint_type("iot:Jobs")
        .send()
        .await?
        .endpoint_address()
        .context("endpointAddress")?
        .to_string();
    let stranger = server.jobs_data_client(
        &format!("https://{address}"),
        Some(("AKIANOTAREALKEY00000", "not-a-real-secret")),
    )?;
    thing_and_jobs(&server, &iot, "dev3", &[("job-b", json!({"op": "b"}))]).await?;
    let err = stranger
        .start_next_pending_job_execution()
        .thing_name("dev3")
        .send()
        .await
        .expect_err("an unknown key must be refused");
    let status = err.raw_response().map(|r| r.status().as_u16());
    assert!(
        matches!(status, Some(401 | 403)),
        "expected 401/403, got {status:?}: {err:?}"
    );
    assert_eq!(control_status(&iot, "dev3", "job-b").await?.0, "QUEUED");
    Ok(())
}
