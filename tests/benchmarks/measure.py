"""Each measurement of BENCHMARKS.md: what it drives, what it subtracts, what it returns.

Every latency of a turn is reported as "added": the backend's time as its
client saw it, minus the stand-in's own time for that very request (from the
stand-in's timing record), so the model's speed cancels out and what is left
is the backend's cost. Systems alternate request by request.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from tests.benchmarks.capacity import call_capacity
from tests.benchmarks.harness import Ours, Seed, Standin
from tests.dev_server import ROOT, next_loopback_address

# Anthropic's published multipliers of the base input price (5-minute cache).
CACHE_WRITE_MULTIPLIER = 1.25
CACHE_READ_MULTIPLIER = 0.1

System = Ours | Seed


@dataclass(frozen=True)
class Sizes:
    """How much of each measurement to run: the full benchmark, or the smoke test's token amounts."""

    first_token_ms: float
    token_interval_ms: float
    cold_rounds: int
    warm_rounds: int
    stream_rounds: int
    stream_words: int
    growth_turns: int
    money_turns: int
    money_message_chars: int
    load_clients: int
    load_seconds: float


FULL = Sizes(400, 15, 7, 25, 15, 40, 200, 20, 1600, 50, 30)
SMOKE = Sizes(20, 2, 1, 2, 2, 5, 3, 3, 200, 3, 1.5)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median and spread; never a single timing."""
    return {
        "n": len(values),
        "median": percentile(values, 50),
        "p10": percentile(values, 10),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "min": min(values, default=math.nan),
        "max": max(values, default=math.nan),
    }


def _tag() -> str:
    return f"bench-{uuid.uuid4().hex[:12]}"


# The embedded DynamoDB serves one call at a time and parses a request only once the interpreter is
# free, so two calls sent together reach it a millisecond or two apart: count them as one round trip.
CONCURRENT_WITHIN = 0.003
# A round trip that ended this long before the turn's next step began was not what the turn waited on
# (it ran in the background, beside other work).
WAITED_ON_WITHIN = 0.020


def _round_trips(calls: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """Groups of calls in flight together, as (first start, last end), in time order."""
    groups: list[tuple[float, float]] = []
    for call in sorted(calls, key=lambda c: c["start"]):
        if groups and call["start"] <= groups[-1][1] + CONCURRENT_WITHIN:
            groups[-1] = (groups[-1][0], max(groups[-1][1], call["end"]))
        else:
            groups.append((call["start"], call["end"]))
    return groups


def _waited_on(groups: list[tuple[float, float]], then: float) -> int:
    """Round trips the next step followed at once: those on the critical path."""
    nexts = [start for start, _end in groups[1:]] + [then]
    return sum(
        next_start - end <= WAITED_ON_WITHIN for (_start, end), next_start in zip(groups, nexts, strict=True)
    )


def dynamodb_split(calls: list[dict[str, Any]], timing: dict[str, Any] | None) -> dict[str, Any]:
    """A turn's calls, before Claude was called (ended before the stand-in got the request) and after."""
    received = timing["received"] if timing else math.inf
    done = (timing.get("done") or received) if timing else math.inf
    before = [c for c in calls if c["end"] <= received]
    after = [c for c in calls if c["start"] >= done]
    units = [call_capacity(c["operation"], c.get("request"), c.get("response")) for c in calls]
    return {
        "calls": len(calls),
        "before": len(before),
        "after": len(after),
        "during": len(calls) - len(before) - len(after),
        "round_trips_before": len(_round_trips(before)),
        "critical_before": _waited_on(_round_trips(before), received),
        "round_trips_after": len(_round_trips(after)),
        "operations": dict(Counter(c["operation"] for c in calls)),
        "read_units": sum(u["read"] for u in units),
        "server_ms": sum(c["end"] - c["start"] for c in calls) * 1000,
        "write_units": sum(u["write"] for u in units),
    }


def buffered_turn(
    system: System, client: httpx.Client, path: str, text: str, standin: Standin, headers: dict[str, str]
) -> dict[str, Any]:
    """One buffered request, with its added latency and (ours) its DynamoDB calls."""
    tag = _tag()
    if isinstance(system, Ours):
        system.calls()
    started = time.perf_counter()
    response = client.post(path, json={"message": f"{tag} {text}"}, headers=headers)
    total = time.perf_counter() - started
    records = [r for r in standin.take() if tag in json.dumps(r["body"])]
    timing = records[-1]["timing"] if records else None  # after an SDK retry, the attempt that answered
    own = timing["done"] - timing["received"] if timing and timing.get("done") else None
    turn: dict[str, Any] = {
        "status": response.status_code,
        "total_ms": total * 1000,
        "standin_ms": own * 1000 if own is not None else None,
        "added_ms": (total - own) * 1000 if own is not None else None,
        "usage": records[-1]["usage"] if records else None,
        "attempts": len(records),
        "body": response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else None,
    }
    if isinstance(system, Ours):
        turn["dynamodb"] = dynamodb_split(system.calls(bodies=True), timing)
    return turn


