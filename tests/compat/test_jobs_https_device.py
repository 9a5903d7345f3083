"""Devices on the jobs data plane over HTTPS with their client certificate, as AWS's "Jobs device
HTTP API" guide describes: no SigV4, the TLS client certificate is the identity, and the
device's AWS IoT policy (`iotjobsdata:*` — or the older `iot:*` spelling — on
`thing/{thingName}`) decides. Clients: `requests` with cert=(cert, key) and curl.

Every refusal is checked to change nothing: no credentials, an INACTIVE, REVOKED or
unregistered certificate, a policy without the jobs actions, another thing's execution, and
control-plane operations, which a certificate never authorizes. SigV4 clients on the same
listener (which now asks for a client certificate) keep working: boto3 is used throughout."""

import json
import subprocess
import uuid

import pytest
import requests

from jobs_helpers import JOBS_POLICY, create_job, describe_execution, provision_jobs_device

DOC = {"operation": "install", "url": "https://example.com/fw.bin"}

# AWS's "AWS IoT Core policies for HTTPS protocol" example, scoped to the device's own thing.
HTTPS_JOBS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow",
         "Action": ["iotjobsdata:GetPendingJobExecutions", "iotjobsdata:StartNextPendingJobExecution",
                    "iotjobsdata:DescribeJobExecution", "iotjobsdata:UpdateJobExecution"],
         "Resource": "arn:aws:iot:{region}:{account}:thing/${{iot:Connection.Thing.ThingName}}"},
    ],
}

# The spelling of AWS's older basic job policy example, naming the thing.
def legacy_policy(thing):
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow",
             "Action": ["iot:GetPendingJobExecutions", "iot:StartNextPendingJobExecution",
                        "iot:DescribeJobExecution", "iot:UpdateJobExecution"],
             "Resource": "arn:aws:iot:{region}:{account}:thing/" + thing},
        ],
    }


class HttpsDevice:
    """A device program calling the jobs data plane with `requests` and its certificate, on the
    endpoint DescribeEndpoint(iot:Jobs) names."""

    def __init__(self, drover, device):
        self.device = device
        self.thing = device.thing
        address = drover.iot.describe_endpoint(endpointType="iot:Jobs")["endpointAddress"]
        self.base = f"https://{address}"
        self.ca = drover.ca
        self.cert = (str(device.cert_file), str(device.key_file))

    def call(self, method, path, body=None, thing=None):
        url = f"{self.base}/things/{thing or self.thing}/jobs{path}"
        data = None if body is None else json.dumps(body)
        return self.request(method, url, data=data, headers={"Content-Type": "application/json"})

    def request(self, method, url, **kwargs):
        # verify is passed on every call: requests lets REQUESTS_CA_BUNDLE override a
        # Session's own verify setting.
        return requests.request(method, url, cert=self.cert, verify=self.ca, timeout=30, **kwargs)


def device(drover, tmp_path, policy=HTTPS_JOBS_POLICY, thing=None):
    thing = thing or drover.name("hdev")
    if callable(policy):
        policy = policy(thing)
    return HttpsDevice(drover, provision_jobs_device(drover, tmp_path, thing=thing, policy=policy))


def new_job(drover, things):
    return create_job(drover.iot, [drover.arn("thing", t) for t in things], DOC, wait_for=len(things))


def assert_forbidden(response):
    assert response.status_code == 403, (response.status_code, response.text)
    assert response.headers.get("x-amzn-ErrorType"), response.headers
    assert "message" in response.json(), response.text


def snapshot(drover, thing, job_id):
    e = describe_execution(drover.iot, thing, job_id)
    return {k: e.get(k) for k in ("status", "versionNumber", "statusDetails", "executionNumber")}


def every_operation(dev, job_id, thing=None):
    """The four data-plane calls, each of which would change or reveal the execution."""
    return [
        dev.call("GET", "", thing=thing),
        dev.call("GET", f"/{job_id}?includeJobDocument=true", thing=thing),
        dev.call("PUT", "/$next", {"statusDetails": {"step": "x"}}, thing=thing),
        dev.call("POST", f"/{job_id}", {"status": "SUCCEEDED"}, thing=thing),
    ]


