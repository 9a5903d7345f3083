"""The Jobs control plane with boto3 and awscli, checked against AWS's API reference and the
Jobs chapter of the developer guide: CreateJob's validation (each refusal with AWS's error name,
and nothing created), DescribeJob's counters and timestamps, ListJobs filters and pages,
UpdateJob, CancelJob with and without force, CancelJobExecution, DeleteJob and
DeleteJobExecution with and without force, job templates, documents from drover's S3 store,
CONTINUOUS jobs reaching things that join a static or dynamic group later, the rollout rate,
abort criteria, retries, and job events delivered to a subscribed device.

Devices act through boto3's `iot-jobs-data` client (the HTTPS device API) where the test is
about the control plane; the MQTT device API has its own suite (test_jobs_device.py)."""

import json
import os
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import Drover, error_code
from drover_proc import DroverProcess
from jobs_helpers import (
    create_job,
    describe_execution,
    enable_indexing,
    executions_for_job,
    job,
    jobs_data_client,
    provision_jobs_device,
    thing_of,
)
from mqtt_devices import OBSERVER_POLICY, PahoDevice, eventually

DOC = {"operation": "install", "app_version": "2.0"}


@pytest.fixture(scope="module")
def data(drover):
    return jobs_data_client(drover)


def things(drover, n, prefix="ct", attributes=None):
    names = []
    for _ in range(n):
        name = drover.name(prefix)
        args = {"thingName": name}
        if attributes:
            args["attributePayload"] = {"attributes": attributes}
        drover.iot.create_thing(**args)
        names.append(name)
    return names


def group_of(drover, members, name=None):
    name = name or drover.name("cg")
    arn = drover.iot.create_thing_group(thingGroupName=name)["thingGroupArn"]
    for thing in members:
        drover.iot.add_thing_to_thing_group(thingGroupName=name, thingName=thing)
    return name, arn


def arns(drover, names):
    return [drover.arn("thing", n) for n in names]


def expect_error(call, code, http_status=None, **kwargs):
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    got_status, got_code, message = error_code(e)
    assert got_code == code, (got_code, message)
    if http_status is not None:
        assert got_status == http_status, (got_status, got_code, message)
    assert message, "AWS errors carry a message"
    return message


def assert_no_job(drover, job_id):
    expect_error(drover.iot.describe_job, "ResourceNotFoundException", 404, jobId=job_id)
    listed = drover.iot.list_jobs(maxResults=250).get("jobs", [])
    assert job_id not in [j["jobId"] for j in listed]


# -- CreateJob validation ------------------------------------------------------------------------------

def test_create_job_refusals_name_the_aws_error_and_create_nothing(drover):
    raw = drover.iot_raw
    [thing] = things(drover, 1)
    target = [drover.arn("thing", thing)]
    doc = json.dumps(DOC)
    cases = [
        ("bad jobId characters", "InvalidRequestException", {"jobId": "has.dots", "targets": target, "document": doc}),
        ("jobId too long", "InvalidRequestException", {"jobId": "j" * 65, "targets": target, "document": doc}),
        ("missing targets", "InvalidRequestException", {"jobId": "no-targets", "document": doc}),
        ("empty targets", "InvalidRequestException", {"jobId": "empty-targets", "targets": [], "document": doc}),
        ("not an ARN", "InvalidRequestException", {"jobId": "not-arn", "targets": ["thing1"], "document": doc}),
        ("document too big", "InvalidRequestException",
         {"jobId": "too-big", "targets": target, "document": json.dumps({"pad": "x" * 32768})}),
        ("document not JSON", "InvalidRequestException", {"jobId": "bad-json", "targets": target, "document": "{not json"}),
        ("no document at all", "InvalidRequestException", {"jobId": "no-doc", "targets": target}),
        ("document and documentSource", "InvalidRequestException",
         {"jobId": "two-docs", "targets": target, "document": doc, "documentSource": "s3://bucket/key.json"}),
        ("rate 0", "InvalidRequestException",
         {"jobId": "rate-0", "targets": target, "document": doc, "jobExecutionsRolloutConfig": {"maximumPerMinute": 0}}),
        ("rate above AWS's 1000", "InvalidRequestException",
         {"jobId": "rate-1001", "targets": target, "document": doc,
          "jobExecutionsRolloutConfig": {"maximumPerMinute": 1001}}),
        ("in-progress timeout 0", "InvalidRequestException",
         {"jobId": "timeout-0", "targets": target, "document": doc, "timeoutConfig": {"inProgressTimeoutInMinutes": 0}}),
        ("unknown targetSelection", "InvalidRequestException",
         {"jobId": "bad-selection", "targets": target, "document": doc, "targetSelection": "SOMETIMES"}),
        ("unknown thing", "ResourceNotFoundException",
         {"jobId": "ghost-thing", "targets": [drover.arn("thing", "no-such-thing")], "document": doc}),
        ("unknown group", "ResourceNotFoundException",
         {"jobId": "ghost-group", "targets": [drover.arn("thinggroup", "no-such-group")], "document": doc}),
        ("unknown template", "ResourceNotFoundException",
         {"jobId": "ghost-template", "targets": target,
          "jobTemplateArn": f"arn:aws:iot:{drover.region}:{drover.account}:jobtemplate/no-such-template"}),
    ]
    for what, code, args in cases:
        with pytest.raises(ClientError) as e:
            raw.create_job(**args)
        status, got, message = error_code(e)
        assert got == code, f"{what}: {got} {message}"
        assert status == (404 if code == "ResourceNotFoundException" else 400), f"{what}: {status}"
        if len(args["jobId"]) <= 64 and "." not in args["jobId"]:
            assert_no_job(drover, args["jobId"])
    # No execution leaked onto the thing from any refused job.
    assert drover.iot.list_job_executions_for_thing(thingName=thing).get("executionSummaries", []) == []

    # The same jobId twice: ResourceAlreadyExistsException, the first job intact.
    job_id = create_job(drover.iot, target, DOC, description="first")
    expect_error(drover.iot.create_job, "ResourceAlreadyExistsException", 409,
                 jobId=job_id, targets=target, document=json.dumps({"other": 1}))
    assert json.loads(drover.iot.get_job_document(jobId=job_id)["document"]) == DOC
    assert job(drover.iot, job_id)["description"] == "first"


