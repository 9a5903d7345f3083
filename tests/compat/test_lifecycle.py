"""The server as a process and its data directory: the files of the first start, clients that
use only those files, clean stop on SIGTERM/SIGINT, restarts that keep everything, another
region, and the TLS names the certificate covers."""

import re
import signal
import socket
import ssl
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, read_ini, start_drover, stop_drover


def test_first_start_writes_client_files(fresh_drover):
    d = fresh_drover
    creds = read_ini(d.data_dir / "credentials")
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", creds["default"]["aws_access_key_id"])
    assert len(creds["default"]["aws_secret_access_key"]) >= 32
    cfg = read_ini(d.data_dir / "config")
    assert cfg["default"]["region"] == "us-east-1"
    pem = (d.data_dir / "root-ca.pem").read_text()
    assert pem.startswith("-----BEGIN CERTIFICATE-----") and "-----END CERTIFICATE-----" in pem
    # the files alone are enough for boto3 (region from config, key from credentials)
    iot = d.client_from_files()
    name = d.name("fromfiles")
    assert iot.create_thing(thingName=name)["thingArn"] == d.arn("thing", name)


def test_localhost_and_127_0_0_1_both_verify(fresh_drover):
    d = fresh_drover
    port = d.server.http_port
    local = d.client(endpoint=f"https://localhost:{port}")
    name = d.name("viahost")
    local.create_thing(thingName=name)
    assert d.client(endpoint=f"https://127.0.0.1:{port}").describe_thing(thingName=name)["thingName"] == name
    # a name the certificate does not cover fails verification
    ctx = ssl.create_default_context(cafile=d.ca)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with pytest.raises(ssl.SSLCertVerificationError):
            with ctx.wrap_socket(sock, server_hostname="not-covered.example"):
                pass
    # and a client without drover's CA refuses the certificate
    ctx = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with pytest.raises(ssl.SSLCertVerificationError):
            with ctx.wrap_socket(sock, server_hostname="localhost"):
                pass


def _verifies(ca, port, hostname):
    ctx = ssl.create_default_context(cafile=ca)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            with ctx.wrap_socket(sock, server_hostname=hostname):
                return True
    except ssl.SSLCertVerificationError:
        return False


def _snapshot(d):
    return {
        "credentials": (d.data_dir / "credentials").read_bytes(),
        "root-ca.pem": (d.data_dir / "root-ca.pem").read_bytes(),
        "config": (d.data_dir / "config").read_bytes(),
    }


def _populate(d):
    iot = d.iot
    iot.create_thing_type(thingTypeName="sensor", thingTypeProperties={"thingTypeDescription": "s"})
    iot.create_thing(thingName="dev1", thingTypeName="sensor", attributePayload={"attributes": {"app_version": "1.0"}})
    iot.update_thing(thingName="dev1", attributePayload={"attributes": {"app_version": "2.0"}, "merge": True})
    iot.create_thing_group(thingGroupName="fleet", thingGroupProperties={"thingGroupDescription": "all"})
    iot.create_thing_group(thingGroupName="lab", parentGroupName="fleet")
    iot.add_thing_to_thing_group(thingGroupName="lab", thingName="dev1")
    iot.deprecate_thing_type(thingTypeName="sensor")
    return iot.describe_thing(thingName="dev1")["thingId"]


def _check_populated(d, thing_id):
    iot = d.iot
    t = iot.describe_thing(thingName="dev1")
    assert t["thingId"] == thing_id
    assert t["attributes"] == {"app_version": "2.0"}
    assert t["version"] == 2
    assert t["thingTypeName"] == "sensor"
    assert iot.describe_thing_type(thingTypeName="sensor")["thingTypeMetadata"]["deprecated"] is True
    g = iot.describe_thing_group(thingGroupName="lab")
    assert g["thingGroupMetadata"]["parentGroupName"] == "fleet"
    assert iot.list_things_in_thing_group(thingGroupName="fleet", recursive=True)["things"] == ["dev1"]
    assert [x["groupName"] for x in iot.list_thing_groups_for_thing(thingName="dev1")["thingGroups"]] == ["lab"]


def test_sigterm_stops_cleanly_and_restart_keeps_everything(fresh_drover):
    d = fresh_drover
    thing_id = _populate(d)
    before = _snapshot(d)
    account = d.account
    info_before = d.drover("info").stdout

    d.server.proc.send_signal(signal.SIGTERM)
    t0 = time.time()
    rc = d.server.proc.wait(timeout=10)
    assert rc == 0, f"exit code {rc} after SIGTERM:\n{d.server.log()}"
    assert time.time() - t0 < 10

    d.start()
    assert _snapshot(d) == before
    assert d.account == account
    _check_populated(d, thing_id)
    # the original key pair still works (a client built from the unchanged files)
    assert d.client_from_files().describe_thing(thingName="dev1")["version"] == 2
    info_after = d.drover("info").stdout
    assert account in info_before and account in info_after


