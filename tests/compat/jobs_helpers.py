"""Helpers for the Jobs acceptance suites (test_jobs_*.py): a thing-scoped jobs policy, a paho
device that speaks the `$aws/things/{thing}/jobs/...` request/response protocol and keeps every
message it received, boto3 clients for the control plane and the `iot-jobs-data` HTTPS data
plane (endpoint from DescribeEndpoint iot:Jobs, as a device program finds it), and small readers
of job and execution state. Everything here follows AWS's documented wire behaviour; nothing
knows how drover implements it."""

import json
import threading
import time
import uuid
from pathlib import Path

import boto3
from botocore.config import Config

from mqtt_devices import Device, PahoDevice, eventually, policy_text

# What AWS's jobs guide gives a device: its own jobs topics, nothing else.
JOBS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect",
         "Resource": "arn:aws:iot:{region}:{account}:client/${{iot:Connection.Thing.ThingName}}"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": "arn:aws:iot:{region}:{account}:topic/$aws/things/${{iot:Connection.Thing.ThingName}}/jobs/*"},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": "arn:aws:iot:{region}:{account}:topicfilter/$aws/things/${{iot:Connection.Thing.ThingName}}/jobs/*"},
    ],
}

TERMINAL = {"SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "REMOVED", "CANCELED"}


def enable_indexing(drover):
    """Thing indexing on (REGISTRY), which dynamic thing groups need, as on AWS."""
    drover.aws("update-indexing-configuration", "--thing-indexing-configuration",
               json.dumps({"thingIndexingMode": "REGISTRY", "thingConnectivityIndexingMode": "OFF"}))


def provision_jobs_device(drover, tmp_path, thing=None, policy=JOBS_POLICY):
    """A thing, an ACTIVE certificate attached to it and the thing-scoped jobs policy: the
    operator steps of mqtt_devices.provision, through boto3 rather than one awscli process per
    step, since these suites provision dozens of devices (test_jobs_sample.py and the gateway
    suite cover the same steps with awscli)."""
    iot = drover.iot
    thing = thing or drover.name("jdev")
    iot.create_thing(thingName=thing)
    created = iot.create_keys_and_certificate(setAsActive=True)
    folder = Path(tmp_path) / thing
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "cert.pem", folder / "private.key"
    cert_file.write_text(created["certificatePem"])
    key_file.write_text(created["keyPair"]["PrivateKey"])
    policy_name = f"{thing}-policy"
    iot.create_policy(policyName=policy_name, policyDocument=policy_text(drover, policy))
    iot.attach_policy(policyName=policy_name, target=created["certificateArn"])
    iot.attach_thing_principal(thingName=thing, principal=created["certificateArn"])
    return Device(drover, thing, created["certificateId"], created["certificateArn"], cert_file, key_file)


def create_job(iot, targets, document=None, job_id=None, wait_for=None, **kwargs):
    """CreateJob through boto3; returns the job id. With `wait_for=N`, also waits until the job
    has N executions (AWS creates them asynchronously, so a caller that goes on to act as a
    device must not race the rollout)."""
    job_id = job_id or f"job-{uuid.uuid4().hex[:12]}"
    if document is not None and not isinstance(document, str):
        document = json.dumps(document)
    args = {"jobId": job_id, "targets": targets, **kwargs}
    if document is not None:
        args["document"] = document
    out = iot.create_job(**args)
    assert out["jobId"] == job_id, out
    if wait_for is not None:
        eventually(lambda: len(executions_for_job(iot, job_id)) >= wait_for)
    return job_id


def describe_execution(iot, thing, job_id, execution_number=None):
    args = {"jobId": job_id, "thingName": thing}
    if execution_number is not None:
        args["executionNumber"] = execution_number
    return iot.describe_job_execution(**args)["execution"]


def executions_for_job(iot, job_id, status=None):
    """Every execution summary of a job (all pages)."""
    out, token = [], None
    while True:
        args = {"jobId": job_id, "maxResults": 250}
        if status:
            args["status"] = status
        if token:
            args["nextToken"] = token
        page = iot.list_job_executions_for_job(**args)
        out.extend(page.get("executionSummaries", []))
        token = page.get("nextToken")
        if not token:
            return out


def job(iot, job_id):
    return iot.describe_job(jobId=job_id)["job"]


def thing_of(summary):
    return summary["thingArn"].rsplit("/", 1)[1]


def jobs_data_client(drover, access_key=None, secret_key=None):
    """boto3's `iot-jobs-data` client on the endpoint DescribeEndpoint(iot:Jobs) names."""
    address = drover.iot.describe_endpoint(endpointType="iot:Jobs")["endpointAddress"]
    session = boto3.Session(aws_access_key_id=access_key or drover.access_key,
                            aws_secret_access_key=secret_key or drover.secret_key,
                            region_name=drover.region)
    return session.client("iot-jobs-data", endpoint_url=f"https://{address}", verify=drover.ca,
                          config=Config(retries={"max_attempts": 1, "mode": "standard"},
                                        connect_timeout=5, read_timeout=30))


class JobsMqtt:
    """A device on paho-mqtt speaking the jobs MQTT API for its own thing. Every message it
    receives is kept; `take` removes the first one matching, so replies and notifications can
    be awaited in any order."""

    def __init__(self, device, clean_session=True, client_id=None, subscribe=True):
        self.device = device
        self.thing = device.thing
        self.prefix = f"$aws/things/{device.thing}/jobs"
        self.paho = PahoDevice(device, client_id=client_id, clean_session=clean_session)
        self._messages = []
        self._cond = threading.Condition()
        self.paho.client.on_message = self._on_message
        self._subscribe = subscribe

    def _on_message(self, client, userdata, msg):
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            payload = msg.payload
        with self._cond:
            self._messages.append((msg.topic, payload))
            self._cond.notify_all()

    def connect(self):
        rc, session_present = self.paho.connect()
        if self._subscribe:
            granted = self.paho.subscribe(f"{self.prefix}/#", qos=1)
            assert not granted[0].is_failure, f"SUBACK refused {self.prefix}/#: {granted}"
        return session_present

    def close(self):
        self.paho.close()

    def take(self, predicate, timeout=10, what="a message"):
        deadline = time.time() + timeout
        with self._cond:
            while True:
                for i, (topic, payload) in enumerate(self._messages):
                    if predicate(topic, payload):
                        del self._messages[i]
                        return topic, payload
                left = deadline - time.time()
                if left <= 0:
                    seen = [(t, p) for t, p in self._messages]
                    raise AssertionError(f"no {what} within {timeout}s; unconsumed: {seen}")
                self._cond.wait(left)

    def drain(self, suffix):
        """Drops every kept message on `prefix/suffix` (e.g. old notifications)."""
        with self._cond:
            self._messages = [(t, p) for t, p in self._messages if t != f"{self.prefix}/{suffix}"]

    def kept(self, suffix):
        with self._cond:
            return [p for t, p in self._messages if t == f"{self.prefix}/{suffix}"]

    def request(self, suffix, payload, raw=None, timeout=10):
        """Publishes a request on `prefix/suffix` with a fresh clientToken (unless the payload
        carries one, or `raw` bytes are sent) and returns ("accepted"|"rejected", reply)."""
        topic = f"{self.prefix}/{suffix}"
        if raw is None:
            payload = dict(payload)
            payload.setdefault("clientToken", uuid.uuid4().hex)
            token = payload["clientToken"]
            self.paho.publish(topic, json.dumps(payload))
        else:
            token = None
            self.paho.publish(topic, raw)

        def match(t, p):
            if t not in (f"{topic}/accepted", f"{topic}/rejected"):
                return False
            return token is None or (isinstance(p, dict) and p.get("clientToken") == token)

        t, p = self.take(match, timeout=timeout, what=f"reply to {topic}")
        return t.rsplit("/", 1)[1], p

    def accepted(self, suffix, payload):
        kind, reply = self.request(suffix, payload)
        assert kind == "accepted", f"{suffix} {payload} was rejected: {reply}"
        return reply

    def rejected(self, suffix, payload, raw=None):
        kind, reply = self.request(suffix, payload, raw=raw)
        assert kind == "rejected", f"{suffix} {payload or raw!r} was accepted: {reply}"
        return reply

    def notification(self, kind="notify-next", predicate=lambda p: True, timeout=10):
        _, payload = self.take(lambda t, p: t == f"{self.prefix}/{kind}" and predicate(p),
                               timeout=timeout, what=kind)
        return payload

    def update(self, job_id, status, **fields):
        return self.request(f"{job_id}/update", {"status": status, **fields})
