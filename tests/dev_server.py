"""The local server (`make dev`) as a subprocess, for the integration and browser tests.

Every HTTP client binds a different 127.x.y.z source address, so each test has
its own rate-limit budget on one shared server, exactly as distinct browsers
would. (A browser always connects from 127.0.0.1, so browser tests that need a
budget of their own start a server of their own.)
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
_addresses = itertools.count(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def next_loopback_address() -> str:
    n = next(_addresses)
    return f"127.0.{1 + n // 250}.{1 + n % 250}"


@dataclass
class DevServer:
    base_url: str
    standin_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    rate_limit_max: int
    rate_limit_window: int
    _clients: list[httpx.Client] = field(default_factory=list)

    def client(self, address: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client whose requests come from their own loopback IP (their own budget)."""
        transport = httpx.HTTPTransport(local_address=address or next_loopback_address())
        client = httpx.Client(base_url=self.base_url, transport=transport, timeout=30, **kwargs)
        self._clients.append(client)
        return client

    def dynamodb(self) -> tuple[Any, str]:
        """A client of the server's embedded DynamoDB and its table name, to read what was stored."""
        import boto3

        found = re.search(r"DynamoDB: embedded \(moto\) at (\S+), table '([^']+)'", self.log())
        if found is None:
            raise RuntimeError(f"the server did not say where its DynamoDB is:\n{self.log()}")
        client = boto3.client(
            "dynamodb",
            endpoint_url=found[1],
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        return client, found[2]

    def tokens_used_today(self, key: str) -> int:
        """The day's token counter of a client key (`GB#all`: all callers) as stored."""
        client, table = self.dynamodb()
        pk = key if key.startswith("GB#") else f"TB#{key}"
        day = time.strftime("%Y-%m-%d", time.gmtime())
        item = client.get_item(
            TableName=table, Key={"pk": {"S": pk}, "sk": {"S": f"D#{day}"}}, ConsistentRead=True
        ).get("Item")
        return int(item["used"]["N"]) if item else 0

    def standin_requests(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.standin_url}/_standin/requests", timeout=5).json())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        # The server, its worker processes and all: they share the session started for them.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_dev_server(*, module: str = "local.server", **settings: str) -> DevServer:
    """`make dev` (or `python -m <module>`, a wrapper around it) with these environment settings."""
    port, standin_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC_", "AWS_", "TABLE_NAME", "SESSION_SECRET"))
    }
    env.update(
        PYTHONPATH=f"{ROOT / 'layers' / 'shared'}{os.pathsep}{ROOT}",
        PORT=str(port),
        STANDIN_PORT=str(standin_port),
        # Two "execution environments" each: enough for a turn to overlap another; the servers
        # of the concurrency tests ask for four (each worker's init costs CPU at every start).
        DEV_WORKERS="2",
        RATE_LIMIT_MAX="5",
        # An hour-long window: a test's few requests never straddle a window boundary.
        RATE_LIMIT_WINDOW_SECONDS="3600",
        CLAUDE_TIMEOUT_SECONDS="2",
        CLAUDE_MAX_RETRIES="0",
        POWERTOOLS_LOG_LEVEL="INFO",
    )
    env.update(settings)
    log_file = tempfile.NamedTemporaryFile(prefix="dev-server-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = DevServer(
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{standin_port}",
        process,
        Path(log_file.name),
        int(env["RATE_LIMIT_MAX"]),
        int(env["RATE_LIMIT_WINDOW_SECONDS"]),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local server exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/api/openapi.json", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"the local server did not start in time:\n{server.log()}")
