"""Start and stop a real `drover serve` for tests: free ports, a data directory, readiness on
/healthz, and the credentials it writes. Every compatibility test drives the server this way."""

import configparser
import os
import random
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def drover_bin():
    return os.environ.get("DROVER_BIN", str(REPO / "target" / "debug" / "drover"))


_HANDED_OUT = set()


def _ephemeral_low():
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port nothing listens on, below the kernel's ephemeral range. Tests restart a killed
    server on the same ports; an outgoing connection made in between only ever takes an
    ephemeral port, so it cannot be the one the restart needs."""
    low = _ephemeral_low()
    if low > 20_000:
        for _ in range(1000):
            port = random.randrange(20_000, low)
            if port in _HANDED_OUT:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _HANDED_OUT.add(port)
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_schema_url(base_url):
    """Creates a fresh schema for one test server and returns the URL that selects it, so test
    servers sharing the PostgreSQL test database never see each other's data. The schemas are
    dropped when the test session ends (see conftest.py)."""
    import uuid

    schema = f"drover_compat_{uuid.uuid4().hex[:12]}"
    subprocess.run(["psql", base_url, "-q", "-c", f'CREATE SCHEMA "{schema}"'], check=True, capture_output=True)
    CREATED_SCHEMAS.append((base_url, schema))
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-c%20search_path%3D{schema}"


CREATED_SCHEMAS = []


def drop_created_schemas():
    while CREATED_SCHEMAS:
        base_url, schema = CREATED_SCHEMAS.pop()
        subprocess.run(["psql", base_url, "-q", "-c", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'], capture_output=True)


class DroverProcess:
    """One drover server on a data directory; `start()` again after `stop()` or a kill reuses
    the directory (and the same ports)."""

    def __init__(self, data_dir, region="us-east-1", database_url=None, extra_args=(), env=None):
        self.data_dir = Path(data_dir)
        self.region = region
        if database_url is None and os.environ.get("DROVER_TEST_DATABASE_URL"):
            database_url = postgres_schema_url(os.environ["DROVER_TEST_DATABASE_URL"])
        self.database_url = database_url
        self.extra_args = list(extra_args)
        self.env = env
        self.http_port, self.mqtt_port, self.s3_port = free_port(), free_port(), free_port()
        self.proc = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"

    @property
    def endpoint(self):
        return f"https://127.0.0.1:{self.http_port}"

    @property
    def pid(self):
        return self.proc.pid

    @property
    def ca_file(self):
        return str(self.data_dir / "root-ca.pem")

    def args(self):
        args = [
            drover_bin(), "serve",
            "--data-dir", str(self.data_dir),
            "--http-addr", f"127.0.0.1:{self.http_port}",
            "--mqtt-addr", f"127.0.0.1:{self.mqtt_port}",
            "--s3-addr", f"127.0.0.1:{self.s3_port}",
            "--region", self.region,
        ]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return args + self.extra_args

    def start(self, timeout=30):
        log = open(self.log_path, "ab")
        env = None if self.env is None else {**os.environ, **self.env}
        self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"drover exited with {self.proc.returncode}:\n{self.log()}")
            if self._healthy():
                self._read_credentials()
                return self
            time.sleep(0.1)
        raise AssertionError(f"drover did not become healthy in {timeout}s:\n{self.log()}")

    def _healthy(self):
        if not (self.data_dir / "root-ca.pem").exists():
            return False
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            with urllib.request.urlopen(f"{self.endpoint}/healthz", context=ctx, timeout=1) as r:
                return r.status == 200
        except Exception:
            return False

    def _read_credentials(self):
        cp = configparser.ConfigParser()
        cp.read(self.data_dir / "credentials")
        self.access_key = cp["default"]["aws_access_key_id"]
        self.secret_key = cp["default"]["aws_secret_access_key"]

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, timeout=10):
        """SIGTERM and wait; returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"drover did not stop within {timeout}s after SIGTERM")
        return self.proc.returncode if self.proc else None

    def wait(self):
        return self.proc.wait()

    def client_env(self):
        """Environment for awscli subprocesses: only drover's files, never ~/.aws."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(self.data_dir / "credentials"),
            AWS_CONFIG_FILE=str(self.data_dir / "config"),
            AWS_CA_BUNDLE=self.ca_file,
            AWS_EC2_METADATA_DISABLED="true",
        )
        # The pinned awscli lives beside the interpreter running the tests (the .venv that
        # scripts/test builds); put it first so `aws` is that one, not a system install.
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
        return env
