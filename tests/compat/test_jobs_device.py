"""Devices doing jobs over MQTT, as AWS's "Jobs device MQTT API" guide describes: awsiotsdk v2's
IotJobsClient (awscrt) processing a job end to end, and paho-mqtt devices checking the protocol
rule by rule — every execution transition a device may and may not make, expectedVersion
conflicts (VersionMismatch), bad JSON (InvalidJson, nothing changed), unknown jobs
(ResourceNotFound), clientToken echoes, one device unable to read or touch another's execution,
a persistent-session device getting notify-next when it comes back, notify/notify-next as the
queue changes and empties, and step timers as reported (waiting out a real timer takes minutes,
so expiry itself is left to the engine's tests with an injectable clock).

Control-plane reads (DescribeJobExecution through boto3) check what each device request did or
did not change."""

import json
import time
import uuid

import paho.mqtt.client as paho
import pytest

from jobs_helpers import (
    TERMINAL,
    JobsMqtt,
    create_job,
    describe_execution,
    provision_jobs_device,
)
from mqtt_devices import Collector, PahoDevice

DOC = {"operation": "install", "url": "https://example.com/fw.bin", "forced": False}


def new_job(drover, things, document=DOC, **kwargs):
    return create_job(drover.iot, [drover.arn("thing", t) for t in things], document,
                      wait_for=len(things), **kwargs)


def device(drover, tmp_path, **kwargs):
    dev = JobsMqtt(provision_jobs_device(drover, tmp_path), **kwargs)
    dev.connect()
    return dev


def unchanged(drover, thing, job_id, before):
    now = describe_execution(drover.iot, thing, job_id)
    for key in ("status", "versionNumber", "statusDetails", "executionNumber"):
        assert now.get(key) == before.get(key), f"{key} changed: {before} -> {now}"


def assert_seconds(value, what):
    """MQTT jobs times are integer epoch seconds (awsiotsdk v2 parses them with
    datetime.fromtimestamp), and a real recent instant."""
    assert isinstance(value, int), f"{what} is {value!r}, not an integer"
    assert abs(value - time.time()) < 3600, f"{what}={value} is not epoch seconds of now"


# -- awsiotsdk v2 ---------------------------------------------------------------------------------

def test_awsiotsdk_v2_jobs_client_processes_a_job(drover, tmp_path):
    from awscrt import mqtt
    from awsiot import iotjobs, mqtt_connection_builder

    dev = provision_jobs_device(drover, tmp_path)
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint="localhost", port=dev.port, cert_filepath=dev.cert_file,
        pri_key_filepath=dev.key_file, ca_filepath=dev.ca_file, client_id=dev.thing,
        clean_session=True, keep_alive_secs=30)
    connection.connect().result(timeout=15)
    client = iotjobs.IotJobsClient(connection)
    qos = mqtt.QoS.AT_LEAST_ONCE
    thing = dev.thing
    next_events, list_events = Collector(), Collector()
    pending, started, updated, rejected = Collector(), Collector(), Collector(), Collector()
    subscriptions = [
        client.subscribe_to_next_job_execution_changed_events(
            iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing), qos, next_events.add),
        client.subscribe_to_job_executions_changed_events(
            iotjobs.JobExecutionsChangedSubscriptionRequest(thing_name=thing), qos, list_events.add),
        client.subscribe_to_get_pending_job_executions_accepted(
            iotjobs.GetPendingJobExecutionsSubscriptionRequest(thing_name=thing), qos, pending.add),
        client.subscribe_to_get_pending_job_executions_rejected(
            iotjobs.GetPendingJobExecutionsSubscriptionRequest(thing_name=thing), qos, rejected.add),
        client.subscribe_to_start_next_pending_job_execution_accepted(
            iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing), qos, started.add),
        client.subscribe_to_start_next_pending_job_execution_rejected(
            iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing), qos, rejected.add),
        client.subscribe_to_update_job_execution_accepted(
            iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id="+"), qos, updated.add),
        client.subscribe_to_update_job_execution_rejected(
            iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id="+"), qos, rejected.add),
    ]
    for future, _ in subscriptions:
        future.result(timeout=10)

    job_id = new_job(drover, [thing])
    event = next_events.wait_for(1)[0]
    assert event.execution is not None, "notify-next without an execution for a new job"
    assert event.execution.job_id == job_id
    assert event.execution.status == "QUEUED"
    assert event.execution.job_document == DOC

    client.publish_get_pending_job_executions(
        iotjobs.GetPendingJobExecutionsRequest(thing_name=thing, client_token="pending-1"), qos).result(10)
    got = pending.wait_for(1)[0]
    assert got.client_token == "pending-1"
    assert [s.job_id for s in got.queued_jobs] == [job_id]
    assert not got.in_progress_jobs

    client.publish_start_next_pending_job_execution(
        iotjobs.StartNextPendingJobExecutionRequest(
            thing_name=thing, client_token="start-1", status_details={"step": "download"},
            step_timeout_in_minutes=30), qos).result(10)
    execution = started.wait_for(1)[0].execution
    assert execution.job_id == job_id and execution.thing_name == thing
    assert execution.status == "IN_PROGRESS"
    assert execution.status_details == {"step": "download"}
    assert execution.job_document == DOC
    assert execution.started_at is not None

    client.publish_update_job_execution(
        iotjobs.UpdateJobExecutionRequest(
            thing_name=thing, job_id=job_id, status="SUCCEEDED", status_details={"result": "ok"},
            expected_version=execution.version_number, include_job_execution_state=True,
            client_token="update-1"), qos).result(10)
    done = updated.wait_for(1)[0]
    assert done.client_token == "update-1"
    assert done.execution_state.status == "SUCCEEDED"
    assert done.execution_state.version_number == execution.version_number + 1
    assert not rejected.items, [r.__dict__ for r in rejected.items]

    # The queue is now empty: notify-next arrives with no execution.
    emptied = next_events.wait_for(2)[1]
    assert emptied.execution is None and emptied.timestamp is not None
    final = describe_execution(drover.iot, thing, job_id)
    assert final["status"] == "SUCCEEDED"
    assert final["statusDetails"]["detailsMap"]["result"] == "ok"
    connection.disconnect().result(timeout=10)


