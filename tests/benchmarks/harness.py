"""The systems under measurement: one shared Messages-API stand-in, `make dev`, and the seed server.

Everything runs as its own process on this machine, so the client doing the
timing never shares an interpreter (or its GIL) with a server it times. Clocks
are compared with time.time(), which every process on one machine shares.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
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

from tests.dev_server import ROOT, DevServer, free_port, next_loopback_address, start_dev_server

SEED_DEFAULT = ROOT.parent / "shared" / "anchors" / "express-seed"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "claude-chat-bench"


class ComparatorUnavailable(RuntimeError):
    """The seed server cannot run here (no seed directory, node or npm)."""


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start in time:\n{log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _spawn(
    command: list[str], env: dict[str, str], cwd: Path, name: str
) -> tuple[subprocess.Popen[bytes], Path]:
    log = Path(tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False).name)  # noqa: SIM115
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    return process, log


@dataclass
class Standin:
    """The stand-in (timed_standin.py) in a process of its own, with the timing profile both systems share."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, first_token_ms: float, token_interval_ms: float) -> Standin:
        port = free_port()
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers' / 'shared'}{os.pathsep}{ROOT}"}
        command = [
            sys.executable, "-m", "tests.benchmarks.timed_standin",
            "--port", str(port), "--log-level", "warning",
            "--first-token-ms", str(first_token_ms), "--token-interval-ms", str(token_interval_ms),
        ]  # fmt: skip
        process, log = _spawn(command, env, ROOT, "standin")
        _wait_for_port(port, process, log, "the stand-in")
        return cls(f"http://127.0.0.1:{port}", process, log)

    def take(self) -> list[dict[str, Any]]:
        """The requests recorded since the last take (callers run one measured request at a time)."""
        records = list(httpx.get(f"{self.url}/_standin/requests", timeout=10).json())
        httpx.delete(f"{self.url}/_standin/requests", timeout=10)
        return records

    def take_one(self, tag: str) -> dict[str, Any]:
        mine = [record for record in self.take() if tag in json.dumps(record["body"])]
        if len(mine) != 1:
            raise RuntimeError(f"expected one stand-in request tagged {tag}, found {len(mine)}")
        return mine[0]

    def stop(self) -> None:
        _stop(self.process)


@dataclass
class Ours:
    """`make dev` (tests/dev_server.py) pointed at the shared stand-in, with DynamoDB call recording
    (counted_dynamodb.py)."""

    dev: DevServer
    dynamodb_url: str

    @classmethod
    def start(cls, standin: Standin) -> Ours:
        dynamodb_port = free_port()
        dev = start_dev_server(
            module="tests.benchmarks.counted_dynamodb",
            ANTHROPIC_API_KEY="bench",
            ANTHROPIC_BASE_URL=standin.url,
            DYNAMODB_PORT=str(dynamodb_port),
            # The load test's clients each draw from their own 127.x budget; none may run dry.
            RATE_LIMIT_MAX="1000000",
            DAILY_TOKEN_BUDGET="1000000000",  # on (its DynamoDB calls count), but never reached
            CLAUDE_TIMEOUT_SECONDS="25",
            # The production default: the SDK retries a connection the stand-in closed while idle
            # (the integration tests turn retries off; a benchmark must not count that race as a failure).
            CLAUDE_MAX_RETRIES="2",
            POWERTOOLS_LOG_LEVEL="WARNING",
            DEV_WORKERS="4",  # what BENCHMARKS.md says: the handlers in 4 worker processes
        )
        return cls(dev, f"http://127.0.0.1:{dynamodb_port}")

    @property
    def base_url(self) -> str:
        return self.dev.base_url

    def calls(self, bodies: bool = False) -> list[dict[str, Any]]:
        """DynamoDB calls since the last call of this method (read and reset in one step)."""
        response = httpx.delete(f"{self.dynamodb_url}/_calls", params={"bodies": "1"} if bodies else {})
        return list(response.json()["calls"])

    def stop(self) -> None:
        self.dev.stop()


@dataclass
class Seed:
    """The seed guide's Express server, run from its own directory's files; never copied into the repo."""

    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    @staticmethod
    def locate() -> Path:
        seed_dir = Path(os.environ.get("SEED_DIR", SEED_DEFAULT)).resolve()
        if not (seed_dir / "server.js").is_file() or not (seed_dir / "package-lock.json").is_file():
            raise ComparatorUnavailable(f"no seed server at {seed_dir} (set SEED_DIR)")
        for tool in ("node", "npm"):
            if shutil.which(tool) is None:
                raise ComparatorUnavailable(f"{tool} is not installed")
        return seed_dir

    @classmethod
    def install(cls) -> Path:
        """`npm ci` into a cache directory (the seed's own folder may be read-only); returns where."""
        seed_dir = cls.locate()
        lock = (seed_dir / "package-lock.json").read_bytes()
        target = CACHE / f"express-seed-{hashlib.sha256(lock).hexdigest()[:12]}"
        if not (target / "node_modules" / ".bench-installed").exists():
            target.mkdir(parents=True, exist_ok=True)
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(seed_dir / name, target / name)
            result = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--omit=dev"],
                cwd=target, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                raise ComparatorUnavailable(f"npm ci failed for the seed server:\n{result.stderr[-2000:]}")
            (target / "node_modules" / ".bench-installed").touch()
        link = (
            target / "server.js"
        )  # a symlink, so the seed's own file runs, resolved against node_modules here
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(seed_dir / "server.js")
        return target

    @classmethod
    def start(cls, standin: Standin, rate_limit_max: int = 1000000) -> Seed:
        target = cls.install()
        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "ANTHROPIC_API_KEY": "bench",
            "ANTHROPIC_BASE_URL": standin.url,
            "PORT": str(port),
            "RATE_LIMIT_MAX": str(rate_limit_max),
            "RATE_LIMIT_WINDOW_SECONDS": "3600",
            "NODE_ENV": "production",
        }
        command = ["node", "--preserve-symlinks", "--preserve-symlinks-main", "server.js"]
        process, log = _spawn(command, env, target, "seed")
        _wait_for_port(port, process, log, "the seed server")
        return cls(f"http://127.0.0.1:{port}", process, log)

    @staticmethod
    def node_version() -> str:
        return subprocess.run(
            ["node", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()

    def stop(self) -> None:
        _stop(self.process)


@dataclass
class Clients:
    """HTTP clients for one system, each from its own loopback address (its own rate-limit budget)."""

    base_url: str
    _open: list[httpx.Client] = field(default_factory=list)

    def new(self) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=next_loopback_address())
        client = httpx.Client(base_url=self.base_url, transport=transport, timeout=60)
        self._open.append(client)
        return client

    def close(self) -> None:
        for client in self._open:
            client.close()