def _ok_added(turns: list[dict[str, Any]]) -> list[float]:
    return [t["added_ms"] for t in turns if t["status"] == 200 and t["added_ms"] is not None]


def warm_turns(systems: dict[str, System], standin: Standin, rounds: int) -> dict[str, Any]:
    """Added latency of stateless and stateful turns, warm, the systems alternating request by request."""
    results: dict[str, Any] = {}
    for kind, path in (("stateless", "/api/chat"), ("stateful", "/api/chat/history")):
        per_system: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
        clients = {name: httpx.Client(
            base_url=s.base_url, timeout=60,
            transport=httpx.HTTPTransport(local_address=next_loopback_address()),
        ) for name, s in systems.items()}  # fmt: skip
        sessions: dict[str, dict[str, str]] = {name: {} for name in systems}
        try:
            for index in range(rounds + 2):  # two warm-up rounds, not counted
                names = list(systems) if index % 2 == 0 else list(reversed(systems))
                for name in names:
                    turn = buffered_turn(
                        systems[name], clients[name], path, "Hello there", standin, sessions[name]
                    )
                    session = (turn["body"] or {}).get("session")
                    if session:
                        sessions[name] = {"X-Session-Id": session}
                    if index >= 2:
                        per_system[name].append(turn)
        finally:
            for client in clients.values():
                client.close()
        results[kind] = {name: _turn_summary(turns) for name, turns in per_system.items()}
    return results