def test_create_job_through_awscli(drover):
    [thing] = things(drover, 1)
    out = drover.aws("create-job", "--job-id", "cli-job-1", "--targets", drover.arn("thing", thing),
                     "--document", json.dumps(DOC), "--description", "from the CLI",
                     "--target-selection", "SNAPSHOT").json
    assert out == {"jobArn": drover.arn("job", "cli-job-1"), "jobId": "cli-job-1", "description": "from the CLI"}
    described = drover.aws("describe-job", "--job-id", "cli-job-1").json
    assert described["job"]["status"] == "IN_PROGRESS"
    assert described["job"]["jobId"] == "cli-job-1" and described["job"]["description"] == "from the CLI"
    assert json.loads(drover.aws("get-job-document", "--job-id", "cli-job-1").json["document"]) == DOC
    drover.aws_error("create-job", "--job-id", "cli-job-2", "--targets", drover.arn("thing", thing),
                     "--document", "{broken", code="InvalidRequestException")
    drover.aws_error("describe-job", "--job-id", "cli-job-2", code="ResourceNotFoundException")


# -- DescribeJob, ListJobs, UpdateJob ---------------------------------------------------------------

def test_describe_job_counts_executions_by_status(drover, data):
    names = things(drover, 5)
    job_id = create_job(drover.iot, arns(drover, names), DOC, description="counters")
    created = job(drover.iot, job_id)
    assert created["jobArn"] == drover.arn("job", job_id)
    assert created["status"] == "IN_PROGRESS" and created["targetSelection"] == "SNAPSHOT"
    assert sorted(created["targets"]) == sorted(arns(drover, names))
    assert "completedAt" not in created
    eventually(lambda: len(executions_for_job(drover.iot, job_id)) == 5)

    a, b, c, d_, e = names
    data.update_job_execution(jobId=job_id, thingName=a, status="SUCCEEDED")
    data.update_job_execution(jobId=job_id, thingName=b, status="FAILED")
    data.update_job_execution(jobId=job_id, thingName=d_, status="IN_PROGRESS")
    data.update_job_execution(jobId=job_id, thingName=e, status="REJECTED")
    details = eventually(lambda: (p := job(drover.iot, job_id)["jobProcessDetails"])
                         ["numberOfRejectedThings"] == 1 and p)
    assert details["numberOfSucceededThings"] == 1, details
    assert details["numberOfFailedThings"] == 1, details
    assert details["numberOfQueuedThings"] == 1, details
    assert details["numberOfInProgressThings"] == 1, details
    assert details["numberOfCanceledThings"] == 0 and details["numberOfTimedOutThings"] == 0, details
    assert job(drover.iot, job_id)["status"] == "IN_PROGRESS"

    by_status = {s["jobExecutionSummary"]["status"]: thing_of(s) for s in executions_for_job(drover.iot, job_id)}
    assert by_status == {"SUCCEEDED": a, "FAILED": b, "QUEUED": c, "IN_PROGRESS": d_, "REJECTED": e}
    assert [thing_of(s) for s in executions_for_job(drover.iot, job_id, status="QUEUED")] == [c]

    data.update_job_execution(jobId=job_id, thingName=c, status="SUCCEEDED")
    data.update_job_execution(jobId=job_id, thingName=d_, status="SUCCEEDED")
    done = eventually(lambda: (j := job(drover.iot, job_id))["status"] == "COMPLETED" and j)
    assert done["jobProcessDetails"]["numberOfSucceededThings"] == 3, done
    assert done["completedAt"] >= done["createdAt"], done