# -- transitions ------------------------------------------------------------------------------------

def test_every_valid_transition_a_device_may_make(drover, tmp_path):
    dev = device(drover, tmp_path)
    paths = {
        "q-ip-ip-succeeded": ["IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"],
        "q-succeeded": ["SUCCEEDED"],
        "q-failed": ["FAILED"],
        "q-rejected": ["REJECTED"],
        "q-ip-failed": ["IN_PROGRESS", "FAILED"],
        "q-ip-rejected": ["IN_PROGRESS", "REJECTED"],
    }
    for name, steps in paths.items():
        job_id = new_job(drover, [dev.thing], job_id=f"{name}-{uuid.uuid4().hex[:6]}")
        before = describe_execution(drover.iot, dev.thing, job_id)
        assert before["status"] == "QUEUED", before
        version = before["versionNumber"]
        for i, status in enumerate(steps):
            reply = dev.accepted(f"{job_id}/update", {
                "status": status, "statusDetails": {"step": f"{i}"}, "expectedVersion": version,
                "includeJobExecutionState": True})
            state = reply["executionState"]
            assert state["status"] == status, (name, reply)
            assert state["versionNumber"] == version + 1, (name, reply)
            assert state["statusDetails"] == {"step": f"{i}"}, (name, reply)
            assert_seconds(reply["timestamp"], "timestamp")
            version += 1
            now = describe_execution(drover.iot, dev.thing, job_id)
            assert now["status"] == status and now["versionNumber"] == version, (name, now)
            if status == "IN_PROGRESS":
                assert "startedAt" in now, now
    dev.close()


def test_device_may_not_set_service_owned_statuses(drover, tmp_path):
    dev = device(drover, tmp_path)
    job_id = new_job(drover, [dev.thing])
    before = describe_execution(drover.iot, dev.thing, job_id)
    for status in ("QUEUED", "CANCELED", "TIMED_OUT", "REMOVED"):
        reply = dev.rejected(f"{job_id}/update", {"status": status})
        assert reply["code"] in ("InvalidRequest", "InvalidStateTransition"), (status, reply)
        unchanged(drover, dev.thing, job_id, before)
    reply = dev.rejected(f"{job_id}/update", {"status": "DONE"})
    assert reply["code"] == "InvalidRequest", reply
    reply = dev.rejected(f"{job_id}/update", {"statusDetails": {"a": "b"}})
    assert reply["code"] == "InvalidRequest", "status is required"
    reply = dev.rejected(f"{job_id}/update", {"status": "IN_PROGRESS", "statusDetails": {"bad key!": "x"}})
    assert reply["code"] == "InvalidRequest", reply
    unchanged(drover, dev.thing, job_id, before)
    dev.close()


