"""Fixtures for the compatibility suite: a real `drover serve` per test module (see
drover_proc.py), driven by the pinned boto3/botocore and awscli, plus raw SigV4-signed HTTP for
what the SDKs will not send.

Nothing here may read the developer's ~/.aws: the AWS_* variables of the calling environment are
dropped at import, botocore's config and credentials files point at nothing, and every client is
given its credentials, region, endpoint and CA bundle explicitly (awscli subprocesses get the
data directory's own files, as a user would)."""

import configparser
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import botocore.session
import pytest
import requests
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from drover_proc import DroverProcess, drop_created_schemas, drover_bin

# --- isolation from the developer's AWS setup ------------------------------------------------
for _k in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[_k]
_NOWHERE = str(Path(__file__).resolve().parent / ".no-such-aws-file")
os.environ["AWS_CONFIG_FILE"] = _NOWHERE
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = _NOWHERE
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

# awscli v1 (pinned version) exit codes, checked against 1.45.11: a service error (any
# ClientError) and client-side parameter validation both exit 255; argument parsing errors exit 2.
AWSCLI_SERVICE_ERROR_RC = 255


def pytest_sessionfinish(session, exitstatus):
    drop_created_schemas()


def aws_executable():
    cand = Path(sys.executable).parent / "aws"
    return str(cand) if cand.exists() else "aws"


class CliResult:
    def __init__(self, args, proc):
        self.args = args
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    @property
    def json(self):
        assert self.stdout.strip(), f"no output from {self.args}: rc={self.rc} stderr={self.stderr}"
        return json.loads(self.stdout)

    def __repr__(self):
        return f"aws {' '.join(self.args)} -> rc={self.rc}\nstdout={self.stdout}\nstderr={self.stderr}"