def test_list_jobs_filters_and_pages(drover, data):
    members = things(drover, 2)
    gname, garn = group_of(drover, members)
    [lone] = things(drover, 1)
    snapshot = create_job(drover.iot, [garn], DOC)
    continuous = create_job(drover.iot, [garn], DOC, targetSelection="CONTINUOUS")
    finished = create_job(drover.iot, [drover.arn("thing", lone)], DOC, wait_for=1)
    data.update_job_execution(jobId=finished, thingName=lone, status="SUCCEEDED")
    eventually(lambda: job(drover.iot, finished)["status"] == "COMPLETED")

    def ids(**filters):
        out, token = [], None
        while True:
            page = drover.iot.list_jobs(**filters, **({"nextToken": token} if token else {}))
            out += [j["jobId"] for j in page.get("jobs", [])]
            token = page.get("nextToken")
            if not token:
                return out

    completed = ids(status="COMPLETED")
    assert finished in completed and snapshot not in completed
    in_progress = ids(status="IN_PROGRESS")
    assert snapshot in in_progress and continuous in in_progress and finished not in in_progress
    assert continuous in ids(targetSelection="CONTINUOUS") and snapshot not in ids(targetSelection="CONTINUOUS")
    assert sorted(ids(thingGroupName=gname)) == sorted([snapshot, continuous])
    paged = ids(maxResults=1)
    assert {snapshot, continuous, finished} <= set(paged) and len(paged) == len(set(paged))
    summary = next(j for j in drover.iot.list_jobs(status="COMPLETED", maxResults=250)["jobs"] if j["jobId"] == finished)
    assert summary["jobArn"] == drover.arn("job", finished) and summary["targetSelection"] == "SNAPSHOT"
    assert "createdAt" in summary and "completedAt" in summary
    expect_error(drover.iot_raw.list_jobs, "InvalidRequestException", 400, status="BOGUS")