@pytest.mark.parametrize("terminal", ["SUCCEEDED", "FAILED", "REJECTED"])
def test_a_terminal_execution_cannot_move_again(drover, tmp_path, terminal):
    dev = device(drover, tmp_path)
    job_id = new_job(drover, [dev.thing])
    dev.accepted(f"{job_id}/update", {"status": "IN_PROGRESS"})
    dev.accepted(f"{job_id}/update", {"status": terminal, "statusDetails": {"why": "done"}})
    before = describe_execution(drover.iot, dev.thing, job_id)
    assert before["status"] == terminal

    # The guide's own example: SUCCEEDED -> IN_PROGRESS is InvalidStateTransition, and the
    # rejection carries the execution's state.
    reply = dev.rejected(f"{job_id}/update", {"status": "IN_PROGRESS"})
    assert reply["code"] == "InvalidStateTransition", reply
    assert reply["executionState"]["status"] == terminal, reply
    assert reply["executionState"]["versionNumber"] == before["versionNumber"], reply
    for status in sorted({"SUCCEEDED", "FAILED", "REJECTED"}):
        reply = dev.rejected(f"{job_id}/update", {"status": status})
        assert reply["code"] in ("InvalidStateTransition", "TerminalStateReached"), (status, reply)
    unchanged(drover, dev.thing, job_id, before)
    # A terminal execution is no longer pending: start-next has nothing to start.
    reply = dev.accepted("start-next", {})
    assert "execution" not in reply, reply
    dev.close()


def test_expected_version_mismatch(drover, tmp_path):
    dev = device(drover, tmp_path)
    job_id = new_job(drover, [dev.thing])
    before = describe_execution(drover.iot, dev.thing, job_id)
    v = before["versionNumber"]
    reply = dev.rejected(f"{job_id}/update", {"status": "IN_PROGRESS", "expectedVersion": v + 5})
    assert reply["code"] == "VersionMismatch", reply
    assert reply["executionState"]["versionNumber"] == v, reply
    assert reply["executionState"]["status"] == "QUEUED", reply
    unchanged(drover, dev.thing, job_id, before)

    dev.accepted(f"{job_id}/update", {"status": "IN_PROGRESS", "expectedVersion": v})
    # The version the device read before its own update is stale now.
    reply = dev.rejected(f"{job_id}/update", {"status": "SUCCEEDED", "expectedVersion": v})
    assert reply["code"] == "VersionMismatch", reply
    assert reply["executionState"]["status"] == "IN_PROGRESS", reply
    assert reply["executionState"]["versionNumber"] == v + 1, reply
    assert describe_execution(drover.iot, dev.thing, job_id)["status"] == "IN_PROGRESS"
    dev.close()


@pytest.mark.parametrize("payload", [b'{"status": "SUCCEEDED"', b"not json", b"\xff\xfe\x00garbage"])
def test_bad_json_on_update_is_invalid_json_and_changes_nothing(drover, tmp_path, payload):
    dev = device(drover, tmp_path)
    job_id = new_job(drover, [dev.thing])
    dev.accepted(f"{job_id}/update", {"status": "IN_PROGRESS", "statusDetails": {"k": "v"}})
    before = describe_execution(drover.iot, dev.thing, job_id)
    reply = dev.rejected(f"{job_id}/update", None, raw=payload)
    assert reply["code"] == "InvalidJson", reply
    assert_seconds(reply["timestamp"], "timestamp")
    unchanged(drover, dev.thing, job_id, before)
    # Nor does bad JSON on start-next start anything.
    other = new_job(drover, [dev.thing])
    reply = dev.rejected("start-next", None, raw=payload)
    assert reply["code"] == "InvalidJson", reply
    assert describe_execution(drover.iot, dev.thing, other)["status"] == "QUEUED"
    dev.close()


def test_unknown_job_is_resource_not_found(drover, tmp_path):
    dev = device(drover, tmp_path)
    for suffix, payload in [("no-such-job/update", {"status": "IN_PROGRESS"}), ("no-such-job/get", {})]:
        reply = dev.rejected(suffix, payload)
        assert reply["code"] == "ResourceNotFound", (suffix, reply)
    # A job that exists but has no execution on this thing is not found for it either.
    elsewhere = drover.name("elsewhere")
    drover.iot.create_thing(thingName=elsewhere)
    job_id = new_job(drover, [elsewhere])
    for suffix, payload in [(f"{job_id}/update", {"status": "IN_PROGRESS"}), (f"{job_id}/get", {})]:
        reply = dev.rejected(suffix, payload)
        assert reply["code"] == "ResourceNotFound", (suffix, reply)
    assert describe_execution(drover.iot, elsewhere, job_id)["status"] == "QUEUED"
    dev.close()


