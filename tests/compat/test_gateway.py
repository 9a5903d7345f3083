"""The device gateway against the real device clients: paho-mqtt (MQTT 3.1.1 and 5), the AWS IoT
Device SDK for Python v1 (AWSIoTPythonSDK) and v2 (awsiotsdk on awscrt), each with a certificate
from `aws iot create-keys-and-certificate --set-as-active`, attached to its thing and a
thing-scoped policy; and the refusals the gateway owes: foreign, inactive, revoked and missing
certificates, other devices' topics, drover's reserved topics, malformed and oversize packets,
connect storms. Offline delivery to persistent sessions, across a restart too; presence events
and the fleet index's connectivity fields."""

import json
import socket
import ssl
import subprocess
import threading
import time
import uuid

import pytest

from mqtt_devices import (
    OBSERVER_POLICY,
    Collector,
    PahoDevice,
    eventually,
    expect_refusal,
    provision,
)
import paho.mqtt.client as paho


def topic(device, leaf):
    return f"devices/{device.thing}/{leaf}"


# -- the three clients round-trip on their own topics -------------------------------------------

def test_paho_mqtt_311_round_trip(drover, tmp_path):
    device = provision(drover, tmp_path)
    client = PahoDevice(device)
    rc, session_present = client.connect()
    assert not session_present
    assert client.subscribe(topic(device, "#"))[0].value == 1, "granted QoS 1"
    client.publish(topic(device, "telemetry"), b'{"temp": 21.5}')
    msg = client.next_message()
    assert msg.topic == topic(device, "telemetry")
    assert json.loads(msg.payload) == {"temp": 21.5}
    assert msg.qos == 1
    client.close()


def test_paho_mqtt_5_round_trip_with_properties(drover, tmp_path):
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    device = provision(drover, tmp_path)
    client = PahoDevice(device, protocol=paho.MQTTv5)
    client.connect()
    client.subscribe(topic(device, "cmd/#"))
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    props.UserProperty = [("trace", "abc")]
    client.client.publish(topic(device, "cmd/reboot"), b"{}", qos=1, properties=props).wait_for_publish(10)
    msg = client.next_message()
    assert msg.topic == topic(device, "cmd/reboot")
    assert msg.properties.ContentType == "application/json"
    assert ("trace", "abc") in msg.properties.UserProperty
    # QoS 2 is granted as QoS 1, as on AWS IoT.
    granted = client.subscribe(topic(device, "q2"), qos=2)
    assert granted[0].value == 1
    client.close()


def test_aws_iot_device_sdk_v1_round_trip(drover, tmp_path):
    from AWSIoTPythonSDK.MQTTLib import AWSIoTMQTTClient

    device = provision(drover, tmp_path)
    client = AWSIoTMQTTClient(device.thing)
    client.configureEndpoint("localhost", device.port)
    client.configureCredentials(device.ca_file, device.key_file, device.cert_file)
    client.configureConnectDisconnectTimeout(10)
    client.configureMQTTOperationTimeout(10)
    assert client.connect(keepAliveIntervalSecond=30)
    received = Collector()
    assert client.subscribe(topic(device, "sdk1/#"), 1, lambda c, u, m: received.add((m.topic, m.payload)))
    assert client.publish(topic(device, "sdk1/hello"), "from v1", 1)
    assert received.wait_for(1) == [(topic(device, "sdk1/hello"), b"from v1")]
    assert client.disconnect()


def test_aws_iot_device_sdk_v2_round_trip(drover, tmp_path):
    from awscrt import mqtt
    from awsiot import mqtt_connection_builder

    device = provision(drover, tmp_path)
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint="localhost", port=device.port, cert_filepath=device.cert_file,
        pri_key_filepath=device.key_file, ca_filepath=device.ca_file,
        client_id=device.thing, clean_session=True, keep_alive_secs=30)
    connection.connect().result(timeout=15)
    received = Collector()
    sub, _ = connection.subscribe(topic=topic(device, "sdk2/#"), qos=mqtt.QoS.AT_LEAST_ONCE,
                                  callback=lambda topic, payload, **kw: received.add((topic, payload)))
    assert sub.result(timeout=10)["qos"] == mqtt.QoS.AT_LEAST_ONCE
    pub, _ = connection.publish(topic=topic(device, "sdk2/hello"), payload=b"from v2", qos=mqtt.QoS.AT_LEAST_ONCE)
    pub.result(timeout=10)
    assert received.wait_for(1) == [(topic(device, "sdk2/hello"), b"from v2")]
    connection.disconnect().result(timeout=10)