def test_update_job_changes_what_aws_lets_change(drover):
    [thing] = things(drover, 1)
    job_id = create_job(drover.iot, [drover.arn("thing", thing)], DOC, description="before")
    drover.iot.update_job(
        jobId=job_id, description="after",
        jobExecutionsRolloutConfig={"maximumPerMinute": 50},
        abortConfig={"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
                                       "thresholdPercentage": 80.0, "minNumberOfExecutedThings": 10}]},
        jobExecutionsRetryConfig={"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 2}]})
    got = job(drover.iot, job_id)
    assert got["description"] == "after"
    assert got["jobExecutionsRolloutConfig"]["maximumPerMinute"] == 50
    assert got["abortConfig"]["criteriaList"][0]["thresholdPercentage"] == 80.0
    assert got["jobExecutionsRetryConfig"]["criteriaList"] == [{"failureType": "TIMED_OUT", "numberOfRetries": 2}]
    assert got["lastUpdatedAt"] >= got["createdAt"]
    assert json.loads(drover.iot.get_job_document(jobId=job_id)["document"]) == DOC
    expect_error(drover.iot.update_job, "ResourceNotFoundException", 404, jobId="no-such-job", description="x")
    expect_error(drover.iot_raw.update_job, "InvalidRequestException", 400, jobId=job_id,
                 jobExecutionsRolloutConfig={"maximumPerMinute": 0})
    assert job(drover.iot, job_id)["jobExecutionsRolloutConfig"]["maximumPerMinute"] == 50


# -- cancel and delete ------------------------------------------------------------------------------

def test_cancel_job_without_force_leaves_in_progress_executions_alone(drover, data):
    queued, running = things(drover, 2)
    job_id = create_job(drover.iot, arns(drover, [queued, running]), DOC)
    eventually(lambda: len(executions_for_job(drover.iot, job_id)) == 2)
    data.start_next_pending_job_execution(thingName=running)
    out = drover.iot.cancel_job(jobId=job_id, reasonCode="OPERATOR_STOP", comment="bad build")
    assert out["jobId"] == job_id and out["jobArn"] == drover.arn("job", job_id)

    canceled = eventually(lambda: (j := job(drover.iot, job_id))["status"] == "CANCELED" and j)
    assert canceled["reasonCode"] == "OPERATOR_STOP" and canceled["comment"] == "bad build"
    assert not canceled.get("forceCanceled", False)
    eventually(lambda: describe_execution(drover.iot, queued, job_id)["status"] == "CANCELED")
    assert describe_execution(drover.iot, running, job_id)["status"] == "IN_PROGRESS"
    # The device that was already working may still finish and report.
    data.update_job_execution(jobId=job_id, thingName=running, status="SUCCEEDED")
    assert describe_execution(drover.iot, running, job_id)["status"] == "SUCCEEDED"
    expect_error(drover.iot.cancel_job, "ResourceNotFoundException", 404, jobId="no-such-job")


def test_cancel_job_with_force_cancels_in_progress_executions(drover, data):
    queued, running = things(drover, 2)
    job_id = create_job(drover.iot, arns(drover, [queued, running]), DOC)
    eventually(lambda: len(executions_for_job(drover.iot, job_id)) == 2)
    data.start_next_pending_job_execution(thingName=running)
    drover.iot.cancel_job(jobId=job_id, force=True)
    canceled = eventually(lambda: (j := job(drover.iot, job_id))["status"] == "CANCELED" and j)
    assert canceled["forceCanceled"] is True
    for thing in (queued, running):
        eventually(lambda: describe_execution(drover.iot, thing, job_id)["status"] == "CANCELED")
    assert describe_execution(drover.iot, running, job_id)["forceCanceled"] is True
    # The device can no longer move its canceled execution.
    with pytest.raises(ClientError):
        data.update_job_execution(jobId=job_id, thingName=running, status="SUCCEEDED")
    assert describe_execution(drover.iot, running, job_id)["status"] == "CANCELED"


def test_cancel_job_execution(drover, data):
    queued, running = things(drover, 2)
    job_id = create_job(drover.iot, arns(drover, [queued, running]), DOC)
    eventually(lambda: len(executions_for_job(drover.iot, job_id)) == 2)
    data.start_next_pending_job_execution(thingName=running)
    version = describe_execution(drover.iot, queued, job_id)["versionNumber"]
    expect_error(drover.iot.cancel_job_execution, "VersionConflictException", 409,
                 jobId=job_id, thingName=queued, expectedVersion=version + 3)
    assert describe_execution(drover.iot, queued, job_id)["status"] == "QUEUED"
    drover.iot.cancel_job_execution(jobId=job_id, thingName=queued, expectedVersion=version)
    assert describe_execution(drover.iot, queued, job_id)["status"] == "CANCELED"

    expect_error(drover.iot.cancel_job_execution, "InvalidStateTransitionException", 409,
                 jobId=job_id, thingName=running)
    assert describe_execution(drover.iot, running, job_id)["status"] == "IN_PROGRESS"
    drover.iot.cancel_job_execution(jobId=job_id, thingName=running, force=True)
    got = describe_execution(drover.iot, running, job_id)
    assert got["status"] == "CANCELED" and got["forceCanceled"] is True
    expect_error(drover.iot.cancel_job_execution, "ResourceNotFoundException", 404,
                 jobId="no-such-job", thingName=running)


def test_delete_job_with_and_without_force(drover, data):
    [thing] = things(drover, 1)
    target = [drover.arn("thing", thing)]
    running = create_job(drover.iot, target, DOC, wait_for=1)
    data.start_next_pending_job_execution(thingName=thing)
    expect_error(drover.iot.delete_job, "InvalidStateTransitionException", 409, jobId=running)
    assert job(drover.iot, running)["status"] == "IN_PROGRESS"
    assert describe_execution(drover.iot, thing, running)["status"] == "IN_PROGRESS"

    drover.iot.delete_job(jobId=running, force=True)

    def gone():
        with pytest.raises(ClientError) as e:
            drover.iot.describe_job(jobId=running)
        return error_code(e)[1] == "ResourceNotFoundException"
    eventually(gone, timeout=30)
    listed = drover.iot.list_job_executions_for_thing(thingName=thing).get("executionSummaries", [])
    assert running not in [s["jobId"] for s in listed]

    done = create_job(drover.iot, target, DOC, wait_for=1)
    data.update_job_execution(jobId=done, thingName=thing, status="SUCCEEDED")
    eventually(lambda: job(drover.iot, done)["status"] == "COMPLETED")
    drover.iot.delete_job(jobId=done)
    eventually(lambda: done not in [j["jobId"] for j in drover.iot.list_jobs(maxResults=250).get("jobs", [])],
               timeout=30)
    expect_error(drover.iot.delete_job, "ResourceNotFoundException", 404, jobId="no-such-job")


def test_delete_job_execution_with_and_without_force(drover, data):
    [thing] = things(drover, 1)
    job_id = create_job(drover.iot, [drover.arn("thing", thing)], DOC, wait_for=1)
    data.start_next_pending_job_execution(thingName=thing)
    expect_error(drover.iot.delete_job_execution, "InvalidStateTransitionException", 409,
                 jobId=job_id, thingName=thing, executionNumber=1)
    assert describe_execution(drover.iot, thing, job_id)["status"] == "IN_PROGRESS"
    drover.iot.delete_job_execution(jobId=job_id, thingName=thing, executionNumber=1, force=True)
    expect_error(drover.iot.describe_job_execution, "ResourceNotFoundException", 404,
                 jobId=job_id, thingName=thing)

    other = create_job(drover.iot, [drover.arn("thing", thing)], DOC, wait_for=1)
    data.update_job_execution(jobId=other, thingName=thing, status="FAILED")
    drover.iot.delete_job_execution(jobId=other, thingName=thing, executionNumber=1)
    expect_error(drover.iot.describe_job_execution, "ResourceNotFoundException", 404,
                 jobId=other, thingName=thing)


# -- templates and document sources ---------------------------------------------------------------------

def test_job_templates(drover):
    [thing] = things(drover, 1)
    template_id = f"tmpl-{uuid.uuid4().hex[:8]}"
    out = drover.iot.create_job_template(jobTemplateId=template_id, document=json.dumps(DOC),
                                         description="install 2.0",
                                         timeoutConfig={"inProgressTimeoutInMinutes": 30})
    arn = f"arn:aws:iot:{drover.region}:{drover.account}:jobtemplate/{template_id}"
    assert out == {"jobTemplateArn": arn, "jobTemplateId": template_id, "ResponseMetadata": out["ResponseMetadata"]}
    got = drover.iot.describe_job_template(jobTemplateId=template_id)
    assert json.loads(got["document"]) == DOC and got["description"] == "install 2.0"
    assert got["timeoutConfig"]["inProgressTimeoutInMinutes"] == 30 and "createdAt" in got
    listed = drover.iot.list_job_templates(maxResults=250)["jobTemplates"]
    assert template_id in [t["jobTemplateId"] for t in listed]
    expect_error(drover.iot.create_job_template, "ConflictException", 409,
                 jobTemplateId=template_id, document=json.dumps({"x": 1}), description="again")
    expect_error(drover.iot_raw.create_job_template, "InvalidRequestException", 400,
                 jobTemplateId=f"{template_id}-bad", document="{nope", description="bad")
    expect_error(drover.iot.describe_job_template, "ResourceNotFoundException", 404,
                 jobTemplateId=f"{template_id}-bad")

    job_id = create_job(drover.iot, [drover.arn("thing", thing)], jobTemplateArn=arn)
    assert json.loads(drover.iot.get_job_document(jobId=job_id)["document"]) == DOC
    described = job(drover.iot, job_id)
    assert described["jobTemplateArn"] == arn
    assert described["timeoutConfig"]["inProgressTimeoutInMinutes"] == 30

    # A template made from an existing job takes the job's document.
    from_job = f"{template_id}-fromjob"
    drover.iot.create_job_template(jobTemplateId=from_job, jobArn=drover.arn("job", job_id), description="copy")
    assert json.loads(drover.iot.describe_job_template(jobTemplateId=from_job)["document"]) == DOC

    drover.iot.delete_job_template(jobTemplateId=template_id)
    expect_error(drover.iot.describe_job_template, "ResourceNotFoundException", 404, jobTemplateId=template_id)
    assert json.loads(drover.iot.get_job_document(jobId=job_id)["document"]) == DOC, \
        "a job keeps its document after its template is deleted"


def test_document_source_from_drovers_s3(drover, tmp_path):
    [thing] = things(drover, 1)
    bucket = f"jobdocs-{uuid.uuid4().hex[:8]}"
    drover.awscli("s3", "mb", f"s3://{bucket}")
    doc_file = tmp_path / "job.json"
    doc_file.write_text(json.dumps(DOC))
    drover.awscli("s3", "cp", "--only-show-errors", str(doc_file), f"s3://{bucket}/jobs/install.json")
    (tmp_path / "bad.json").write_text("{not json")
    drover.awscli("s3", "cp", "--only-show-errors", str(tmp_path / "bad.json"), f"s3://{bucket}/jobs/bad.json")

    for source in (f"s3://{bucket}/jobs/install.json",
                   f"https://s3.{drover.region}.amazonaws.com/{bucket}/jobs/install.json"):
        job_id = f"src-{uuid.uuid4().hex[:8]}"
        out = drover.aws("create-job", "--job-id", job_id, "--targets", drover.arn("thing", thing),
                         "--document-source", source).json
        assert out["jobId"] == job_id
        assert json.loads(drover.iot.get_job_document(jobId=job_id)["document"]) == DOC, source
        described = drover.iot.describe_job(jobId=job_id)
        assert described.get("documentSource") == source, described

    for source, what in ((f"s3://{bucket}/jobs/missing.json", "missing object"),
                         (f"s3://{bucket}/jobs/bad.json", "not JSON")):
        job_id = f"src-{uuid.uuid4().hex[:8]}"
        res = drover.aws("create-job", "--job-id", job_id, "--targets", drover.arn("thing", thing),
                         "--document-source", source, expect_rc=255)
        assert "(InvalidRequestException)" in res.stderr or "(ResourceNotFoundException)" in res.stderr, (what, res)
        assert_no_job(drover, job_id)


def test_document_source_from_any_http_url(drover, tmp_path):
    """A documentSource outside drover's artifact store is fetched with a GET at CreateJob."""
    import http.server
    import threading

    big = json.dumps({"pad": "x" * (32 * 1024)})
    pages = {"/install.json": json.dumps(DOC), "/bad.json": "{not json", "/big.json": big}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()  # no Content-Length: the size limit must hold while reading
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        [thing] = things(drover, 1)
        job_id = f"web-{uuid.uuid4().hex[:8]}"
        drover.iot.create_job(jobId=job_id, targets=[drover.arn("thing", thing)],
                              documentSource=f"{base}/install.json")
        assert json.loads(drover.iot.get_job_document(jobId=job_id)["document"]) == DOC
        for path, what in (("/missing.json", "404"), ("/bad.json", "not JSON"), ("/big.json", "over 32 KB"),
                           (":1/x.json", "nothing listening")):
            job_id = f"web-{uuid.uuid4().hex[:8]}"
            source = f"{base}{path}" if path.startswith("/") else f"http://127.0.0.1{path}"
            with pytest.raises(ClientError) as e:
                drover.iot.create_job(jobId=job_id, targets=[drover.arn("thing", thing)], documentSource=source)
            assert error_code(e)[:2] == (400, "InvalidRequestException"), (what, e.value)
            assert_no_job(drover, job_id)
    finally:
        server.shutdown()


# -- targeting ------------------------------------------------------------------------------------------

def test_continuous_job_reaches_a_thing_added_to_a_static_group_later(drover):
    [first] = things(drover, 1)
    gname, garn = group_of(drover, [first])
    continuous = create_job(drover.iot, [garn], DOC, targetSelection="CONTINUOUS")
    snapshot = create_job(drover.iot, [garn], DOC, targetSelection="SNAPSHOT")
    eventually(lambda: [thing_of(s) for s in executions_for_job(drover.iot, continuous)] == [first])

    [later] = things(drover, 1)
    drover.iot.add_thing_to_thing_group(thingGroupName=gname, thingName=later)
    eventually(lambda: sorted(thing_of(s) for s in executions_for_job(drover.iot, continuous)) == sorted([first, later]),
               timeout=30)
    assert describe_execution(drover.iot, later, continuous)["status"] == "QUEUED"
    # The snapshot job's targets were fixed when it was created.
    assert [thing_of(s) for s in executions_for_job(drover.iot, snapshot)] == [first]
    # A continuous job never completes by itself.
    assert job(drover.iot, continuous)["status"] == "IN_PROGRESS"


def test_continuous_job_reaches_things_that_join_a_dynamic_group_later(drover):
    enable_indexing(drover)
    line = f"line{uuid.uuid4().hex[:6]}"
    [old] = things(drover, 1, attributes={"line": line, "app_version": "1.0"})
    group = drover.iot.create_dynamic_thing_group(
        thingGroupName=drover.name("dyn"), queryString=f"attributes.line:{line} AND attributes.app_version < 2.0")
    eventually(lambda: drover.iot.list_things_in_thing_group(thingGroupName=group["thingGroupName"])["things"] == [old])
    continuous = create_job(drover.iot, [group["thingGroupArn"]], DOC, targetSelection="CONTINUOUS")
    eventually(lambda: [thing_of(s) for s in executions_for_job(drover.iot, continuous)] == [old])

    # A new thing that matches the query, and an existing one whose attribute changes to match.
    [new] = things(drover, 1, attributes={"line": line, "app_version": "1.5"})
    [moved] = things(drover, 1, attributes={"line": line, "app_version": "3.0"})
    drover.iot.update_thing(thingName=moved, attributePayload={"attributes": {"app_version": "1.9"}, "merge": True})
    eventually(lambda: sorted(thing_of(s) for s in executions_for_job(drover.iot, continuous)) == sorted([old, new, moved]),
               timeout=30)
    # A thing that never matched never gets one.
    [other] = things(drover, 1, attributes={"line": line, "app_version": "2.5"})
    assert drover.iot.list_job_executions_for_thing(thingName=other).get("executionSummaries", []) == []


def test_rollout_maximum_per_minute_queues_only_that_many_in_the_first_minute(drover):
    members = things(drover, 10)
    _, garn = group_of(drover, members)
    job_id = create_job(drover.iot, [garn], DOC, jobExecutionsRolloutConfig={"maximumPerMinute": 3})
    eventually(lambda: len(executions_for_job(drover.iot, job_id)) >= 3)
    created_at = job(drover.iot, job_id)["createdAt"]
    executions = executions_for_job(drover.iot, job_id)
    details = job(drover.iot, job_id)["jobProcessDetails"]
    elapsed = time.time() - created_at.timestamp()
    # The counts are only meaningful while the job's first minute lasts.
    if elapsed < 55:
        assert len(executions) == 3, executions
        assert details["numberOfQueuedThings"] == 3, details
    assert len({thing_of(s) for s in executions}) == len(executions)
    assert {thing_of(s) for s in executions} <= set(members)
    assert job(drover.iot, job_id)["jobExecutionsRolloutConfig"]["maximumPerMinute"] == 3


@pytest.mark.skipif(not os.environ.get("DROVER_TEST_DATABASE_URL"),
                    reason="two nodes share one PostgreSQL")
def test_two_nodes_on_one_database_spend_one_rollout_rate(tmp_path):
    # Both nodes' engines roll out every job they find in the shared database; CreateJobs go to
    # both. Each job's minute still releases only maximumPerMinute executions in all.
    node1 = Drover(DroverProcess(tmp_path / "node1")).start()
    node2 = Drover(DroverProcess(tmp_path / "node2", database_url=node1.server.database_url)).start()
    try:
        members = things(node1, 30)
        _, garn = group_of(node1, members)
        started = time.time()
        job_ids = [create_job(node.iot, [garn], DOC, jobExecutionsRolloutConfig={"maximumPerMinute": 4})
                   for node in (node1, node2, node1, node2)]
        time.sleep(3)  # several engine ticks on each node
        for job_id in job_ids:
            executions = executions_for_job(node2.iot, job_id)
            details = job(node1.iot, job_id)["jobProcessDetails"]
            if time.time() - started < 55:
                assert len(executions) == 4, (job_id, executions)
                assert details["numberOfQueuedThings"] == 4, details
    finally:
        node2.server.stop()
        node1.server.stop()

# -- abort, retry, events ------------------------------------------------------------------------------

def test_abort_criteria_cancel_the_job_after_failures(drover, data):
    names = things(drover, 4)
    job_id = create_job(drover.iot, arns(drover, names), DOC, abortConfig={"criteriaList": [
        {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50.0, "minNumberOfExecutedThings": 2}]})
    eventually(lambda: len(executions_for_job(drover.iot, job_id)) == 4)
    data.update_job_execution(jobId=job_id, thingName=names[0], status="FAILED")
    # One failure is below minNumberOfExecutedThings: the job goes on.
    assert job(drover.iot, job_id)["status"] == "IN_PROGRESS"
    data.update_job_execution(jobId=job_id, thingName=names[1], status="FAILED")
    aborted = eventually(lambda: (j := job(drover.iot, job_id))["status"] == "CANCELED" and j, timeout=30)
    assert aborted.get("reasonCode"), f"an aborted job says why: {aborted}"
    for thing in names[2:]:
        eventually(lambda: describe_execution(drover.iot, thing, job_id)["status"] == "CANCELED")
    assert describe_execution(drover.iot, names[0], job_id)["status"] == "FAILED"


def test_abort_criteria_not_met_lets_the_job_complete(drover, data):
    names = things(drover, 4)
    job_id = create_job(drover.iot, arns(drover, names), DOC, abortConfig={"criteriaList": [
        {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 60.0, "minNumberOfExecutedThings": 4}]})
    eventually(lambda: len(executions_for_job(drover.iot, job_id)) == 4)
    for thing, status in zip(names, ["FAILED", "SUCCEEDED", "SUCCEEDED", "FAILED"]):
        data.update_job_execution(jobId=job_id, thingName=thing, status=status)
    done = eventually(lambda: (j := job(drover.iot, job_id))["status"] in ("COMPLETED", "CANCELED") and j)
    assert done["status"] == "COMPLETED", "2 of 4 failed is 50%, below the 60% threshold"


def test_retry_config_queues_a_new_execution_number_after_a_failure(drover, data):
    [thing] = things(drover, 1)
    job_id = create_job(drover.iot, [drover.arn("thing", thing)], DOC,
                        jobExecutionsRetryConfig={"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 1}]},
                        wait_for=1)
    started = data.start_next_pending_job_execution(thingName=thing)["execution"]
    assert started["executionNumber"] == 1
    data.update_job_execution(jobId=job_id, thingName=thing, status="FAILED", executionNumber=1)

    def retried():
        latest = describe_execution(drover.iot, thing, job_id)
        return latest["executionNumber"] == 2 and latest
    latest = eventually(retried, timeout=30)
    assert latest["status"] == "QUEUED", latest
    summaries = drover.iot.list_job_executions_for_thing(thingName=thing, jobId=job_id)["executionSummaries"]
    newest = max(summaries, key=lambda s: s["jobExecutionSummary"]["executionNumber"])["jobExecutionSummary"]
    assert newest["executionNumber"] == 2 and newest["retryAttempt"] == 1, summaries
    assert describe_execution(drover.iot, thing, job_id, execution_number=1)["status"] == "FAILED"
    assert job(drover.iot, job_id)["status"] == "IN_PROGRESS"

    again = data.start_next_pending_job_execution(thingName=thing)["execution"]
    assert again["jobId"] == job_id and again["executionNumber"] == 2
    data.update_job_execution(jobId=job_id, thingName=thing, status="FAILED", executionNumber=2)
    # The one retry is used up: the job completes with no third execution.
    eventually(lambda: job(drover.iot, job_id)["status"] == "COMPLETED", timeout=30)
    latest = describe_execution(drover.iot, thing, job_id)
    assert latest["executionNumber"] == 2 and latest["status"] == "FAILED", latest


def test_job_events_reach_a_subscribed_device(fresh_drover, tmp_path):
    d = fresh_drover
    data = jobs_data_client(d)
    config = d.iot.describe_event_configurations()["eventConfigurations"]
    assert config.get("JOB_EXECUTION", {}).get("Enabled") is False, config
    d.iot.update_event_configurations(eventConfigurations={"JOB": {"Enabled": True},
                                                           "JOB_EXECUTION": {"Enabled": True}})
    config = d.iot.describe_event_configurations()["eventConfigurations"]
    assert config["JOB"] == {"Enabled": True} and config["JOB_EXECUTION"] == {"Enabled": True}

    observer = PahoDevice(provision_jobs_device(d, tmp_path, policy=OBSERVER_POLICY))
    observer.connect()
    [thing] = things(d, 1)
    job_id = f"evt-{uuid.uuid4().hex[:8]}"
    for topic in (f"$aws/events/jobExecution/{job_id}/#", f"$aws/events/job/{job_id}/#"):
        assert not observer.subscribe(topic)[0].is_failure
    create_job(d.iot, [d.arn("thing", thing)], DOC, job_id=job_id, wait_for=1)
    data.update_job_execution(jobId=job_id, thingName=thing, status="SUCCEEDED", statusDetails={"fw": "2.0"})

    got = {}
    while len(got) < 2:
        msg = observer.next_message(timeout=15)
        got[msg.topic] = json.loads(msg.payload)
    execution_event = got[f"$aws/events/jobExecution/{job_id}/succeeded"]
    assert execution_event["eventType"] == "JOB_EXECUTION"
    assert execution_event["operation"] == "succeeded"
    assert execution_event["jobId"] == job_id
    assert execution_event["thingArn"] == d.arn("thing", thing)
    assert execution_event["status"] == "SUCCEEDED"
    assert execution_event["statusDetails"] == {"fw": "2.0"}
    assert execution_event["eventId"] and execution_event["timestamp"]
    job_event = got[f"$aws/events/job/{job_id}/completed"]
    assert job_event["eventType"] == "JOB" and job_event["operation"] == "completed"
    assert job_event["jobId"] == job_id and job_event["status"] == "COMPLETED"
    assert job_event["targetSelection"] == "SNAPSHOT"
    assert job_event["targets"] == [d.arn("thing", thing)]
    assert job_event["jobProcessDetails"]["numberOfSucceededThings"] == 1

    # Turned off again, nothing more is published.
    d.iot.update_event_configurations(eventConfigurations={"JOB": {"Enabled": False},
                                                           "JOB_EXECUTION": {"Enabled": False}})
    quiet = f"evt-{uuid.uuid4().hex[:8]}"
    observer.subscribe(f"$aws/events/jobExecution/{quiet}/#")
    create_job(d.iot, [d.arn("thing", thing)], DOC, job_id=quiet, wait_for=1)
    data.update_job_execution(jobId=quiet, thingName=thing, status="SUCCEEDED")
    assert describe_execution(d.iot, thing, quiet)["status"] == "SUCCEEDED"
    observer.no_message(wait=2)
    observer.close()


def test_document_source_as_a_url_of_drovers_own_s3_endpoint(drover, tmp_path):
    """The URL a drover user has for an object: drover's S3 endpoint, path-style."""
    [thing] = things(drover, 1)
    bucket = f"jobdocs-{uuid.uuid4().hex[:8]}"
    drover.awscli("s3", "mb", f"s3://{bucket}")
    doc_file = tmp_path / "job.json"
    doc_file.write_text(json.dumps(DOC))
    drover.awscli("s3", "cp", "--only-show-errors", str(doc_file), f"s3://{bucket}/install.json")
    job_id = f"src-{uuid.uuid4().hex[:8]}"
    drover.aws("create-job", "--job-id", job_id, "--targets", drover.arn("thing", thing),
               "--document-source", f"{drover.s3_endpoint}/{bucket}/install.json")
    assert json.loads(drover.iot.get_job_document(jobId=job_id)["document"]) == DOC


# -- maintenance windows ---------------------------------------------------------------------------------

def test_maintenance_windows_need_valid_aws_cron_and_describe_the_next_rollouts(drover):
    import datetime

    [thing] = things(drover, 1)
    target = [drover.arn("thing", thing)]
    start = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)).replace(second=0, microsecond=0)
    schedule = {"startTime": start.strftime("%Y-%m-%dT%H:%M")}

    def windows(*expressions, minutes=60):
        return {**schedule, "maintenanceWindows": [{"startTime": e, "durationInMinutes": minutes} for e in expressions]}

    bad = [
        "cron(0 22 * * SUN *)",       # both day fields given: one must be '?'
        "cron(0 22 ? * ? *)",         # both '?'
        "cron(0 22 ? * SUN)",         # five fields
        "cron(0 0 22 ? * SUN *)",     # seven fields (a seconds field, Quartz style)
        "cron(0 24 ? * SUN *)",       # hour out of range
        "cron(0 22 ? * 0 *)",         # day of week counts 1 (Sunday) to 7
        "cron(0 22 ? * 2#6 *)",       # there is no sixth Monday
        "cron(0 22 ? * SUN 2200)",    # years end at 2199
        "cron(0 22 ? * FUNDAY *)",
        "rate(5 minutes)",
    ]
    for i, expression in enumerate(bad):
        job_id = f"bad-window-{i}"
        message = expect_error(drover.iot_raw.create_job, "InvalidRequestException", 400, jobId=job_id,
                               targets=target, document=json.dumps(DOC), schedulingConfig=windows(expression))
        assert expression in message or "cron" in message, message
        assert_no_job(drover, job_id)
    expect_error(drover.iot_raw.create_job_template, "InvalidRequestException", 400, jobTemplateId="bad-window-template",
                 description="d", document=json.dumps(DOC), maintenanceWindows=[{"startTime": bad[0], "durationInMinutes": 60}])
    expect_error(drover.iot.describe_job_template, "ResourceNotFoundException", 404, jobTemplateId="bad-window-template")
    assert drover.iot.list_job_executions_for_thing(thingName=thing).get("executionSummaries", []) == []

    # A valid window: the job waits for its start, and DescribeJob lists the next seven window
    # starts (AWS's scheduledJobRollouts), Sundays at 22:00 UTC from the start time on.
    job_id = create_job(drover.iot, target, DOC, schedulingConfig=windows("cron(0 22 ? * SUN *)"))
    described = job(drover.iot, job_id)
    assert described["status"] == "SCHEDULED"
    assert described["schedulingConfig"]["maintenanceWindows"] == [{"startTime": "cron(0 22 ? * SUN *)", "durationInMinutes": 60}]
    rollouts = [datetime.datetime.strptime(r["startTime"], "%Y-%m-%dT%H:%M").replace(tzinfo=datetime.timezone.utc)
                for r in described["scheduledJobRollouts"]]
    assert len(rollouts) == 7, described["scheduledJobRollouts"]
    assert all(r.weekday() == 6 and (r.hour, r.minute) == (22, 0) for r in rollouts), rollouts
    assert rollouts[0] >= start and rollouts[0] - start < datetime.timedelta(days=7)
    assert all(b - a == datetime.timedelta(days=7) for a, b in zip(rollouts, rollouts[1:]))
    assert drover.iot.list_job_executions_for_thing(thingName=thing).get("executionSummaries", []) == []


