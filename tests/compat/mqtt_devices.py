"""Device-side helpers for the gateway tests: provisioning a device the way an operator does
on AWS (awscli: create-thing, create-keys-and-certificate --set-as-active, create-policy,
attach-policy, attach-thing-principal) and connecting it with the real clients under test:
paho-mqtt, the AWS IoT Device SDK v1 (AWSIoTPythonSDK) and v2 (awsiotsdk on awscrt)."""

import json
import queue
import ssl
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

THING_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect",
         "Resource": "arn:aws:iot:{region}:{account}:client/${{iot:Connection.Thing.ThingName}}"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive", "iot:RetainPublish"],
         "Resource": "arn:aws:iot:{region}:{account}:topic/devices/${{iot:Connection.Thing.ThingName}}/*"},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": "arn:aws:iot:{region}:{account}:topicfilter/devices/${{iot:Connection.Thing.ThingName}}/*"},
    ],
}

OBSERVER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
    ],
}


def policy_text(drover, template):
    text = json.dumps(template)
    return text.replace("{region}", drover.region).replace("{account}", drover.account) \
        .replace("{{", "{").replace("}}", "}")


class Device:
    """A provisioned device: its thing, certificate and key files."""

    def __init__(self, drover, thing, cert_id, cert_arn, cert_file, key_file):
        self.drover = drover
        self.thing = thing
        self.cert_id = cert_id
        self.cert_arn = cert_arn
        self.cert_file = str(cert_file)
        self.key_file = str(key_file)

    @property
    def ca_file(self):
        return self.drover.ca

    @property
    def port(self):
        return self.drover.server.mqtt_port


def provision(drover, tmp_path, thing=None, policy=THING_POLICY, attach_thing=True):
    """Creates a thing, an ACTIVE certificate and a policy with awscli, as an operator would."""
    thing = thing or drover.name("dev")
    drover.aws("create-thing", "--thing-name", thing)
    created = drover.aws("create-keys-and-certificate", "--set-as-active").json
    folder = Path(tmp_path) / thing
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "cert.pem", folder / "private.key"
    cert_file.write_text(created["certificatePem"])
    key_file.write_text(created["keyPair"]["PrivateKey"])
    policy_name = f"{thing}-policy"
    drover.aws("create-policy", "--policy-name", policy_name, "--policy-document", policy_text(drover, policy))
    drover.aws("attach-policy", "--policy-name", policy_name, "--target", created["certificateArn"])
    if attach_thing:
        drover.aws("attach-thing-principal", "--thing-name", thing, "--principal", created["certificateArn"])
    return Device(drover, thing, created["certificateId"], created["certificateArn"], cert_file, key_file)


# -- paho-mqtt ------------------------------------------------------------------------------------

class PahoDevice:
    """A paho-mqtt client whose events land in queues the test reads with timeouts."""

    def __init__(self, device, client_id=None, clean_session=True, protocol=paho.MQTTv311,
                 cert_file=None, key_file=None, will=None, keepalive=30):
        self.client_id = client_id or device.thing
        kwargs = {"client_id": self.client_id, "protocol": protocol}
        if protocol != paho.MQTTv5:
            kwargs["clean_session"] = clean_session
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, **kwargs)
        self.client.tls_set(ca_certs=device.ca_file, certfile=cert_file or device.cert_file,
                            keyfile=key_file or device.key_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if will:
            self.client.will_set(*will)
        self.device = device
        self.protocol = protocol
        self.clean_session = clean_session
        self.keepalive = keepalive
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.subacks = queue.Queue()
        self.pubacks = queue.Queue()
        self.disconnects = queue.Queue()
        self.client.on_connect = lambda c, u, flags, rc, props: self.connacks.put((rc, flags))
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)
        self.client.on_subscribe = lambda c, u, mid, rcs, props: self.subacks.put(rcs)
        self.client.on_publish = lambda c, u, mid, rc, props: self.pubacks.put((mid, rc))
        self.client.on_disconnect = lambda c, u, flags, rc, props: self.disconnects.put(rc)

    def connect(self, expect_success=True, timeout=10):
        """Connects; returns (reason code, session present)."""
        props = None
        if self.protocol == paho.MQTTv5:
            from paho.mqtt.properties import Properties
            from paho.mqtt.packettypes import PacketTypes
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0 if self.clean_session else 3600
        kwargs = {"keepalive": self.keepalive}
        if self.protocol == paho.MQTTv5:
            kwargs["clean_start"] = self.clean_session
            kwargs["properties"] = props
        self.client.connect("localhost", self.device.port, **kwargs)
        self.client.loop_start()
        rc, flags = self.connacks.get(timeout=timeout)
        if expect_success:
            assert not rc.is_failure, f"CONNACK {rc}"
        return rc, flags.session_present

    def subscribe(self, topic, qos=1, timeout=10):
        self.client.subscribe(topic, qos)
        return self.subacks.get(timeout=timeout)

    def publish(self, topic, payload, qos=1, retain=False, wait=True):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if wait and qos:
            info.wait_for_publish(timeout=10)
        return info

    def next_message(self, timeout=10):
        return self.messages.get(timeout=timeout)

    def no_message(self, wait=1.0):
        try:
            msg = self.messages.get(timeout=wait)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected message on {msg.topic}: {msg.payload!r}")

    def wait_disconnected(self, timeout=10):
        return self.disconnects.get(timeout=timeout)

    def close(self):
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()


def expect_refusal(device, cert_file=None, key_file=None, client_id=None, no_cert=False):
    """The connection must fail: at the TLS handshake, by CONNACK refusal, or by the server
    closing it before CONNACK. Returns how it failed."""
    client = PahoDevice(device, client_id=client_id, cert_file=cert_file, key_file=key_file)
    if no_cert:
        client.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client.client_id)
        client.client.tls_set(ca_certs=device.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.client.on_connect = lambda c, u, flags, rc, props: client.connacks.put((rc, flags))
        client.client.on_disconnect = lambda c, u, flags, rc, props: client.disconnects.put(rc)
    try:
        client.client.connect("localhost", device.port, keepalive=30)
    except (ssl.SSLError, OSError, ConnectionError) as e:
        return f"tls: {e}"
    client.client.loop_start()
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                rc, _ = client.connacks.get(timeout=0.1)
                assert rc.is_failure, f"connection was accepted ({rc})"
                return f"connack: {rc}"
            except queue.Empty:
                pass
            try:
                rc = client.disconnects.get_nowait()
                return f"closed: {rc}"
            except queue.Empty:
                pass
        raise AssertionError("neither a refusal nor a close within 10 s")
    finally:
        client.client.loop_stop()


def eventually(check, timeout=10, interval=0.1):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            result = check()
            if result:
                return result
        except AssertionError as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {last}")


class Collector:
    """Thread-safe list for callbacks of the device SDKs."""

    def __init__(self):
        self.items = []
        self.cond = threading.Condition()

    def add(self, item):
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait_for(self, n=1, timeout=10):
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.items) >= n, timeout=timeout)
            assert ok, f"expected {n} items, got {len(self.items)}"
            return list(self.items)