def test_sigint_stops_cleanly(fresh_drover):
    d = fresh_drover
    d.iot.create_thing(thingName="before-sigint")
    d.server.proc.send_signal(signal.SIGINT)
    assert d.server.proc.wait(timeout=10) == 0, d.server.log()
    d.start()
    assert d.iot.describe_thing(thingName="before-sigint")["thingName"] == "before-sigint"


def test_restart_twice_and_keys_survive(fresh_drover):
    d = fresh_drover
    out = d.drover("keys", "create", "--description", "survivor").stdout
    key_id = re.search(r"\b(AKIA[A-Z0-9]{12,})\b", out).group(1)
    secret = re.search(r"aws_secret_access_key\s*[=:]\s*(\S+)", out).group(1)
    for _ in range(2):
        stop_drover(d)
        d.start()
    c = d.client(access_key=key_id, secret_key=secret)
    c.create_thing(thingName="made-with-new-key")
    assert d.iot.describe_thing(thingName="made-with-new-key")["version"] == 1


def test_new_hostname_on_restart_reissues_certificate_from_same_ca(fresh_drover):
    d = fresh_drover
    ca_before = (d.data_dir / "root-ca.pem").read_bytes()
    port = d.server.http_port
    assert _verifies(d.ca, port, "localhost")
    assert not _verifies(d.ca, port, "drover-alt.test")
    stop_drover(d)
    d.server.extra_args = ["--hostname", "drover-alt.test"]
    d.start()
    assert (d.data_dir / "root-ca.pem").read_bytes() == ca_before
    assert _verifies(d.ca, port, "drover-alt.test")
    assert _verifies(d.ca, port, "localhost")
    assert _verifies(d.ca, port, "127.0.0.1")


def test_region_eu_west_1(tmp_path):
    d = start_drover(tmp_path, region="eu-west-1")
    try:
        assert read_ini(d.data_dir / "config")["default"]["region"] == "eu-west-1"
        iot = d.client_from_files()
        assert iot.meta.region_name == "eu-west-1"
        out = iot.create_thing(thingName="eu-dev")
        assert out["thingArn"] == f"arn:aws:iot:eu-west-1:{d.account}:thing/eu-dev"
        assert iot.create_thing_group(thingGroupName="eu-group")["thingGroupArn"] == \
            f"arn:aws:iot:eu-west-1:{d.account}:thinggroup/eu-group"
        assert iot.create_thing_type(thingTypeName="eu-type")["thingTypeArn"] == \
            f"arn:aws:iot:eu-west-1:{d.account}:thingtype/eu-type"
        # a request signed for another region is refused and writes nothing
        with pytest.raises(ClientError) as ei:
            d.client(region="us-east-1").create_thing(thingName="us-dev")
        assert error_code(ei)[:2] == (403, "InvalidSignatureException")
        with pytest.raises(iot.exceptions.ResourceNotFoundException):
            iot.describe_thing(thingName="us-dev")
        # awscli takes the region from the data directory's config file
        res = d.aws("describe-thing", "--thing-name", "eu-dev")
        assert res.json["thingArn"] == out["thingArn"]
        info = d.drover("info").stdout
        assert "eu-west-1" in info and d.account in info
    finally:
        stop_drover(d)


def test_accounts_differ_between_data_dirs(tmp_path):
    a = start_drover(tmp_path / "a")
    b = start_drover(tmp_path / "b")
    try:
        assert a.account != b.account
        assert read_ini(a.data_dir / "credentials")["default"]["aws_access_key_id"] != \
            read_ini(b.data_dir / "credentials")["default"]["aws_access_key_id"]
        # a's key means nothing to b
        with pytest.raises(ClientError) as ei:
            b.client(access_key=a.access_key, secret_key=a.secret_key).list_things()
        assert error_code(ei)[:2] == (403, "UnrecognizedClientException")
    finally:
        stop_drover(a)
        stop_drover(b)


def test_drover_binary_help():
    from drover_proc import drover_bin

    out = subprocess.run([drover_bin(), "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    for flag in ("--data-dir", "--http-addr", "--mqtt-addr", "--s3-addr", "--region", "--hostname", "--database-url"):
        assert flag in out.stdout