def test_a_closed_maintenance_window_holds_the_rollout_an_open_one_lets_it_run(drover):
    # CreateJob releases a small job's executions at once, so a job created outside every
    # window showing none proves the gate without waiting on a clock.
    closed_thing, open_thing = things(drover, 2)
    closed = create_job(drover.iot, arns(drover, [closed_thing]), DOC, schedulingConfig={
        "maintenanceWindows": [{"startTime": "cron(0 0 1 1 ? 2199)", "durationInMinutes": 1}]})
    always = create_job(drover.iot, arns(drover, [open_thing]), DOC, schedulingConfig={
        "maintenanceWindows": [{"startTime": "cron(* * * * ? *)", "durationInMinutes": 1}]})
    eventually(lambda: executions_for_job(drover.iot, always))
    assert executions_for_job(drover.iot, always)[0]["jobExecutionSummary"]["status"] == "QUEUED"

    held = job(drover.iot, closed)
    assert held["status"] == "IN_PROGRESS"
    assert held["jobProcessDetails"]["numberOfQueuedThings"] == 0
    assert held["scheduledJobRollouts"][0] == {"startTime": "2199-01-01T00:00"}
    assert executions_for_job(drover.iot, closed) == []
    assert drover.iot.list_job_executions_for_thing(thingName=closed_thing).get("executionSummaries", []) == []