def test_client_token_is_echoed_on_accepted_and_rejected(drover, tmp_path):
    dev = device(drover, tmp_path)
    job_id = new_job(drover, [dev.thing])
    kind, reply = dev.request("get", {"clientToken": "tok-accepted-1"})
    assert kind == "accepted" and reply["clientToken"] == "tok-accepted-1"
    kind, reply = dev.request(f"{job_id}/get", {"clientToken": "tok-accepted-2"})
    assert kind == "accepted" and reply["clientToken"] == "tok-accepted-2"
    kind, reply = dev.request(f"{job_id}/update", {"status": "NOPE", "clientToken": "tok-rejected-1"})
    assert kind == "rejected" and reply["clientToken"] == "tok-rejected-1"
    kind, reply = dev.request("no-such-job/get", {"clientToken": "tok-rejected-2"})
    assert kind == "rejected" and reply["clientToken"] == "tok-rejected-2"
    dev.close()


def test_pending_list_start_next_and_describe_next(drover, tmp_path):
    dev = device(drover, tmp_path)
    first = new_job(drover, [dev.thing], document={"n": 1})
    # queuedAt has one-second resolution: make the second job strictly later.
    time.sleep(1.1)
    second = new_job(drover, [dev.thing], document={"n": 2})

    reply = dev.accepted("get", {})
    assert [s["jobId"] for s in reply["queuedJobs"]] == [first, second], reply
    assert reply["inProgressJobs"] == [], reply
    summary = reply["queuedJobs"][0]
    for key in ("queuedAt", "lastUpdatedAt"):
        assert_seconds(summary[key], key)
    assert summary["executionNumber"] == 1 and "versionNumber" in summary, summary

    described = dev.accepted("$next/get", {})["execution"]
    assert described["jobId"] == first and described["status"] == "QUEUED"
    assert described["jobDocument"] == {"n": 1}, "MQTT carries the document as a JSON object"
    without_doc = dev.accepted(f"{second}/get", {"includeJobDocument": False})["execution"]
    assert "jobDocument" not in without_doc, without_doc

    started = dev.accepted("start-next", {"statusDetails": {"phase": "start"}})["execution"]
    assert started["jobId"] == first and started["status"] == "IN_PROGRESS"
    assert started["statusDetails"] == {"phase": "start"}
    assert started["jobDocument"] == {"n": 1}
    # start-next again returns the execution already in progress rather than starting another.
    again = dev.accepted("start-next", {})["execution"]
    assert again["jobId"] == first and again["status"] == "IN_PROGRESS"
    reply = dev.accepted("get", {})
    assert [s["jobId"] for s in reply["inProgressJobs"]] == [first]
    assert [s["jobId"] for s in reply["queuedJobs"]] == [second]
    assert describe_execution(drover.iot, dev.thing, second)["status"] == "QUEUED"
    dev.close()


def test_notify_and_notify_next_follow_the_queue_until_it_is_empty(drover, tmp_path):
    dev = device(drover, tmp_path)
    first = new_job(drover, [dev.thing], document={"n": 1})
    note = dev.notification("notify-next", lambda p: p.get("execution", {}).get("jobId") == first)
    assert note["execution"]["status"] == "QUEUED" and note["execution"]["jobDocument"] == {"n": 1}
    assert_seconds(note["timestamp"], "notify-next timestamp")
    listing = dev.notification("notify", lambda p: first in json.dumps(p.get("jobs", {})))
    assert [s["jobId"] for s in listing["jobs"]["QUEUED"]] == [first], listing

    time.sleep(1.1)
    second = new_job(drover, [dev.thing], document={"n": 2})
    listing = dev.notification("notify", lambda p: second in json.dumps(p.get("jobs", {})))
    assert [s["jobId"] for s in listing["jobs"]["QUEUED"]] == [first, second], listing

    dev.drain("notify-next")
    dev.accepted(f"{first}/update", {"status": "IN_PROGRESS"})
    dev.accepted(f"{first}/update", {"status": "SUCCEEDED"})
    # The head of the queue changed to the second job.
    note = dev.notification("notify-next", lambda p: "execution" in p)
    assert note["execution"]["jobId"] == second, note

    dev.accepted(f"{second}/update", {"status": "FAILED"})
    empty = dev.notification("notify-next", lambda p: "execution" not in p)
    assert set(empty) == {"timestamp"}, empty
    listing = dev.notification("notify", lambda p: not p.get("jobs"))
    assert listing["jobs"] == {}, listing
    dev.close()


