"""Memory and cost per turn of each function, the memory size that minimises it, and 1,000 turns in dollars.

`python -m tests.benchmarks.run --only footprint`. Each function runs in a
process of its own, as in its Lambda execution environment: ChatFunction and
HistoryFunction in a lean runtime loop (footprint_runtime.py) that imports the
handler and invokes it on function URL events; StreamFunction as its run.sh
starts it, uvicorn serving the Starlette app, fed the requests the Web Adapter
would forward. DynamoDB (moto, recording every call) and the Messages-API
stand-in run in other processes, so nothing of theirs counts. Each function's
peak resident memory is read after import and init, and after each series of
turns, up to turns of the largest message and a 1,000-token reply; its CPU
time (user + system, all threads) per turn is what a smaller memory size
would slow down.

The stand-in answers at once here (no model pace): a turn's time in Lambda is
modelled instead as the handler's own time measured here (CPU, at the CPU
share of the memory size, plus its waits on DynamoDB) plus Claude's time at
the pace the other sections use (400 ms to the first token, 15 ms per token),
during which both the chat function (waiting for the whole reply) and the
stream function (forwarding it) are billed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from local.function_url import lambda_event
from local.template import FunctionSpec, function_properties, url_functions
from local.web_adapter import request_from_event
from tests.benchmarks import capacity
from tests.benchmarks.harness import Standin, _spawn, _stop, _wait_for_port
from tests.dev_server import ROOT, free_port

# Prices, us-east-1, as published on the providers' pages (sources and date: PRICES_NOTE).
PRICES = {
    "lambda_arm64_gb_second": 0.0000133334,  # first 6 billion GB-s a month
    "lambda_request": 0.20 / 1e6,
    "dynamodb_write_unit": 0.625 / 1e6,  # on-demand, Standard table class
    "dynamodb_read_unit": 0.125 / 1e6,
    "haiku_input_token": 1.00 / 1e6,  # Claude Haiku 4.5
    "haiku_output_token": 5.00 / 1e6,
    "haiku_cache_write_token": 1.25 / 1e6,  # 5-minute cache: 1.25x input
    "haiku_cache_read_token": 0.10 / 1e6,  # 0.1x input
}
PRICES_DATE = "2026-09-20"
PRICES_NOTE = (
    "Prices (USD, us-east-1), taken as unchanged on 2026-09-20, the date of the newest copy of AWS's "
    "Lambda pricing page found: AWS Lambda arm64 $0.0000133334 per GB-second (the first 6 billion GB-s "
    "a month; that copy renders its GB-second rates in the browser, so this rate is the arm64 one long "
    "published there, as in price tables that cite it, e.g. artillery 2.0.28's) and $0.20 per million "
    "requests (in that copy); DynamoDB on-demand, Standard table class, $0.625 per million write request "
    "units and $0.125 per million read request units (since the November 2024 cut; AWS News Blog, "
    "updated 2025-01-31); Claude Haiku 4.5 $1 per million input tokens and $5 per million output tokens "
    "(platform.claude.com, the Haiku 4.5 overview, read late 2026, where it is a legacy model), 5-minute "
    "cache writes 1.25x and cache reads 0.1x the input price (its Pricing page). Free tiers, SnapStart's "
    "snapshot cache and restore charges (both scale with the memory size too), DynamoDB storage, "
    "CloudWatch Logs and data transfer are left out."
)

FULL_VCPU_MB = 1769  # Lambda: one full vCPU at 1,769 MB; the CPU share is proportional below it
CANDIDATE_MB = (256, 384, 512, 640, 768, 896, 1024, 1280, 1536, 1769)
FIRST_TOKEN_S, TOKEN_INTERVAL_S = 0.4, 0.015  # the other sections' stand-in pace
# Headroom above the measured peak: the peak here is CPython on x86_64; Lambda's arm64 build, the
# runtime's own client (awslambdaric, in the same process) and a larger reply than measured can
# each add some; an out-of-memory error kills the turn, so a size must fit the peak 1.5 times over.
HEADROOM = 1.5
# Lambda Web Adapter (a Rust binary, its own process in StreamFunction's sandbox): not measured here
# (it is not run locally); an estimate from its size (a 4-5 MB binary, tokio and hyper buffers).
ADAPTER_ALLOWANCE_MB = 10
# "Without hurting latency": a size may add at most this much CPU time per turn over 1,024 MB, every
# function's size before this benchmark (issue 15).
LATENCY_BUDGET_MS = 5.0
TODAY_MB = 1024
GOAL_CPU_MS = 6.0  # issue 15's goal for the handler's CPU per warm turn on this machine


def function_python() -> str:
    """The functions' interpreter: Python 3.13, Lambda's runtime, where the repo's 3.13 venv exists."""
    runtime = ROOT / ".venv-py313" / "bin" / "python"
    return str(runtime) if runtime.exists() else sys.executable


