"""The AWS IoT Device SDK for Python v1's own jobs sample (`samples/jobs/jobsSample.py` of
AWSIoTPythonSDK 1.6.2) runs unchanged against drover and processes a job. The sample is taken
from the package's source distribution at test time (`pip download --no-binary`), never copied
into this repository.

The operator side is the version-targeted update of DESIGN.md, done with awscli as on AWS: a
thing with `app_version=1.0`, a dynamic group `attributes.app_version < 2.0`, a certificate from
`create-keys-and-certificate --set-as-active` attached to the thing with a policy scoped to that
thing's jobs topics, and `create-job --target-selection SNAPSHOT --targets <group ARN>`.

What AWS's guide says the sample does: start-next → the execution arrives IN_PROGRESS with the
job document → it reports SUCCEEDED with `statusDetails {"HandledBy": "ClientToken: <clientId>"}`
and the execution's versionNumber as expectedVersion → the next notify-next carries no
execution (the queue is empty) → it prints its stats and exits 0."""

import json
import subprocess
import sys
import tarfile

import pytest

from jobs_helpers import describe_execution, enable_indexing, job
from mqtt_devices import eventually, policy_text

SDK_VERSION = "1.6.2"
# The sample's default client id (its `-id` flag), which the policy must let connect.
SAMPLE_CLIENT_ID = "basicJobsSampleClient"


@pytest.fixture(scope="module")
def jobs_sample(tmp_path_factory):
    """samples/jobs/jobsSample.py from the AWSIoTPythonSDK source distribution on PyPI."""
    folder = tmp_path_factory.mktemp("sdk1-sdist")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
         f"AWSIoTPythonSDK=={SDK_VERSION}", "-d", str(folder)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"pip download failed:\n{proc.stdout}\n{proc.stderr}"
    archives = list(folder.glob("*.tar.gz"))
    assert len(archives) == 1, f"expected one sdist, got {archives}"
    with tarfile.open(archives[0]) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("samples/jobs/jobsSample.py"))
        tar.extract(member, folder, filter="data")
    sample = folder / member.name
    assert "AWSIoTMQTTThingJobsClient" in sample.read_text()
    return sample


def sample_policy(drover, thing):
    # Thing-scoped by name: the sample connects as `basicJobsSampleClient`, not as the thing, and
    # AWS resolves thing policy variables from the client id for non-exclusive attachments.
    jobs = f"$aws/things/{thing}/jobs"
    return policy_text(drover, {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect",
             "Resource": f"arn:aws:iot:{{region}}:{{account}}:client/{SAMPLE_CLIENT_ID}"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": f"arn:aws:iot:{{region}}:{{account}}:topic/{jobs}/*"},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": f"arn:aws:iot:{{region}}:{{account}}:topicfilter/{jobs}/*"},
        ],
    })


def test_aws_iot_python_sdk_v1_jobs_sample_processes_a_job(fresh_drover, tmp_path, jobs_sample):
    d = fresh_drover
    thing = "sample-device-1"
    enable_indexing(d)
    d.aws("create-thing", "--thing-name", thing,
          "--attribute-payload", json.dumps({"attributes": {"app_version": "1.0"}}))
    group = d.aws("create-dynamic-thing-group", "--thing-group-name", "app_below_2",
                  "--query-string", "attributes.app_version < 2.0").json
    eventually(lambda: thing in d.aws("list-things-in-thing-group", "--thing-group-name",
                                      "app_below_2").json["things"])

    created = d.aws("create-keys-and-certificate", "--set-as-active").json
    cert, key = tmp_path / "cert.pem", tmp_path / "private.key"
    cert.write_text(created["certificatePem"])
    key.write_text(created["keyPair"]["PrivateKey"])
    d.aws("create-policy", "--policy-name", "sample-jobs", "--policy-document", sample_policy(d, thing))
    d.aws("attach-policy", "--policy-name", "sample-jobs", "--target", created["certificateArn"])
    d.aws("attach-thing-principal", "--thing-name", thing, "--principal", created["certificateArn"])

    document = {"operation": "install", "app_version": "2.0", "app_url": "https://example.com/app-2.0"}
    out = d.aws("create-job", "--job-id", "app-2-0", "--target-selection", "SNAPSHOT",
                "--targets", group["thingGroupArn"], "--document", json.dumps(document)).json
    assert out["jobArn"] == d.arn("job", "app-2-0")
    # AWS creates executions asynchronously; the sample's first start-next must find it.
    eventually(lambda: d.aws("list-job-executions-for-job", "--job-id", "app-2-0").json["executionSummaries"])

    try:
        proc = subprocess.run(
            [sys.executable, str(jobs_sample), "-e", "localhost", "-p", str(d.server.mqtt_port),
             "-r", d.ca, "-c", str(cert), "-k", str(key), "-n", thing],
            cwd=tmp_path, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise AssertionError(f"the sample did not exit:\nstdout:\n{out}\nstderr:\n{err[-6000:]}"
                             f"\nexecution: {describe_execution(d.iot, thing, 'app-2-0')}") from None
    transcript = f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, transcript
    assert "Done processing jobs" in proc.stdout, transcript
    assert "Executing job ID, version, number: app-2-0, " in proc.stdout, transcript
    # The sample prints json.dumps of the document it received: the same JSON object (member
    # order is not part of a JSON object's meaning).
    received = json.loads(proc.stdout.split("With jobDocument: ", 1)[1].splitlines()[0])
    assert received == document, transcript
    stats = json.loads(proc.stdout.split("Stats: ", 1)[1].splitlines()[0])
    assert stats == {"jobsStarted": 1, "jobsSucceeded": 1, "jobsRejected": 0}, transcript

    execution = describe_execution(d.iot, thing, "app-2-0")
    assert execution["status"] == "SUCCEEDED", execution
    assert execution["thingArn"] == d.arn("thing", thing)
    details = execution["statusDetails"]["detailsMap"]
    assert details["HandledBy"] == f"ClientToken: {SAMPLE_CLIENT_ID}", execution

    # A snapshot job whose only execution is terminal is complete.
    done = eventually(lambda: (j := job(d.iot, "app-2-0"))["status"] == "COMPLETED" and j)
    assert done["jobProcessDetails"]["numberOfSucceededThings"] == 1, done
    assert done["targetSelection"] == "SNAPSHOT"
    assert done["targets"] == [group["thingGroupArn"]]
