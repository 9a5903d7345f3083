"""The README walkthrough, run exactly as printed.

The shell block between the walkthrough markers in README.md is executed with bash in a
directory whose `drover-data` is the test server's data directory; only the port differs
(the README uses the default 8443). Then the registry must hold what the walkthrough made."""

import json
import os
import re
import subprocess

import boto3

from drover_proc import REPO, DroverProcess, drover_bin


def json_values(text):
    """Every top-level JSON value in `text`, in order (awscli prints one per command)."""
    decoder, values, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        value, i = decoder.raw_decode(text, i)
        values.append(value)
    return values


def walkthrough_script(marker="walkthrough"):
    text = (REPO / "README.md").read_text()
    block = re.search(rf"<!-- {marker}:start -->\s*```sh\n(.*?)```\s*<!-- {marker}:end -->", text, re.S)
    assert block, "README.md has no walkthrough block"
    return block.group(1)


def test_readme_walkthrough_runs_as_printed(tmp_path):
    server = DroverProcess(tmp_path / "drover-data").start()
    try:
        script = walkthrough_script()
        assert "https://localhost:8443" in script
        script = script.replace("https://localhost:8443", f"https://localhost:{server.http_port}")
        # The walkthrough exports the AWS_* variables itself.
        env = {k: v for k, v in server.client_env().items() if not k.startswith("AWS_")}
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, f"walkthrough failed:\n{result.stdout}\n{result.stderr}"
        out = result.stdout
        assert '"thingName": "dev1"' in out
        assert '"app_version": "2.0"' in out and '"site": "lab"' in out
        # The two listings: all four things via --page-size 2, then the second page.
        assert re.search(r'\[\s*"dev1",\s*"dev2",\s*"dev3",\s*"dev4"\s*\]', out), out
        assert re.search(r'\[\s*"dev3",\s*"dev4"\s*\]\s*$', out), out

        iot = boto3.Session(
            aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key, region_name="us-east-1"
        ).client("iot", endpoint_url=server.endpoint, verify=server.ca_file)
        assert iot.describe_thing(thingName="dev1")["attributes"] == {"app_version": "2.0", "site": "lab"}
        assert iot.list_things_in_thing_group(thingGroupName="lab-devices")["things"] == ["dev1"]

        # The dynamic-group walkthrough continues on the same data.
        script = walkthrough_script("index-walkthrough").replace(
            "https://localhost:8443", f"https://localhost:{server.http_port}")
        exports = walkthrough_script().splitlines()[0]
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", exports + "\n" + script],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, f"index walkthrough failed:\n{result.stdout}\n{result.stderr}"
        arrays = [v for v in json_values(result.stdout) if isinstance(v, list)]
        # dev5 is in the group, search finds both lab things, and after its update it has left.
        assert arrays == [["dev5"], ["dev1", "dev5"], []], result.stdout
    finally:
        server.stop()


def s3_walkthrough_script():
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- s3-walkthrough:start -->\s*```sh\n(.*?)```\s*<!-- s3-walkthrough:end -->", text, re.S)
    assert block, "README.md has no S3 walkthrough block"
    return block.group(1)


def test_readme_s3_walkthrough_runs_as_printed(tmp_path):
    """The artifact-store section: awscli upload with only the credentials and CA exported
    (no config file: botocore picks path-style for localhost itself), then a presigned
    download with curl."""
    server = DroverProcess(tmp_path / "drover-data").start()
    try:
        script = s3_walkthrough_script()
        assert "https://localhost:9443" in script
        script = script.replace("https://localhost:9443", f"https://localhost:{server.s3_port}")
        env = {k: v for k, v in server.client_env().items() if not k.startswith("AWS_")}
        env["AWS_CONFIG_FILE"] = str(tmp_path / "no-such-config")
        env["PATH"] = os.pathsep.join([os.path.dirname(drover_bin()), env["PATH"]])
        if server.database_url:
            # `drover presign` reads the same store as the server (DROVER_DATABASE_URL).
            env["DROVER_DATABASE_URL"] = server.database_url
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, f"walkthrough failed:\n{result.stdout}\n{result.stderr}"
        assert re.search(r"20000000 app-2\.0\.bin", result.stdout), result.stdout
        assert result.stdout.strip().endswith("download verified"), result.stdout
    finally:
        server.stop()