class Drover:
    """A running test server plus the ways to talk to it."""

    def __init__(self, server: DroverProcess):
        self.server = server
        self._ids = itertools.count(1)

    # -- basic facts ---------------------------------------------------------------------------
    @property
    def endpoint(self):
        return self.server.endpoint

    @property
    def region(self):
        return self.server.region

    @property
    def data_dir(self):
        return self.server.data_dir

    @property
    def ca(self):
        return self.server.ca_file

    @property
    def access_key(self):
        return self.server.access_key

    @property
    def secret_key(self):
        return self.server.secret_key

    @property
    def account(self):
        return self._account

    def name(self, base="t"):
        """A unique resource name for this server."""
        return f"{base}-{next(self._ids)}"

    def arn(self, kind, name):
        return f"arn:aws:iot:{self.region}:{self._account}:{kind}/{name}"

    # -- boto3 ---------------------------------------------------------------------------------
    def client(self, access_key=None, secret_key=None, region=None, endpoint=None, validate=True, retries=1):
        session = boto3.Session(
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=region or self.region,
        )
        return session.client(
            "iot",
            endpoint_url=endpoint or self.endpoint,
            verify=self.ca,
            config=Config(
                retries={"max_attempts": retries, "mode": "standard"},
                parameter_validation=validate,
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    # -- S3 ---------------------------------------------------------------------------------------
    @property
    def s3_endpoint(self):
        return f"https://127.0.0.1:{self.server.s3_port}"

    def s3_client(self, access_key=None, secret_key=None, region=None, **config):
        """A boto3 S3 client for drover's S3 endpoint (path-style, as drover's config file says)."""
        session = boto3.Session(
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=region or self.region,
        )
        return session.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            verify=self.ca,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                **config,
            ),
        )

    def awscli(self, *args, endpoint=None, expect_rc=0, timeout=300):
        """Runs `aws --endpoint-url E ARGS...` against the S3 endpoint (any service); asserts
        the exit code."""
        argv = [aws_executable(), "--endpoint-url", endpoint or self.s3_endpoint, *args]
        proc = subprocess.run(argv, env=self.cli_env(), capture_output=True, text=True, timeout=timeout)
        res = CliResult(list(args), proc)
        if expect_rc is not None:
            assert res.rc == expect_rc, repr(res)
        return res

    def client_from_files(self, endpoint=None):
        """A boto3 client configured only by the data directory's `credentials` and `config`
        files and its CA bundle, as the README tells users to do."""
        bs = botocore.session.Session()
        bs.set_config_variable("config_file", str(self.data_dir / "config"))
        bs.set_config_variable("credentials_file", str(self.data_dir / "credentials"))
        bs.set_config_variable("ca_bundle", self.ca)
        return boto3.Session(botocore_session=bs).client("iot", endpoint_url=endpoint or self.endpoint)

    def start(self):
        self.server.start()
        self.iot = self.client()
        self.iot_raw = self.client(validate=False)
        self._account = self._learn_account()
        return self

    def _learn_account(self):
        name = f"account-probe-{os.getpid()}"
        arn = self.iot.create_thing(thingName=name)["thingArn"]
        self.iot.delete_thing(thingName=name)
        m = re.fullmatch(rf"arn:aws:iot:{re.escape(self.region)}:(\d{{12}}):thing/{name}", arn)
        assert m, f"unexpected thing ARN {arn!r}"
        return m.group(1)

    # -- awscli --------------------------------------------------------------------------------
    def cli_env(self):
        env = self.server.client_env()
        for k in [k for k in env if k.startswith("AWS_")]:
            del env[k]
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(self.data_dir / "credentials"),
            AWS_CONFIG_FILE=str(self.data_dir / "config"),
            AWS_CA_BUNDLE=self.ca,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_PAGER="",
        )
        return env

    def aws(self, *args, endpoint=None, expect_rc=0, output="json"):
        """Runs `aws --endpoint-url E --output json iot ARGS...`; asserts the exit code."""
        argv = [aws_executable(), "--endpoint-url", endpoint or self.endpoint, "--output", output, "iot", *args]
        proc = subprocess.run(argv, env=self.cli_env(), capture_output=True, text=True, timeout=60)
        res = CliResult(list(args), proc)
        if expect_rc is not None:
            assert res.rc == expect_rc, repr(res)
        return res

    def aws_error(self, *args, code):
        """Runs an awscli command that must fail with service error `code`."""
        res = self.aws(*args, expect_rc=AWSCLI_SERVICE_ERROR_RC)
        assert f"({code})" in res.stderr, repr(res)
        return res

    # -- raw signed HTTP -----------------------------------------------------------------------
    def signed(self, method, path, body=None, headers=None, access_key=None, secret_key=None,
               service="iot", region=None, sign=True):
        """Sends one request signed with SigV4 (header auth); returns the requests.Response."""
        url = self.endpoint + path
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        req = AWSRequest(method=method, url=url, data=body, headers=hdrs)
        if sign:
            creds = Credentials(access_key or self.access_key, secret_key or self.secret_key)
            SigV4Auth(creds, service, region or self.region).add_auth(req)
        prepared = req.prepare()
        return requests.request(method, prepared.url, headers=dict(prepared.headers), data=prepared.body,
                                verify=self.ca, timeout=30)

    def presigned_url(self, method, path, expires=3600):
        req = AWSRequest(method=method, url=self.endpoint + path)
        SigV4QueryAuth(Credentials(self.access_key, self.secret_key), "iot", self.region, expires=expires).add_auth(req)
        return req.prepare().url

    # -- the drover CLI ------------------------------------------------------------------------
    def drover(self, *args, expect_rc=0):
        argv = [drover_bin(), *args, "--data-dir", str(self.data_dir)]
        if self.server.database_url and args[0] in ("keys", "presign"):
            argv += ["--database-url", self.server.database_url]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if expect_rc is not None:
            assert proc.returncode == expect_rc, f"{argv}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc


def start_drover(tmp_dir, region="us-east-1", extra_args=(), data_name="data"):
    Path(tmp_dir).mkdir(parents=True, exist_ok=True)
    return Drover(DroverProcess(Path(tmp_dir) / data_name, region=region, extra_args=extra_args)).start()


def stop_drover(d):
    rc = d.server.stop()
    assert rc == 0, f"drover exited with {rc} after SIGTERM:\n{d.server.log()}"


@pytest.fixture(scope="module")
def drover(tmp_path_factory):
    """One drover server for the whole test module (tests use unique names)."""
    d = start_drover(tmp_path_factory.mktemp("drover"))
    yield d
    stop_drover(d)


@pytest.fixture(scope="module")
def iot(drover):
    return drover.iot


@pytest.fixture
def fresh_drover(tmp_path):
    """A server of this test's own, for tests that need an empty registry or stop the server."""
    d = start_drover(tmp_path)
    yield d
    if d.server.proc and d.server.proc.poll() is None:
        stop_drover(d)


def error_code(exc_info):
    """(HTTP status, error code, message) from a botocore ClientError."""
    err = exc_info.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"], err["Error"].get("Message", "")


def read_ini(path):
    cp = configparser.ConfigParser()
    cp.read(path)
    return cp
