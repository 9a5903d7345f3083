"""Durability: every write drover acknowledged survives SIGKILL of the server.

Eight boto3 threads create things as fast as they can; the server is SIGKILLed while they are
in flight. After a restart on the same data directory every CreateThing that returned 200
must be there, with its attributes. Requests cut off by the kill may or may not have landed;
they are not counted."""

import os
import signal
import threading
import time

import boto3
import pytest
from botocore.config import Config

from drover_proc import DroverProcess


def _client(server):
    return boto3.Session(
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
    ).client(
        "iot",
        endpoint_url=server.endpoint,
        verify=server.ca_file,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5),
    )


def test_acknowledged_writes_survive_sigkill(tmp_path):
    server = DroverProcess(tmp_path / "data")
    server.start()
    acknowledged = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker):
        client = _client(server)
        n = 0
        while not stop.is_set():
            name = f"durable-{worker}-{n}"
            n += 1
            try:
                client.create_thing(thingName=name, attributePayload={"attributes": {"seq": str(n)}})
            except Exception:  # the kill cuts requests off mid-flight
                if stop.is_set():
                    return
                continue
            with lock:
                acknowledged.append((name, str(n)))

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(8)]
    for t in threads:
        t.start()
    # Let a good number of writes through, then kill while requests are in flight.
    deadline = time.time() + 30
    while time.time() < deadline:
        with lock:
            if len(acknowledged) >= 300:
                break
        time.sleep(0.05)
    os.kill(server.pid, signal.SIGKILL)
    stop.set()
    server.wait()
    for t in threads:
        t.join(timeout=10)
    with lock:
        expected = list(acknowledged)
    assert len(expected) >= 50, f"too few writes acknowledged before the kill: {len(expected)}"

    server.start()
    try:
        client = _client(server)
        missing = []
        for name, seq in expected:
            try:
                thing = client.describe_thing(thingName=name)
            except client.exceptions.ResourceNotFoundException:
                missing.append(name)
                continue
            assert thing["attributes"] == {"seq": seq}
        assert not missing, f"{len(missing)} of {len(expected)} acknowledged things lost: {missing[:5]}"
    finally:
        server.stop()