@dataclass(frozen=True)
class Conversation:
    name: str
    turns: int
    message_chars: int
    reply_words: int


FULL_CONVERSATIONS = (
    Conversation("short chat", 6, 200, 80),
    Conversation("long chat", 30, 800, 250),
    Conversation("largest turns", 6, 15_000, 1000),  # near MAX_MESSAGE_CHARS and MAX_TOKENS: memory
)
SMOKE_CONVERSATIONS = (
    Conversation("short chat", 2, 200, 20),
    Conversation("long chat", 3, 800, 40),
    Conversation("largest turns", 1, 15_000, 200),
)
COST_CONVERSATIONS = ("short chat", "long chat")


def _message(conversation: Conversation, turn: int, salt: str) -> str:
    """A turn's message; the salt keeps each function's conversations apart in the stand-in's shared
    prompt cache (the same text from another function would read that one's cache entries)."""
    directive = f"[standin:words={conversation.reply_words}] "
    words = (f"{salt}{turn}x{n}" for n in range(10**6))
    text = directive
    for word in words:
        if len(text) + len(word) + 1 > conversation.message_chars:
            break
        text += word + " "
    return text.strip()


# ---- the processes -------------------------------------------------------------------------------


@dataclass
class _Process:
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        _stop(self.process)


def _start_dynamodb() -> tuple[_Process, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers' / 'shared'}{os.pathsep}{ROOT}", **_AWS}
    process, log = _spawn(
        [sys.executable, "-m", "tests.benchmarks.footprint", "--dynamodb", str(port)],
        env,
        ROOT,
        "footprint-dynamodb",
    )
    _wait_for_port(port, process, log, "the footprint benchmark's DynamoDB")
    import boto3

    from local.dynamodb import create_table

    url = f"http://127.0.0.1:{port}"
    create_table(
        boto3.client(
            "dynamodb",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        ),
        TABLE,
    )
    return _Process(process, log), url


_AWS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
TABLE = "claude-chat-footprint"


def _serve_dynamodb(port: int) -> None:
    from local.dynamodb import LocalDynamoDB
    from tests.benchmarks.counted_dynamodb import CallRecorder

    LocalDynamoDB(port=port, wrap=CallRecorder).start()
    while True:
        time.sleep(3600)


def _function_env(spec: FunctionSpec, standin_url: str, dynamodb_url: str, secret: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC_", "AWS_", "TABLE_NAME", "SESSION_SECRET", "PYTHONPATH"))
    }
    env.update({name: str(value) for name, value in spec.environment.items() if isinstance(value, str | int)})
    env.update(
        _AWS,
        PYTHONPATH=f"{ROOT / 'layers' / 'shared'}{os.pathsep}{spec.code_dir}",
        AWS_ENDPOINT_URL_DYNAMODB=dynamodb_url,
        TABLE_NAME=TABLE,
        SESSION_SECRET=secret,
        ANTHROPIC_API_KEY="bench",
        ANTHROPIC_BASE_URL=standin_url,
        RATE_LIMIT_MAX="1000000",
        DAILY_TOKEN_BUDGET="1000000000",
        GLOBAL_DAILY_TOKEN_BUDGET="1000000000",
        CLAUDE_TIMEOUT_SECONDS="25",
        POWERTOOLS_LOG_LEVEL="WARNING",
        AWS_LAMBDA_FUNCTION_NAME=spec.logical_id,
    )
    return env


class _Buffered:
    """A buffered function in footprint_runtime.py: events in, results and its own usage out."""

    def __init__(self, spec: FunctionSpec, env: dict[str, str]) -> None:
        module, handler = spec.handler.rsplit(".", 1)
        command = [
            function_python(),
            str(Path(__file__).with_name("footprint_runtime.py")),
            str(spec.code_dir),
            module,
            handler,
            spec.logical_id,
            str(spec.timeout_seconds),
        ]
        self._log = open(os.devnull, "wb")  # noqa: SIM115 - the handler's logs (warnings only)
        self.process = subprocess.Popen(
            command,
            cwd=spec.code_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self.start = self._read()
        self.init = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the footprint runtime exited ({self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(event) + "\n").encode())
        self.process.stdin.flush()
        return self._read()

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            _stop(self.process)
        self._log.close()


def _proc_usage(pid: int) -> dict[str, float]:
    """Peak and current resident memory (KB) and CPU seconds (all threads) of another process."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {line.split(":")[0]: line.split()[1] for line in status if line.startswith(("VmHWM", "VmRSS"))}
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {
        "maxrss_kb": float(fields["VmHWM"]),
        "cpu_s": (int(stat[11]) + int(stat[12])) / ticks,
        "wall_s": time.monotonic(),
    }


class _Streaming:
    """StreamFunction as run.sh starts it: uvicorn serving app:app, fed what the Web Adapter forwards."""

    def __init__(self, spec: FunctionSpec, env: dict[str, str]) -> None:
        self.spec = spec
        self.port = free_port()
        command = [
            function_python(),
            "-m",
            "uvicorn",
            "app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--lifespan",
            "off",
        ]
        self.process, self._log = _spawn(command, env, spec.code_dir, "footprint-stream")
        deadline = time.monotonic() + 60
        while True:  # the adapter's readiness check
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"StreamFunction did not start:\n{self._log.read_text(errors='replace')}")
            time.sleep(0.05)
        self.init = _proc_usage(self.process.pid)
        for hook in ("/snapstart/before-checkpoint", "/snapstart/after-restore"):  # as the adapter does
            httpx.post(f"{self.url}{hook}", timeout=10).raise_for_status()
        self.client = httpx.Client(base_url=self.url, timeout=60)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        headers, body = request_from_event(event, self.spec.logical_id, self.spec.timeout_seconds)
        before = _proc_usage(self.process.pid)
        with self.client.stream("POST", event["rawPath"], headers=headers, content=body) as response:
            text = "".join(response.iter_text())
        after = _proc_usage(self.process.pid)
        return {
            "phase": "turn",
            "status": response.status_code,
            "session": response.headers.get("x-session-id"),
            "chars": len(text),
            "maxrss_kb": after["maxrss_kb"],
            "cpu_s": after["cpu_s"] - before["cpu_s"],
            "wall_s": after["wall_s"] - before["wall_s"],
        }

    def stop(self) -> None:
        self.client.close()
        _stop(self.process)


# ---- the turns -----------------------------------------------------------------------------------

_addresses = iter(range(1, 10**6))


def _event(
    method: str, path: str, body: dict[str, Any] | None = None, session: str | None = None, query: str = ""
) -> dict[str, Any]:
    headers = [("content-type", "application/json")] + ([("x-session-id", session)] if session else [])
    n = next(_addresses)
    return lambda_event(
        method=method,
        path=path,
        query_string=query,
        headers=headers,
        body=json.dumps(body).encode() if body is not None else b"",
        peer_ip=f"10.0.{n // 250}.{1 + n % 250}",
    )


def _take_dynamodb(dynamodb_url: str) -> dict[str, float]:
    calls = httpx.delete(f"{dynamodb_url}/_calls", params={"bodies": "1"}, timeout=30).json()["calls"]
    units = [capacity.call_capacity(c["operation"], c.get("request"), c.get("response")) for c in calls]
    return {
        "calls": len(calls),
        "read_units": sum(u["read"] for u in units),
        "write_units": sum(u["write"] for u in units),
    }


def _tokens(records: list[dict[str, Any]]) -> dict[str, int]:
    keys = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    return {key: sum(int((record.get("usage") or {}).get(key) or 0) for record in records) for key in keys}


def _converse(
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
    conversation: Conversation,
    path: str,
    standin: Standin,
    dynamodb_url: str,
    session_of: Callable[[dict[str, Any]], str | None],
    salt: str,
) -> tuple[list[dict[str, Any]], str | None]:
    """One conversation, turn by turn; each turn's CPU, time, peak memory, DynamoDB units and tokens."""
    session: str | None = None
    turns = []
    standin.take()
    _take_dynamodb(dynamodb_url)
    for n in range(conversation.turns):
        answer = invoke(_event("POST", path, {"message": _message(conversation, n, salt)}, session))
        status = answer.get("status") or answer["result"]["statusCode"]
        if status != 200:
            raise RuntimeError(f"{path} answered {status} on turn {n + 1} of {conversation.name}")
        session = session_of(answer) or session
        turns.append(
            {
                "cpu_ms": answer["cpu_s"] * 1000,
                "wall_ms": answer["wall_s"] * 1000,
                "maxrss_mb": answer["maxrss_kb"] / 1024,
                "dynamodb": _take_dynamodb(dynamodb_url),
                "tokens": _tokens(standin.take()),
            }
        )
    return turns, session


def _first_turn(
    invoke: Callable[[dict[str, Any]], dict[str, Any]], path: str, standin: Standin, dynamodb_url: str
) -> dict[str, Any]:
    """The first request after init pays for lazily built state (connections, caches): kept apart from
    the warm turns, since an execution environment serves many turns after it."""
    turns, _ = _converse(
        invoke,
        Conversation("first turn", 1, 200, 20),
        path,
        standin,
        dynamodb_url,
        lambda _answer: None,
        f"first{path}",
    )
    return _summary(turns)


def _chat_session(answer: dict[str, Any]) -> str | None:
    body = json.loads(answer["result"].get("body") or "{}")
    session = body.get("session")
    return str(session) if session else None


def _summary(turns: list[dict[str, Any]]) -> dict[str, Any]:
    def per_turn(key: str) -> float:
        return statistics.fmean(turn[key] for turn in turns)

    def total(part: str, key: str) -> float:
        return float(sum(turn[part][key] for turn in turns))

    return {
        "turns": len(turns),
        "cpu_ms": per_turn("cpu_ms"),
        "cpu_ms_median": statistics.median(turn["cpu_ms"] for turn in turns),
        "wall_ms": per_turn("wall_ms"),
        "peak_mb": max(turn["maxrss_mb"] for turn in turns),
        "dynamodb": {
            key: total("dynamodb", key) / len(turns) for key in ("calls", "read_units", "write_units")
        },
        "tokens": {key: total("tokens", key) / len(turns) for key in turns[0]["tokens"]},
    }


def measure(smoke: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    conversations = SMOKE_CONVERSATIONS if smoke else FULL_CONVERSATIONS
    specs = {spec.logical_id: spec for spec in url_functions()}
    memory = {name: properties.get("MemorySize") for name, properties in function_properties().items()}
    standin = Standin.start(0, 0)  # at once: the model's pace is modelled, not waited for
    dynamodb, dynamodb_url = _start_dynamodb()
    secret = secrets.token_urlsafe(32)
    functions: dict[str, Any] = {}
    try:
        envs = {name: _function_env(spec, standin.url, dynamodb_url, secret) for name, spec in specs.items()}
        chat = _Buffered(specs["ChatFunction"], envs["ChatFunction"])
        sessions: dict[str, str | None] = {}
        try:
            record = _record(chat.start, chat.init)
            record["first_turn"] = _first_turn(chat.invoke, "/api/chat", standin, dynamodb_url)
            for conversation in conversations:
                log(f"footprint: ChatFunction, {conversation.name}")
                turns, sessions[conversation.name] = _converse(
                    chat.invoke, conversation, "/api/chat/history", standin, dynamodb_url, _chat_session, "c"
                )
                record["conversations"][conversation.name] = _summary(turns)
            stateless, _ = _converse(
                chat.invoke, conversations[0], "/api/chat", standin, dynamodb_url, lambda _answer: None, "l"
            )
            record["conversations"]["stateless"] = _summary(stateless)
            functions["ChatFunction"] = _finish(record, memory["ChatFunction"])
        finally:
            chat.stop()
        log("footprint: HistoryFunction")
        history = _Buffered(specs["HistoryFunction"], envs["HistoryFunction"])
        try:
            record = _record(history.start, history.init)
            first = history.invoke(_event("GET", "/api/usage"))  # the first request: kept apart
            _take_dynamodb(dynamodb_url)
            record["first_turn"] = {"cpu_ms": first["cpu_s"] * 1000, "wall_ms": first["wall_s"] * 1000}
            reads = []
            for name, session in sessions.items():
                for path, query in (
                    ("/api/chat/history", "limit=50"),
                    ("/api/conversations", ""),
                    ("/api/conversations/default/export", "format=json"),
                ):
                    answer = history.invoke(_event("GET", path, session=session, query=query))
                    if answer["result"]["statusCode"] != 200:
                        raise RuntimeError(f"{path} answered {answer['result']['statusCode']} ({name})")
                    reads.append(
                        {
                            "cpu_ms": answer["cpu_s"] * 1000,
                            "wall_ms": answer["wall_s"] * 1000,
                            "maxrss_mb": answer["maxrss_kb"] / 1024,
                            "dynamodb": _take_dynamodb(dynamodb_url),
                            "tokens": {},
                        }
                    )
            record["conversations"]["reads"] = _summary(reads)
            functions["HistoryFunction"] = _finish(record, memory["HistoryFunction"])
        finally:
            history.stop()
        stream = _Streaming(specs["StreamFunction"], envs["StreamFunction"])
        try:
            record = _record(None, stream.init)
            record["first_turn"] = _first_turn(stream.invoke, "/api/chat/stream", standin, dynamodb_url)
            for conversation in conversations:
                log(f"footprint: StreamFunction, {conversation.name}")
                turns, _ = _converse(
                    stream.invoke,
                    conversation,
                    "/api/chat/history/stream",
                    standin,
                    dynamodb_url,
                    lambda answer: answer.get("session"),
                    "s",
                )
                record["conversations"][conversation.name] = _summary(turns)
            functions["StreamFunction"] = _finish(record, memory["StreamFunction"])
            functions["StreamFunction"]["adapter_allowance_mb"] = ADAPTER_ALLOWANCE_MB
        finally:
            stream.stop()
    finally:
        dynamodb.stop()
        standin.stop()
    version = subprocess.run(
        [function_python(), "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    results = {"functions": functions, "conversations": [asdict(c) for c in conversations], "python": version}
    results["model"] = model(results)
    return results


def _record(start: dict[str, Any] | None, init: dict[str, Any]) -> dict[str, Any]:
    return {
        "start_mb": start["maxrss_kb"] / 1024 if start else None,
        "init_mb": init["maxrss_kb"] / 1024,
        "init_cpu_ms": init["cpu_s"] * 1000,
        "conversations": {},
    }


def _finish(record: dict[str, Any], memory_size: Any) -> dict[str, Any]:
    record["peak_mb"] = max([record["init_mb"]] + [c["peak_mb"] for c in record["conversations"].values()])
    record["template_mb"] = memory_size if isinstance(memory_size, int) else None
    return record


# ---- the model -----------------------------------------------------------------------------------


def claude_seconds(output_tokens: float) -> float:
    """Claude's time for a reply at the benchmark's pace: first token, then one per interval."""
    return FIRST_TOKEN_S + TOKEN_INTERVAL_S * max(0.0, output_tokens - 1)


def turn_seconds(summary: dict[str, Any], memory_mb: float, waits_for_claude: bool = True) -> float:
    """A turn's billed duration at a memory size: Claude's time, the waits on DynamoDB, the CPU at its "
    "share."""
    cpu = float(summary["cpu_ms"]) / 1000
    io = max(0.0, float(summary["wall_ms"]) / 1000 - cpu)
    claude = claude_seconds(summary["tokens"].get("output_tokens", 0)) if waits_for_claude else 0.0
    return claude + io + cpu * max(1.0, FULL_VCPU_MB / memory_mb)


def added_latency_ms(summary: dict[str, Any], memory_mb: float) -> float:
    """CPU time a turn loses to a CPU share under one vCPU, against a full one."""
    return float(summary["cpu_ms"]) * (max(1.0, FULL_VCPU_MB / memory_mb) - 1.0)


def lambda_cost(summary: dict[str, Any], memory_mb: int, waits_for_claude: bool = True) -> float:
    seconds = turn_seconds(summary, memory_mb, waits_for_claude)
    return memory_mb / 1024 * seconds * PRICES["lambda_arm64_gb_second"] + PRICES["lambda_request"]


def required_mb(function: dict[str, Any]) -> float:
    return HEADROOM * (float(function["peak_mb"]) + float(function.get("adapter_allowance_mb", 0)))


def choose(required: float, typical: dict[str, Any]) -> int:
    """The smallest candidate that fits the peak with headroom and adds at most the latency budget over
    1,024 MB (every function's size before) on the function's typical turn. Smaller is always cheaper:
    the CPU work costs the same GB-seconds at any size under one vCPU, and the wait for Claude costs
    less."""
    today = added_latency_ms(typical, TODAY_MB)
    for size in CANDIDATE_MB:
        if size >= required and added_latency_ms(typical, size) - today <= LATENCY_BUDGET_MS:
            return size
    return CANDIDATE_MB[-1]


def _heaviest(function: dict[str, Any]) -> dict[str, Any]:
    return max(function["conversations"].values(), key=lambda c: c["cpu_ms"])


def model(results: dict[str, Any]) -> dict[str, Any]:
    """Per function: cost and added latency per size, the chosen size; then 1,000 turns in dollars."""
    functions = results["functions"]
    sizes: dict[str, Any] = {}
    for name, function in functions.items():
        waits = name != "HistoryFunction"
        typical = function["conversations"].get("short chat") or function["conversations"]["reads"]
        worst = _heaviest(function)
        sizes[name] = {
            "required_mb": required_mb(function),
            "chosen_mb": choose(required_mb(function), typical),
            # What the same rule picks once a warm turn costs the goal of CPU (about 6 ms here).
            "chosen_mb_at_goal_cpu": choose(required_mb(function), {**typical, "cpu_ms": GOAL_CPU_MS}),
            "worst": next(k for k, v in function["conversations"].items() if v is worst),
            "rows": [
                {
                    "mb": size,
                    "fits": size >= required_mb(function),
                    "added_ms_typical": added_latency_ms(typical, size),
                    "added_ms_worst": added_latency_ms(worst, size),
                    "cost_per_1000_typical": 1000 * lambda_cost(typical, size, waits),
                }
                for size in CANDIDATE_MB
            ],
        }
    thousand = []
    for conversation in COST_CONVERSATIONS:
        for name in ("ChatFunction", "StreamFunction"):
            summary = functions.get(name, {}).get("conversations", {}).get(conversation)
            if summary is None:
                continue
            today, chosen = functions[name]["template_mb"] or TODAY_MB, sizes[name]["chosen_mb"]
            for label, size in [("template", today)] + ([("chosen", chosen)] if chosen != today else []):
                thousand.append(_thousand_turns(conversation, name, label, size, summary))
    return {"sizes": sizes, "thousand_turns": thousand, "prices": PRICES, "prices_date": PRICES_DATE}


def _thousand_turns(
    conversation: str, name: str, label: str, size: int, summary: dict[str, Any]
) -> dict[str, Any]:
    n = 1000
    tokens = {key: value * n for key, value in summary["tokens"].items()}
    gb_seconds = size / 1024 * turn_seconds(summary, size) * n
    read_units = summary["dynamodb"]["read_units"] * n
    write_units = summary["dynamodb"]["write_units"] * n
    dollars = {
        "lambda": gb_seconds * PRICES["lambda_arm64_gb_second"] + n * PRICES["lambda_request"],
        "dynamodb": read_units * PRICES["dynamodb_read_unit"] + write_units * PRICES["dynamodb_write_unit"],
        "tokens": tokens["input_tokens"] * PRICES["haiku_input_token"]
        + tokens["output_tokens"] * PRICES["haiku_output_token"]
        + tokens["cache_creation_input_tokens"] * PRICES["haiku_cache_write_token"]
        + tokens["cache_read_input_tokens"] * PRICES["haiku_cache_read_token"],
    }
    share = (
        (dollars["lambda"] + dollars["dynamodb"]) / dollars["tokens"] if dollars["tokens"] else float("inf")
    )
    return {
        "conversation": conversation,
        "function": name,
        "memory": label,
        "memory_mb": size,
        "gb_seconds": gb_seconds,
        "requests": n,
        "read_units": read_units,
        "write_units": write_units,
        "tokens": tokens,
        "dollars": dollars,
        "infrastructure_share": share,
        "seconds_per_turn": turn_seconds(summary, size),
    }


# ---- the report ----------------------------------------------------------------------------------


def goal(results: dict[str, Any]) -> dict[str, Any] | None:
    """Infrastructure (Lambda + DynamoDB) under 5% of the token cost of a typical Haiku 4.5 turn."""
    at_chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for row in results.get("footprint", {}).get("model", {}).get("thousand_turns", []):
        at_chosen[row["conversation"], row["function"]] = row  # the chosen size's row comes last
    rows = list(at_chosen.values())
    if not rows:
        return None
    worst = max(rows, key=lambda r: r["infrastructure_share"])
    return {
        "name": "Cost: infrastructure (Lambda + DynamoDB) per Haiku 4.5 turn",
        "target": "< 5% of the turn's token cost",
        "measured": f"{worst['infrastructure_share']:.1%} at most "
        f"({worst['conversation']}, {worst['function']})",
        "met": worst["infrastructure_share"] < 0.05,
        "why": f"per 1,000 turns of the {worst['conversation']}, Lambda costs "
        f"${worst['dollars']['lambda']:.4f} "
        f"(mostly billed while waiting for Claude) and DynamoDB ${worst['dollars']['dynamodb']:.4f} against "
        f"${worst['dollars']['tokens']:.4f} of tokens: a turn this short buys few tokens",
    }


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def markdown(results: dict[str, Any]) -> str:
    """The BENCHMARKS.md sections: memory per function, memory size per function, 1,000 turns."""
    footprint = results.get("footprint")
    if not footprint:
        return ""
    functions, fitted = footprint["functions"], footprint["model"]
    out: list[str] = []
    add = out.append
    add("## Memory and CPU per function\n")
    add(
        "`python -m tests.benchmarks.run --only footprint` (`tests/benchmarks/footprint.py`): each "
        "function in a "
        "process of its own, as in its execution environment (ChatFunction and HistoryFunction in a lean "
        "runtime loop that imports the handler and invokes it on function URL events; StreamFunction as "
        "run.sh "
        "starts it, uvicorn and the Starlette app, fed the requests the Web Adapter forwards), with DynamoDB "
        "(moto) and the Messages-API stand-in in other processes, the stand-in answering at once. Peak "
        "memory "
        "is the process's peak resident set (VmHWM), after import + init and after "
        "each series of `/api/chat/history` (or `/history/stream`) turns; CPU is user + system time of the "
        "process, all threads, per turn (mean). The history function reads each conversation back (a page, "
        "the list, the JSON export). "
        + ", ".join(
            f"**{c['name']}**: {c['turns']} turns of {c['message_chars']:,}-character messages and "
            f"{c['reply_words']:,}-word replies"
            for c in footprint["conversations"]
        )
        + f"; **stateless**: the {footprint['conversations'][0]['name']}'s turns through `/api/chat`, "
        "without a session. Tracing is off "
        "here, as everywhere outside Lambda (Powertools' rule), so the X-Ray SDK that init loads when "
        "deployed and its subsegment per DynamoDB call are in none of these figures. CPU per turn here "
        "is not the handler CPU section's figure: these turns carry longer replies (each streamed delta "
        "parsed by the anthropic SDK) and the runtime loop's own work. StreamFunction's CPU is read from "
        "/proc, in 10 ms ticks (a mean over many turns is still fair).\n"
    )
    add(
        "| function | template MB | interpreter MB | after import + init MB | peak MB | init CPU ms "
        "| first request CPU ms | series | CPU ms per turn | handler time ms per turn "
        "| DynamoDB calls per turn |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, function in functions.items():
        first = f"{function['first_turn']['cpu_ms']:,.0f}" if function.get("first_turn") else "n/a"
        for series, summary in function["conversations"].items():
            add(
                f"| {name} | {_mb(function['template_mb'])} | {_mb(function['start_mb'])} "
                f"| {_mb(function['init_mb'])} | {_mb(function['peak_mb'])} | {function['init_cpu_ms']:,.0f} "
                f"| {first} | {series} | {summary['cpu_ms']:.1f} "
                f"| {summary['wall_ms']:.1f} | {summary['dynamodb']['calls']:.1f} |"
            )
    add("")
    add(
        "The first request (a short stateless turn, after init and, for the stream function, the SnapStart "
        "hooks) builds what later ones reuse (connections, caches); it is kept out of the per-turn means, "
        "since an execution environment serves many turns. Init CPU runs once per published version under "
        "SnapStart; a restore is not measured here. Handler time includes the waits on moto, slower than "
        "DynamoDB's few milliseconds a call, which overstates the modelled durations below slightly.\n"
    )
    add(
        "Lambda's memory size bounds the whole sandbox. StreamFunction's also runs the Lambda Web Adapter "
        "(a Rust binary of about 4-5 MB, aws/aws-lambda-web-adapter PRs 114 and 120; its own process), "
        f"not run here: estimated at {ADAPTER_ALLOWANCE_MB} MB resident (its pages plus tokio and hyper "
        "buffers for one request at a time), not measured. Lambda's Python runtime client runs in the "
        "handler's process (a few MB, not measured: this loop stands in for it). Figures are CPython "
        f"{footprint.get('python', '?')} (`.venv-py313`, where it exists) on this x86_64 machine; Lambda "
        "runs Python 3.13 on arm64.\n"
    )
    add("## Memory size per function\n")
    add(
        f"Lambda gives a function a CPU share proportional to its memory (one vCPU at {FULL_VCPU_MB:,} "
        "MB), and "
        "bills GB-seconds. A turn's billed time is mostly Claude's (the chat function waits for the whole "
        "reply, the stream function forwards it), which costs in proportion to the memory size, while its "
        "CPU work costs the same GB-seconds at any size under one vCPU and only takes longer. So the "
        "smallest size is the cheapest, and the choice is how much added latency to accept: here each "
        f"function gets the smallest size that fits its peak {HEADROOM:g} times over (the peak is x86_64 "
        "CPython; arm64, the runtime client and a larger turn than measured add some, and running out of "
        "memory kills the turn) and adds at most "
        f"{LATENCY_BUDGET_MS:g} ms of CPU time over {TODAY_MB:,} MB (every function's size before this "
        "measure) on its typical turn (a short "
        "chat's; a history read for HistoryFunction), on a grid of 128 MB steps (finer steps would chase "
        "the noise in CPU per turn). "
        "Added latency is CPU per turn x (1,769 / size - 1), against a full vCPU, taking this machine's "
        "core for one vCPU; cost per 1,000 short-chat turns (history reads for HistoryFunction) includes the "
        f"model's time at {FIRST_TOKEN_S * 1000:g} ms to the first token and {TOKEN_INTERVAL_S * 1000:g} "
        "ms per "
        "token.\n"
    )
    names = list(fitted["sizes"])
    add("| MB | " + " | ".join(f"{n}: $ per 1,000 turns, added ms typical / heaviest" for n in names) + " |")
    add("|---|" + "---|" * len(names))
    for index, size in enumerate(CANDIDATE_MB):
        cells = []
        for name in names:
            row = fitted["sizes"][name]["rows"][index]
            mark = " **chosen**" if size == fitted["sizes"][name]["chosen_mb"] else ""
            fits = "" if row["fits"] else " (too small)"
            cells.append(
                f"${row['cost_per_1000_typical']:.4f}, {row['added_ms_typical']:.1f} / "
                f"{row['added_ms_worst']:.1f}{fits}{mark}"
            )
        add(f"| {size:,} | " + " | ".join(cells) + " |")
    add("")
    add(
        "Chosen: "
        + "; ".join(
            f"{name} {sizes['chosen_mb']:,} MB (needs {sizes['required_mb']:,.0f} MB; template "
            f"{_mb(functions[name]['template_mb'])} MB; heaviest turns: {sizes['worst']}; at the goal of "
            f"{GOAL_CPU_MS:g} ms CPU per warm turn the rule would pick {sizes['chosen_mb_at_goal_cpu']:,} MB)"
            for name, sizes in fitted["sizes"].items()
        )
        + ".\n"
    )
    add("## Cost of 1,000 turns\n")
    add(
        "1,000 turns of each conversation through the chat function (`/api/chat/history`) and through the "
        "stream function (`/api/chat/history/stream`), at "
        "the template's memory size (and at the chosen one where they differ): Lambda "
        "GB-seconds (the modelled turn time above x memory) and requests, DynamoDB read and write units "
        "(worked out from the items on the wire, `tests/benchmarks/capacity.py`: each turn's session, "
        "history, rate limit and token budget calls) and the Claude tokens the stand-in billed (Claude Haiku "
        "4.5's caching rules; these conversations stay under its 4,096-token cache minimum or just past "
        "it). The page's history reads (HistoryFunction) are not turns and are left out. "
        + PRICES_NOTE
        + "\n"
    )
    add(
        "| conversation | function | MB | GB-s | requests | read units | write units | input tokens "
        "| output tokens | cache write / read tokens | Lambda $ | DynamoDB $ | Claude $ | infrastructure "
        "/ Claude |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in fitted["thousand_turns"]:
        tokens, dollars = row["tokens"], row["dollars"]
        add(
            f"| {row['conversation']} | {row['function']} | {row['memory_mb']:,} ({row['memory']}) "
            f"| {row['gb_seconds']:,.0f} | {row['requests']:,} | {row['read_units']:,.0f} | "
            f"{row['write_units']:,.0f} "
            f"| {tokens['input_tokens']:,.0f} | {tokens['output_tokens']:,.0f} "
            f"| {tokens['cache_creation_input_tokens']:,.0f} / {tokens['cache_read_input_tokens']:,.0f} "
            f"| {dollars['lambda']:.4f} | {dollars['dynamodb']:.4f} | {dollars['tokens']:.2f} "
            f"| {row['infrastructure_share']:.1%} |"
        )
    add("")
    measured = goal(results)
    if measured:
        add(
            f"**Goal** (infrastructure under 5% of the token cost of a typical Haiku 4.5 turn, at the chosen "
            f"sizes): {'met' if measured['met'] else 'not met'}, {measured['measured']}.\n"
        )
    from tests.benchmarks import turn_prices  # here: the processes this module starts need none of it

    files_and_searches = turn_prices.markdown(results)
    if files_and_searches:
        add(files_and_searches)
    return "\n".join(out)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--dynamodb"]:
        _serve_dynamodb(int(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