def test_device_works_its_queue_with_its_certificate(drover, tmp_path):
    dev = device(drover, tmp_path)
    job_id = new_job(drover, [dev.thing])

    pending = dev.call("GET", "")
    assert pending.status_code == 200, pending.text
    body = pending.json()
    assert [j["jobId"] for j in body["queuedJobs"]] == [job_id], body
    assert body["inProgressJobs"] == []
    assert isinstance(body["queuedJobs"][0]["queuedAt"], int)

    started = dev.call("PUT", "/$next", {"statusDetails": {"step": "download"}, "stepTimeoutInMinutes": 10})
    assert started.status_code == 200, started.text
    execution = started.json()["execution"]
    assert execution["jobId"] == job_id and execution["thingName"] == dev.thing
    assert execution["status"] == "IN_PROGRESS"
    assert json.loads(execution["jobDocument"]) == DOC
    assert execution["statusDetails"] == {"step": "download"}

    described = dev.call("GET", f"/{job_id}?includeJobDocument=true")
    assert described.status_code == 200, described.text
    assert described.json()["execution"]["versionNumber"] == execution["versionNumber"]
    assert json.loads(described.json()["execution"]["jobDocument"]) == DOC

    updated = dev.call("POST", f"/{job_id}", {
        "status": "SUCCEEDED", "statusDetails": {"step": "done"},
        "expectedVersion": execution["versionNumber"], "includeJobExecutionState": True})
    assert updated.status_code == 200, updated.text
    assert updated.json()["executionState"]["status"] == "SUCCEEDED"

    final = describe_execution(drover.iot, dev.thing, job_id)
    assert final["status"] == "SUCCEEDED"
    assert final["statusDetails"]["detailsMap"] == {"step": "done"}
    assert dev.call("GET", "").json() == {"inProgressJobs": [], "queuedJobs": []}


def test_older_iot_action_spelling_and_curl(drover, tmp_path):
    dev = device(drover, tmp_path, policy=legacy_policy)
    job_id = new_job(drover, [dev.thing])
    cert, key = dev.cert

    def curl(method, path, body=None):
        args = ["curl", "-sS", "--cacert", drover.ca, "--cert", cert, "--key", key, "-X", method,
                "-w", "\n%{http_code}", f"{dev.base}/things/{dev.thing}/jobs{path}"]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
        out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
        text, _, code = out.rpartition("\n")
        return int(code), json.loads(text)

    code, body = curl("GET", "")
    assert code == 200 and [j["jobId"] for j in body["queuedJobs"]] == [job_id], body
    code, body = curl("PUT", "/$next", {})
    assert code == 200 and body["execution"]["status"] == "IN_PROGRESS", body
    code, body = curl("POST", f"/{job_id}", {"status": "FAILED", "statusDetails": {"why": "disk"}})
    assert code == 200, body
    assert describe_execution(drover.iot, dev.thing, job_id)["status"] == "FAILED"


def test_no_credentials_at_all_are_refused(drover, tmp_path):
    dev = device(drover, tmp_path)
    job_id = new_job(drover, [dev.thing])
    before = snapshot(drover, dev.thing, job_id)
    anonymous = HttpsDevice(drover, dev.device)
    anonymous.cert = None
    for response in every_operation(anonymous, job_id):
        assert_forbidden(response)
        assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert snapshot(drover, dev.thing, job_id) == before


@pytest.mark.parametrize("status", ["INACTIVE", "REVOKED"])
def test_a_certificate_that_is_not_active_is_refused(drover, tmp_path, status):
    dev = device(drover, tmp_path)
    job_id = new_job(drover, [dev.thing])
    before = snapshot(drover, dev.thing, job_id)
    drover.iot.update_certificate(certificateId=dev.device.cert_id, newStatus=status)
    for response in every_operation(dev, job_id):
        assert_forbidden(response)
    assert snapshot(drover, dev.thing, job_id) == before