def test_device_cannot_read_or_update_another_devices_execution(drover, tmp_path):
    a = device(drover, tmp_path)
    b_device = provision_jobs_device(drover, tmp_path)
    job_id = new_job(drover, [a.thing])
    before = describe_execution(drover.iot, a.thing, job_id)

    b = PahoDevice(b_device, protocol=paho.MQTTv5)
    b.connect()
    granted = b.subscribe(f"$aws/things/{a.thing}/jobs/#")
    assert granted[0].is_failure, f"B may not subscribe to A's jobs topics: {granted}"
    info = b.client.publish(f"$aws/things/{a.thing}/jobs/{job_id}/update",
                            json.dumps({"status": "SUCCEEDED", "clientToken": "b"}), qos=1)
    info.wait_for_publish(timeout=10)
    b.client.publish(f"$aws/things/{a.thing}/jobs/get", json.dumps({"clientToken": "b"}), qos=1)
    b.client.publish(f"$aws/things/{a.thing}/jobs/{job_id}/get", json.dumps({"clientToken": "b"}), qos=1)
    b.no_message(wait=2)
    unchanged(drover, a.thing, job_id, before)
    b.close()

    # A's own view is intact and A can still work the execution.
    assert a.accepted(f"{job_id}/get", {})["execution"]["status"] == "QUEUED"
    a.accepted(f"{job_id}/update", {"status": "SUCCEEDED"})
    a.close()


def test_offline_persistent_session_gets_notify_next_on_reconnect(drover, tmp_path):
    dev_identity = provision_jobs_device(drover, tmp_path)
    dev = JobsMqtt(dev_identity, clean_session=False)
    dev.connect()
    dev.close()

    job_id = new_job(drover, [dev_identity.thing], document={"n": "offline"})
    back = JobsMqtt(dev_identity, clean_session=False, subscribe=False)
    session_present = back.connect()
    assert session_present, "the persistent session survived the disconnect"
    note = back.notification("notify-next", lambda p: "execution" in p)
    assert note["execution"]["jobId"] == job_id
    assert note["execution"]["jobDocument"] == {"n": "offline"}
    # And the device can carry on with the queue it was told about.
    started = back.accepted("start-next", {})["execution"]
    assert started["jobId"] == job_id and started["status"] == "IN_PROGRESS"
    back.close()


def test_a_device_that_was_offline_finds_its_jobs_with_get(drover, tmp_path):
    identity = provision_jobs_device(drover, tmp_path)
    job_id = new_job(drover, [identity.thing])
    dev = JobsMqtt(identity)
    dev.connect()
    assert [s["jobId"] for s in dev.accepted("get", {})["queuedJobs"]] == [job_id]
    dev.close()


def test_step_timeout_is_reported_and_validated(drover, tmp_path):
    dev = device(drover, tmp_path)
    job_id = new_job(drover, [dev.thing])
    for bad in (0, 10081, "ten"):
        reply = dev.rejected("start-next", {"stepTimeoutInMinutes": bad})
        assert reply["code"] == "InvalidRequest", (bad, reply)
    assert describe_execution(drover.iot, dev.thing, job_id)["status"] == "QUEUED"

    started = dev.accepted("start-next", {"stepTimeoutInMinutes": 5})["execution"]
    assert started["jobId"] == job_id
    seconds = started["approximateSecondsBeforeTimedOut"]
    assert 0 < seconds <= 300, started
    control = describe_execution(drover.iot, dev.thing, job_id)
    assert 0 < control["approximateSecondsBeforeTimedOut"] <= 300, control

    # A later IN_PROGRESS update may set a new step timer.
    dev.accepted(f"{job_id}/update", {"status": "IN_PROGRESS", "stepTimeoutInMinutes": 60})
    control = describe_execution(drover.iot, dev.thing, job_id)
    assert 300 < control["approximateSecondsBeforeTimedOut"] <= 3600, control
    reply = dev.rejected(f"{job_id}/update", {"status": "IN_PROGRESS", "stepTimeoutInMinutes": 10081})
    assert reply["code"] == "InvalidRequest", reply
    assert control["status"] not in TERMINAL
    dev.close()