def _turn_summary(turns: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "added_ms": summary(_ok_added(turns)),
        "standin_ms": summary([t["standin_ms"] for t in turns if t["standin_ms"] is not None]),
        "errors": sum(t["status"] != 200 for t in turns),
    }
    splits = [t["dynamodb"] for t in turns if "dynamodb" in t]
    if splits:
        result["dynamodb"] = {
            key: percentile([s[key] for s in splits], 50)
            for key in (
                "calls",
                "before",
                "after",
                "during",
                "round_trips_before",
                "critical_before",
                "round_trips_after",
            )
        }
        result["dynamodb"]["operations"] = splits[len(splits) // 2]["operations"]
    return result


def stream_turn(client: httpx.Client, path: str, words: int, standin: Standin) -> dict[str, Any]:
    """One streamed reply: added time to headers and to the first text, and each delta's forwarding delay."""
    tag = _tag()
    events: list[tuple[float, int]] = []  # (received at, characters of text)
    started = time.time()
    with client.stream("POST", path, json={"message": f"{tag} [standin:words={words}]"}) as response:
        headers_at = time.time()
        buffer = b""
        for chunk in response.iter_raw():
            now = time.time()
            buffer += chunk
            while b"\n\n" in buffer:
                raw, buffer = buffer.split(b"\n\n", 1)
                for line in raw.split(b"\n"):
                    if line.startswith(b"data: ") and line[6:] != b"[DONE]":
                        text = json.loads(line[6:]).get("text") or ""
                        if text:
                            events.append((now, len(text)))
    status = response.status_code
    records = [r for r in standin.take() if tag in json.dumps(r["body"])]
    if status != 200 or len(records) != 1 or not events:
        return {"status": status, "ok": False}
    timing = records[0]["timing"]
    standin_first = timing["first_delta"] - timing["received"]
    delays, received, index = [], 0, 0
    sent_total = 0
    for sent_at, chars in timing["deltas"]:
        sent_total += chars
        while index < len(events) and received < sent_total:
            received += events[index][1]
            index += 1
        delays.append((events[index - 1][0] - sent_at) * 1000)
    return {
        "status": status,
        "ok": True,
        "headers_added_ms": ((headers_at - started) - standin_first) * 1000,
        "first_text_added_ms": ((events[0][0] - started) - standin_first) * 1000,
        "delta_delays_ms": delays,
        "deltas": len(timing["deltas"]),
        "events": len(events),
    }


def streaming(systems: dict[str, System], standin: Standin, rounds: int, words: int) -> dict[str, Any]:
    per_system: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
    clients = {name: httpx.Client(
        base_url=s.base_url, timeout=60, transport=httpx.HTTPTransport(local_address=next_loopback_address())
    ) for name, s in systems.items()}  # fmt: skip
    try:
        for index in range(rounds + 1):  # one warm-up round
            for name in list(systems) if index % 2 == 0 else list(reversed(systems)):
                turn = stream_turn(clients[name], "/api/chat/stream", words, standin)
                if index:
                    per_system[name].append(turn)
    finally:
        for client in clients.values():
            client.close()
    results = {}
    for name, turns in per_system.items():
        good = [t for t in turns if t["ok"]]
        results[name] = {
            "errors": len(turns) - len(good),
            "headers_added_ms": summary([t["headers_added_ms"] for t in good]),
            "first_text_added_ms": summary([t["first_text_added_ms"] for t in good]),
            "delta_delay_ms": summary([d for t in good for d in t["delta_delays_ms"]]),
            "deltas": sum(t["deltas"] for t in good),
            "events": sum(t["events"] for t in good),
        }
    return results


COLD_CHILD = """
import importlib.util, sys, time
sys.path[:0] = [{layer!r}, {code_dir!r}]
started = time.perf_counter()
{body}
print(time.perf_counter() - started)
"""
LOAD_HANDLER = """
spec = importlib.util.spec_from_file_location("handler", {path!r})
module = importlib.util.module_from_spec(spec)
sys.modules["handler"] = module
spec.loader.exec_module(module)
"""


TRACING_OFF = ", tracing off"  # a variant of a function's cold start, not a function of its own


def cold_starts(rounds: int, variants: bool = True) -> dict[str, Any]:
    """Import and init of each handler module in a fresh interpreter, against `import anthropic`.

    `variants` adds each traced function with tracing off (the full run; the smoke run skips them).
    """
    from local.template import url_functions

    base_env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SESSION_SECRET": "bench",
        "ANTHROPIC_API_KEY": "bench",
        "TABLE_NAME": "bench",
    }
    layer = str(ROOT / "layers" / "shared")
    subjects: dict[str, tuple[str, dict[str, str]]] = {
        "import anthropic": (
            COLD_CHILD.format(layer=layer, code_dir=layer, body="import anthropic"),
            base_env,
        )
    }
    for spec in url_functions():
        path = spec.code_dir / f"{spec.module_name.replace('.', '/')}.py"
        env = {
            **{k: str(v) for k, v in spec.environment.items() if isinstance(v, str | int | float)},
            **base_env,
            # As in Lambda: Powertools reads it to tell Lambda from elsewhere, so the Tracer (and the
            # X-Ray SDK) is on, as template.yaml's `Tracing: Active` has it (claude_chat/tracing.py).
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
        }
        code = COLD_CHILD.format(
            layer=layer, code_dir=str(spec.code_dir), body=LOAD_HANDLER.format(path=str(path))
        )
        subjects[spec.logical_id] = (code, env)
        if variants and "claude_chat.tracing" in path.read_text():  # and init with tracing off
            subjects[f"{spec.logical_id}{TRACING_OFF}"] = (code, {**env, "POWERTOOLS_TRACE_DISABLED": "true"})
    times: dict[str, list[float]] = {name: [] for name in subjects}
    names = list(subjects)
    warm_up = 1 if rounds > 1 else 0  # a round that warms the OS file cache, not counted (not in smoke)
    for index in range(rounds + warm_up):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            code, env = subjects[name]
            output = subprocess.run(
                [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
            if index >= warm_up:
                times[name].append(float(output.strip().splitlines()[-1]) * 1000)
    baseline = times["import anthropic"]
    return {
        name: {
            "ms": summary(values),
            "ratio": summary([value / base for value, base in zip(values, baseline, strict=True)]),
        }
        for name, values in times.items()
    }


def growth(systems: dict[str, System], standin: Standin, turns: int) -> dict[str, Any]:
    """One conversation per system from turn 1 to `turns`, alternating turn by turn."""
    per_system: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
    clients = {name: httpx.Client(
        base_url=s.base_url, timeout=60, transport=httpx.HTTPTransport(local_address=next_loopback_address())
    ) for name, s in systems.items()}  # fmt: skip
    headers: dict[str, dict[str, str]] = {name: {} for name in systems}
    text = "Tell me more about that, please, in a few words. " * 4 + "[standin:words=12]"
    try:
        for index in range(turns):
            for name in list(systems) if index % 2 == 0 else list(reversed(systems)):
                turn = buffered_turn(
                    systems[name], clients[name], "/api/chat/history", text, standin, headers[name]
                )
                session = (turn["body"] or {}).get("session")
                if session:
                    headers[name] = {"X-Session-Id": session}
                turn.pop("body")
                per_system[name].append({"turn": index + 1, **turn})
    finally:
        for client in clients.values():
            client.close()
    return {name: {"turns": turns_, **_flatness(turns_)} for name, turns_ in per_system.items()}


def _flatness(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """Early (after the history window fills) against late turns: medians and their ratio."""
    count = len(turns)
    early = turns[10:30] if count >= 60 else turns[: max(1, count // 2)]
    late = turns[-20:] if count >= 60 else turns[max(1, count // 2) :] or turns
    result: dict[str, Any] = {
        "errors": [{"turn": t["turn"], "status": t["status"]} for t in turns if t["status"] != 200],
        "early_turns": [early[0]["turn"], early[-1]["turn"]] if early else [],
        "late_turns": [late[0]["turn"], late[-1]["turn"]] if late else [],
    }
    for key, values in (
        ("added_ms", _ok_added),
        ("capacity_units", _units),
        ("added_excl_dynamodb_ms", _excl),
    ):
        first, last = percentile(values(early), 50), percentile(values(late), 50)
        if not math.isnan(first):
            result[key] = {
                "early_median": first,
                "late_median": last,
                "ratio": last / first if first else math.nan,
            }
    return result


def _excl(turns: list[dict[str, Any]]) -> list[float]:
    """Added latency less the embedded DynamoDB's own time serving the turn's calls."""
    return [
        t["added_ms"] - t["dynamodb"]["server_ms"]
        for t in turns
        if "dynamodb" in t and t["status"] == 200 and t["added_ms"] is not None
    ]


def _units(turns: list[dict[str, Any]]) -> list[float]:
    return [t["dynamodb"]["read_units"] + t["dynamodb"]["write_units"] for t in turns if "dynamodb" in t]


def money(systems: dict[str, System], standin: Standin, turns: int, message_chars: int) -> dict[str, Any]:
    """Input tokens billed over one conversation per system, from the usage the stand-in billed."""
    results: dict[str, Any] = {}
    for name, system in systems.items():
        with httpx.Client(
            base_url=system.base_url, timeout=60,
            transport=httpx.HTTPTransport(local_address=next_loopback_address()),
        ) as client:  # fmt: skip
            headers: dict[str, str] = {}
            totals = Counter[str]()
            errors = 0
            for index in range(turns):
                filler = (f"Turn {index + 1}: here is a longer question with some context. " * 40)[
                    :message_chars
                ]
                turn = buffered_turn(
                    system, client, "/api/chat/history", f"{filler} [standin:words=30]", standin, headers
                )
                session = (turn["body"] or {}).get("session")
                if session:
                    headers = {"X-Session-Id": session}
                if turn["status"] != 200 or not turn["usage"]:
                    errors += 1
                    continue
                for key in (
                    "input_tokens",
                    "cache_creation_input_tokens",
                    "cache_read_input_tokens",
                    "output_tokens",
                ):
                    totals[key] += turn["usage"].get(key) or 0
        equivalent = (
            totals["input_tokens"]
            + CACHE_WRITE_MULTIPLIER * totals["cache_creation_input_tokens"]
            + CACHE_READ_MULTIPLIER * totals["cache_read_input_tokens"]
        )
        results[name] = {**totals, "equivalent_input_tokens": equivalent, "errors": errors, "turns": turns}
    return results


def load(base_url: str, clients: int, seconds: float, path: str = "/api/chat") -> dict[str, Any]:
    """`clients` concurrent clients, each from its own loopback IP, for `seconds`: throughput, latency."""

    async def run() -> dict[str, Any]:
        latencies: list[float] = []
        outcomes = Counter[str]()
        deadline = time.perf_counter() + seconds

        async def client_loop() -> None:
            transport = httpx.AsyncHTTPTransport(local_address=next_loopback_address())
            async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=120) as client:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    try:
                        response = await client.post(path, json={"message": f"{_tag()} Hello"})
                    except httpx.HTTPError as error:
                        outcomes[type(error).__name__] += 1
                        continue
                    outcomes[str(response.status_code)] += 1
                    if response.status_code == 200:
                        latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        return {
            "clients": clients,
            "seconds": elapsed,
            "completed": len(latencies),
            "throughput_rps": len(latencies) / elapsed,
            "latency_ms": summary(latencies),
            "errors": sum(n for outcome, n in outcomes.items() if outcome != "200"),
            "outcomes": dict(outcomes),
        }

    return asyncio.run(run())


def timed(label: str, step: Callable[[], Any], log: Callable[[str], None]) -> Any:
    log(f"{label}...")
    started = time.perf_counter()
    result = step()
    log(f"{label}: {time.perf_counter() - started:.1f} s")
    return result