def test_an_unregistered_certificate_is_refused(drover, tmp_path):
    dev = device(drover, tmp_path)
    job_id = new_job(drover, [dev.thing])
    before = snapshot(drover, dev.thing, job_id)
    folder = tmp_path / "self-signed"
    folder.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={dev.thing}", "-keyout", str(folder / "k.pem"), "-out", str(folder / "c.pem")],
                   check=True, capture_output=True, timeout=60)
    stranger = HttpsDevice(drover, dev.device)
    stranger.cert = (str(folder / "c.pem"), str(folder / "k.pem"))
    for response in every_operation(stranger, job_id):
        assert_forbidden(response)
    assert snapshot(drover, dev.thing, job_id) == before


def test_the_policy_decides(drover, tmp_path):
    # A device whose policy grants only the MQTT jobs topics (no data-plane actions).
    mqtt_only = device(drover, tmp_path, policy=JOBS_POLICY)
    # Two devices with the thing-scoped HTTPS policy: neither may touch the other's execution.
    a, b = device(drover, tmp_path), device(drover, tmp_path)
    job_id = new_job(drover, [mqtt_only.thing, a.thing, b.thing])
    before = {t: snapshot(drover, t, job_id) for t in (mqtt_only.thing, a.thing, b.thing)}

    for response in every_operation(mqtt_only, job_id):
        assert_forbidden(response)
    for response in every_operation(a, job_id, thing=b.thing):
        assert_forbidden(response)
    # A thing that does not exist is no different from another's.
    for response in every_operation(a, job_id, thing="no-such-thing"):
        assert_forbidden(response)
    assert {t: snapshot(drover, t, job_id) for t in before} == before

    # An explicit Deny in a second policy wins over the Allow.
    deny = drover.name("deny")
    drover.iot.create_policy(policyName=deny, policyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "iotjobsdata:UpdateJobExecution", "Resource": "*"}]}))
    drover.iot.attach_policy(policyName=deny, target=a.device.cert_arn)
    assert_forbidden(a.call("POST", f"/{job_id}", {"status": "SUCCEEDED"}))
    assert snapshot(drover, a.thing, job_id) == before[a.thing]
    assert a.call("GET", "").status_code == 200


def test_a_certificate_never_reaches_the_control_plane(drover, tmp_path):
    dev = device(drover, tmp_path)
    # Even a policy allowing every action authorizes no control-plane operation.
    everything = drover.name("all")
    drover.iot.create_policy(policyName=everything, policyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}))
    drover.iot.attach_policy(policyName=everything, target=dev.device.cert_arn)
    job_id = new_job(drover, [dev.thing])
    before = snapshot(drover, dev.thing, job_id)
    r, base = dev.request, dev.base
    new_job_id = f"job-{uuid.uuid4().hex[:8]}"
    refused = [
        r("GET", f"{base}/things"),
        r("GET", f"{base}/jobs/{job_id}"),
        r("PUT", f"{base}/jobs/{new_job_id}", json={"targets": [drover.arn("thing", dev.thing)],
                                                     "document": json.dumps(DOC)}),
        r("PUT", f"{base}/things/{dev.thing}/jobs/{job_id}/cancel", json={}),
        r("DELETE", f"{base}/things/{dev.thing}/jobs/{job_id}/executionNumber/1?force=true"),
        r("POST", f"{base}/things/{drover.name('new')}", json={}),
    ]
    for response in refused:
        assert_forbidden(response)
        assert response.headers["x-amzn-ErrorType"] == "ForbiddenException"
    assert snapshot(drover, dev.thing, job_id) == before
    assert [j["jobId"] for j in drover.iot.list_jobs()["jobs"] if j["jobId"] == new_job_id] == []
    # GET /things/{thing}/jobs with a certificate is the data plane's GetPendingJobExecutions,
    # not the control plane's ListJobExecutionsForThing.
    assert set(dev.call("GET", "").json()) == {"inProgressJobs", "queuedJobs"}