def test_aws_iot_device_sdk_v2_mqtt5_round_trip(drover, tmp_path):
    from awscrt import mqtt5
    from awsiot import mqtt5_client_builder

    device = provision(drover, tmp_path)
    received = Collector()
    connected = threading.Event()
    client = mqtt5_client_builder.mtls_from_path(
        endpoint="localhost", port=device.port, cert_filepath=device.cert_file,
        pri_key_filepath=device.key_file, ca_filepath=device.ca_file, client_id=device.thing,
        on_publish_received=lambda data: received.add((data.publish_packet.topic, data.publish_packet.payload)),
        on_lifecycle_connection_success=lambda data: connected.set())
    client.start()
    assert connected.wait(15)
    suback = client.subscribe(mqtt5.SubscribePacket(subscriptions=[
        mqtt5.Subscription(topic_filter=topic(device, "v5/#"), qos=mqtt5.QoS.AT_LEAST_ONCE)])).result(10)
    assert suback.reason_codes == [mqtt5.SubackReasonCode.GRANTED_QOS_1]
    client.publish(mqtt5.PublishPacket(topic=topic(device, "v5/x"), payload=b"five",
                                       qos=mqtt5.QoS.AT_LEAST_ONCE)).result(10)
    assert received.wait_for(1) == [(topic(device, "v5/x"), b"five")]
    client.stop()


