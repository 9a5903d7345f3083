"""Jobs survive `kill -9`: a rollout limited by maximumPerMinute over a few hundred things is cut
off by SIGKILL part way, drover restarts on the same data directory, and then no execution that
was visible before the kill is lost, none is duplicated (every thing has exactly one execution,
execution number 1), device updates acknowledged before the kill keep their state and version,
the rollout carries on to every target, and in-progress timers set before the kill still fire.

The waits here are the rollout's own minutes (maximumPerMinute) and the shortest in-progress
timeout AWS allows (1 minute): the assertions are about counts and states, never durations."""

import os
import signal
from concurrent.futures import ThreadPoolExecutor

from jobs_helpers import create_job, describe_execution, executions_for_job, job, jobs_data_client, thing_of
from mqtt_devices import eventually

THINGS = 300
RATE = 250


def test_sigkill_during_a_rollout_loses_and_duplicates_nothing(fresh_drover):
    d = fresh_drover
    group = d.iot.create_thing_group(thingGroupName="fleet")
    names = [f"dur-{i:03d}" for i in range(THINGS)]

    def enrol(name):
        d.iot.create_thing(thingName=name)
        d.iot.add_thing_to_thing_group(thingGroupName="fleet", thingName=name)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(enrol, names))

    job_id = create_job(d.iot, [group["thingGroupArn"]], {"operation": "install"}, job_id="rollout",
                        jobExecutionsRolloutConfig={"maximumPerMinute": RATE},
                        timeoutConfig={"inProgressTimeoutInMinutes": 1})
    eventually(lambda: len(executions_for_job(d.iot, job_id)) >= 40, timeout=60)

    # Devices act on some executions: a few start (their 1-minute timers begin), a few finish.
    data = jobs_data_client(d)
    first = [thing_of(s) for s in executions_for_job(d.iot, job_id)][:20]
    started, finished = first[:5], first[5:20]
    for thing in started:
        assert data.start_next_pending_job_execution(thingName=thing)["execution"]["jobId"] == job_id
    acknowledged = {}
    for thing in finished:
        state = data.update_job_execution(jobId=job_id, thingName=thing, status="SUCCEEDED",
                                          statusDetails={"fw": "2.0"}, includeJobExecutionState=True)
        acknowledged[thing] = state["executionState"]["versionNumber"]
    visible = {thing_of(s) for s in executions_for_job(d.iot, job_id)}
    assert len(visible) < THINGS, "the rate limit holds part of the fleet back"

    os.kill(d.server.pid, signal.SIGKILL)
    d.server.wait()
    d.server.start()

    summaries = executions_for_job(d.iot, job_id)
    things_now = [thing_of(s) for s in summaries]
    assert len(things_now) == len(set(things_now)), "an execution was duplicated by the restart"
    assert visible <= set(things_now), f"lost: {sorted(visible - set(things_now))}"
    for thing, version in acknowledged.items():
        got = describe_execution(d.iot, thing, job_id)
        assert got["status"] == "SUCCEEDED" and got["versionNumber"] == version, got
        assert got["statusDetails"]["detailsMap"] == {"fw": "2.0"}, got
    assert job(d.iot, job_id)["status"] == "IN_PROGRESS"

    # The rollout resumes and reaches every thing exactly once.
    summaries = eventually(lambda: len(s := executions_for_job(d.iot, job_id)) >= THINGS and s, timeout=180, interval=2)
    things_now = sorted(thing_of(s) for s in summaries)
    assert things_now == sorted(names)
    assert all(s["jobExecutionSummary"]["executionNumber"] == 1 for s in summaries)

    # The in-progress timers started before the kill still fire.
    for thing in started:
        eventually(lambda: describe_execution(d.iot, thing, job_id)["status"] == "TIMED_OUT", timeout=150, interval=2)
    details = job(d.iot, job_id)["jobProcessDetails"]
    assert details["numberOfTimedOutThings"] == len(started), details
    assert details["numberOfSucceededThings"] == len(finished), details
    assert details["numberOfQueuedThings"] == THINGS - len(started) - len(finished), details