# -- refusals ----------------------------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def test_certificate_from_another_ca_is_refused(drover, tmp_path):
    device = provision(drover, tmp_path)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=other CA", cwd=tmp_path)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "dev.key", "-out", "dev.csr",
            "-subj", f"/CN={device.thing}", cwd=tmp_path)
    openssl("x509", "-req", "-in", "dev.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "dev.pem", "-days", "2", cwd=tmp_path)
    how = expect_refusal(device, cert_file=str(tmp_path / "dev.pem"), key_file=str(tmp_path / "dev.key"))
    assert "Not authorized" in how or "closed" in how or "tls" in how, how


def test_connecting_without_a_client_certificate_fails_the_handshake(drover, tmp_path):
    device = provision(drover, tmp_path)
    how = expect_refusal(device, no_cert=True)
    assert how.startswith(("tls", "closed")), how


def test_inactive_and_revoked_certificates(drover, tmp_path):
    device = provision(drover, tmp_path)
    drover.aws("update-certificate", "--certificate-id", device.cert_id, "--new-status", "INACTIVE")
    assert "Not authorized" in expect_refusal(device)
    drover.aws("update-certificate", "--certificate-id", device.cert_id, "--new-status", "ACTIVE")
    live = PahoDevice(device)
    live.connect()
    live.subscribe(topic(device, "x"))
    # Revoking the certificate closes the live session at once, and it cannot come back.
    drover.aws("update-certificate", "--certificate-id", device.cert_id, "--new-status", "REVOKED")
    live.wait_disconnected(timeout=10)
    live.client.loop_stop()
    assert "Not authorized" in expect_refusal(device)


def test_a_device_cannot_use_another_devices_topics(drover, tmp_path):
    a = provision(drover, tmp_path)
    b = provision(drover, tmp_path)
    device_b = PahoDevice(b)
    device_b.connect()
    device_b.subscribe(topic(b, "#"))

    device_a = PahoDevice(a)
    device_a.connect()
    assert device_a.subscribe(topic(b, "#"))[0].is_failure, "SUBACK refuses B's topics"
    assert device_a.subscribe(topic(a, "#"))[0].value == 1, "the connection is still usable"
    device_a.publish(topic(b, "cmd"), b"hijack", wait=False)
    device_a.wait_disconnected(timeout=10)
    device_a.client.loop_stop()
    device_b.no_message(wait=1.0)
    # Nor can A connect as B: iot:Connect names the thing.
    assert "Not authorized" in expect_refusal(a, client_id=b.thing)
    device_b.publish(topic(b, "ok"), b"still mine")
    assert device_b.next_message().payload == b"still mine"
    device_b.close()


def test_devices_cannot_publish_into_aws_events(drover, tmp_path):
    admin = provision(drover, tmp_path, policy=OBSERVER_POLICY)
    observer = PahoDevice(admin, client_id=drover.name("observer"))
    observer.connect()
    observer.subscribe("$aws/events/#")
    forger = PahoDevice(admin)
    forger.connect()
    forger.publish("$aws/events/presence/connected/someone", b"{}", wait=False)
    forger.wait_disconnected(timeout=10)
    forger.client.loop_stop()
    # The observer sees the forger's real disconnect event, never the forged one.
    deadline = time.time() + 3
    while time.time() < deadline:
        try:
            msg = observer.next_message(timeout=0.5)
        except Exception:
            continue
        assert msg.topic != "$aws/events/presence/connected/someone"
    observer.close()


def raw_tls(device):
    ctx = ssl.create_default_context(cafile=device.ca_file)
    ctx.load_cert_chain(device.cert_file, device.key_file)
    sock = socket.create_connection(("127.0.0.1", device.port), timeout=10)
    return ctx.wrap_socket(sock, server_hostname="localhost")


def closed_by_server(sock, timeout=10):
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(4096):
                return True
    except (ssl.SSLError, ConnectionError, OSError):
        return True


def mqtt_connect_packet(client_id):
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x1e" + len(cid).to_bytes(2, "big") + cid
    return bytes([0x10, len(body)]) + body


def test_malformed_packets_and_oversize_payloads_close_only_that_connection(drover, tmp_path):
    device = provision(drover, tmp_path)
    healthy = PahoDevice(device)
    healthy.connect()
    healthy.subscribe(topic(device, "#"))

    other = provision(drover, tmp_path)
    garbage = raw_tls(other)
    garbage.sendall(b"\xff\xff\xff\xff\x7fnot mqtt at all")
    assert closed_by_server(garbage)

    # A well-formed CONNECT followed by a PUBLISH whose length runs past its own header.
    broken = raw_tls(other)
    broken.sendall(mqtt_connect_packet(other.thing))
    assert broken.recv(4)[:1] == b"\x20", "CONNACK"
    broken.sendall(b"\x30\x03\x00\x09ab")
    broken.sendall(b"\x30\x02\x00\xff")
    assert closed_by_server(broken)

    # 130 KB is over AWS IoT's 128 KB payload limit.
    big = PahoDevice(other)
    big.connect()
    big.publish(topic(other, "blob"), b"x" * (130 * 1024), qos=0, wait=False)
    big.wait_disconnected(timeout=10)
    big.client.loop_stop()

    healthy.publish(topic(device, "after"), b"served")
    assert healthy.next_message().payload == b"served"
    healthy.close()


def test_a_burst_of_connects_does_not_stop_other_devices(drover, tmp_path):
    device = provision(drover, tmp_path)
    healthy = PahoDevice(device)
    healthy.connect()
    healthy.subscribe(topic(device, "#"))

    # 300 connections that open TCP (some finish TLS) and then say nothing.
    stalled = []
    stop = threading.Event()

    def storm():
        for i in range(300):
            if stop.is_set():
                return
            try:
                s = socket.create_connection(("127.0.0.1", device.port), timeout=5)
                if i % 3 == 0:
                    s = ssl.create_default_context(cafile=device.ca_file).wrap_socket(
                        s, server_hostname="localhost", do_handshake_on_connect=False)
                stalled.append(s)
            except OSError:
                pass

    t = threading.Thread(target=storm)
    t.start()
    for i in range(10):
        healthy.publish(topic(device, f"during/{i}"), str(i).encode())
        assert healthy.next_message(timeout=10).payload == str(i).encode()
    t.join()
    stop.set()
    # A new device still gets in while the stalled sockets are open.
    late = PahoDevice(provision(drover, tmp_path))
    late.connect()
    late.close()
    for s in stalled:
        s.close()
    healthy.close()


# -- persistent sessions ------------------------------------------------------------------------------

def test_qos1_message_to_an_offline_device_arrives_when_it_reconnects(drover, tmp_path):
    device = provision(drover, tmp_path)
    sender = provision(drover, tmp_path, policy=OBSERVER_POLICY)
    first = PahoDevice(device, clean_session=False)
    first.connect()
    first.subscribe(topic(device, "jobs/#"))
    first.close()

    s = PahoDevice(sender)
    s.connect()
    s.publish(topic(device, "jobs/1"), b"while you were away")
    s.close()

    again = PahoDevice(device, clean_session=False)
    _, session_present = again.connect()
    assert session_present
    msg = again.next_message()
    assert msg.payload == b"while you were away"
    assert msg.topic == topic(device, "jobs/1")
    again.close()


def test_queued_messages_survive_a_drover_restart(fresh_drover, tmp_path):
    drover = fresh_drover
    device = provision(drover, tmp_path)
    sender = provision(drover, tmp_path, policy=OBSERVER_POLICY)
    first = PahoDevice(device, clean_session=False)
    first.connect()
    first.subscribe(topic(device, "cmd"))
    first.close()
    s = PahoDevice(sender)
    s.connect()
    for i in range(3):
        s.publish(topic(device, "cmd"), f"m{i}".encode())
    s.close()

    drover.server.stop()
    drover.server.start()

    again = PahoDevice(device, clean_session=False)
    _, session_present = again.connect()
    assert session_present
    assert [again.next_message().payload for _ in range(3)] == [b"m0", b"m1", b"m2"]
    again.close()


def test_mqtt5_session_expiry_and_takeover(drover, tmp_path):
    device = provision(drover, tmp_path)
    first = PahoDevice(device, clean_session=False, protocol=paho.MQTTv5)
    first.connect()
    first.subscribe(topic(device, "t"))
    second = PahoDevice(device, clean_session=False, protocol=paho.MQTTv5)
    _, present = second.connect()
    assert present, "the second connection takes the session over"
    reason = first.wait_disconnected(timeout=10)
    assert "taken over" in str(reason).lower(), reason
    first.client.loop_stop()
    second.publish(topic(device, "t"), b"mine now")
    assert second.next_message().payload == b"mine now"
    second.close()


# -- retained messages and wills ---------------------------------------------------------------------

def test_retained_messages_and_last_will(drover, tmp_path):
    device = provision(drover, tmp_path)
    watcher = provision(drover, tmp_path, policy=OBSERVER_POLICY)
    pub = PahoDevice(device, will=(topic(device, "status"), b"offline", 1, False))
    pub.connect()
    pub.publish(topic(device, "state"), b"on", retain=True)

    w = PahoDevice(watcher)
    w.connect()
    w.subscribe(topic(device, "state"))
    msg = w.next_message()
    assert (msg.payload, msg.retain) == (b"on", True)
    w.subscribe(topic(device, "status"))
    # Drop the device's socket without DISCONNECT: its will goes out.
    pub.client.socket().close()
    pub.client.loop_stop()
    will = w.next_message(timeout=15)
    assert (will.topic, will.payload) == (topic(device, "status"), b"offline")
    w.close()


# -- presence and connectivity ------------------------------------------------------------------------

def test_presence_events_and_fleet_index_connectivity(drover, tmp_path):
    drover.iot.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY", "thingConnectivityIndexingMode": "STATUS"})
    device = provision(drover, tmp_path)
    watcher = provision(drover, tmp_path, policy=OBSERVER_POLICY)
    w = PahoDevice(watcher)
    w.connect()
    w.subscribe(f"$aws/events/presence/+/{device.thing}")

    d = PahoDevice(device)
    d.connect()
    connected = json.loads(w.next_message().payload)
    assert connected["eventType"] == "connected"
    assert connected["clientId"] == device.thing
    assert connected["principalIdentifier"] == device.cert_id
    assert connected["ipAddress"] == "127.0.0.1"
    assert isinstance(connected["timestamp"], int) and connected["timestamp"] > 1_600_000_000_000
    found = eventually(lambda: drover.iot.search_index(
        queryString=f"thingName:{device.thing} AND connectivity.connected:true")["things"])
    assert found[0]["connectivity"]["connected"] is True

    d.close()
    disconnected = json.loads(w.next_message().payload)
    assert disconnected["eventType"] == "disconnected"
    assert disconnected["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert disconnected["clientInitiatedDisconnect"] is True
    assert disconnected["versionNumber"] > connected["versionNumber"]
    gone = eventually(lambda: drover.iot.search_index(
        queryString=f"thingName:{device.thing} AND connectivity.connected:false")["things"])
    assert gone[0]["connectivity"]["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    w.close()
