"""The benchmarks' stand-in: paced like a real model, and timing what it sends.

Why here and not in local/: only the benchmarks need it. A timing profile makes
every request take as long as a real model would, and each request's record
says when its bytes went out, so a benchmark can subtract the stand-in's own
time from a backend's. `make dev`'s stand-in (local/messages_standin/) answers
at once and times nothing; this subclass adds both through its hooks.

The profile comes from the command line, or from the environment (read when
the stand-in is created):

    STANDIN_FIRST_TOKEN_MS=400     wait before the first text delta (a non-streamed
                                   reply waits as long as its stream would have taken)
    STANDIN_TOKEN_INTERVAL_MS=15   wait between text deltas; [standin:delta_delay=...]
                                   still overrides it per request

Each record in `GET /_standin/requests` then carries its "timing" (time.time()
seconds): received, headers_sent, first_delta, last_delta, done, and
"deltas": [[sent_at, chars]...].

Run with `python -m tests.benchmarks.timed_standin --port 8787 --first-token-ms 400
--token-interval-ms 15` (tests/benchmarks/harness.py does), or in-process with
`start_in_thread(profile=...)`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local.messages_standin import server
from local.messages_standin.replies import Directives
from local.messages_standin.server import MessagesStandin, Reply, StandinServer


@dataclass(frozen=True)
class TimingProfile:
    """How long a reply takes to generate, in seconds: a realistic pace for benchmarks."""

    first_token: float = 0.0
    token_interval: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TimingProfile:
        """From STANDIN_FIRST_TOKEN_MS and STANDIN_TOKEN_INTERVAL_MS (milliseconds; unset means 0)."""
        env = os.environ if environ is None else environ
        first = float(env.get("STANDIN_FIRST_TOKEN_MS") or 0) / 1000
        interval = float(env.get("STANDIN_TOKEN_INTERVAL_MS") or 0) / 1000
        if first < 0 or interval < 0:
            raise ValueError("STANDIN_FIRST_TOKEN_MS and STANDIN_TOKEN_INTERVAL_MS must not be negative")
        return cls(first, interval)

    def interval(self, directive: float | None) -> float:
        """The pause between deltas: a [standin:delta_delay=...] directive wins over the profile."""
        return self.token_interval if directive is None else directive

    def generation_time(self, deltas: int, interval: float) -> float:
        """What a non-streamed reply of that many deltas waits: its whole stream's duration."""
        return self.first_token + interval * max(0, deltas - 1) if deltas else 0.0


class _Timed:
    """ASGI middleware stamping when a Messages request arrived, got its headers, and ended.

    The stamps go into the dict the route records (scope["standin.timing"]), so a
    benchmark can tell the stand-in's own time from the time of the code calling it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_turn = scope["path"] == "/v1/messages" or scope["path"].startswith("/model/")  # Bedrock's
        if scope["type"] != "http" or not is_turn:
            await self._app(scope, receive, send)
            return
        timing: dict[str, Any] = {
            "received": time.time(),
            "headers_sent": None,
            "first_delta": None,
            "last_delta": None,
            "done": None,
            "deltas": [],
        }
        scope["standin.timing"] = timing

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.start":
                timing["headers_sent"] = time.time()
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                timing["done"] = time.time()

        await self._app(scope, receive, timed_send)


class TimedStandin(MessagesStandin):
    """The stand-in, paced by a timing profile, with a "timing" in every request's record."""

    def __init__(self, profile: TimingProfile | None = None) -> None:
        super().__init__()
        self.profile = TimingProfile.from_env() if profile is None else profile

    def app(self, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
        app = super().app(extra_routes)
        app.add_middleware(_Timed)
        return app

    def record(self, request: Request, request_id: str, body: Any, **fields: Any) -> dict[str, Any]:
        record = super().record(request, request_id, body, **fields)
        timing: dict[str, Any] = request.scope.get("standin.timing") or {"received": time.time()}
        timing.setdefault("deltas", [])
        record["timing"] = timing
        return record

    def pause_before(self, delta: int, directives: Directives) -> float:
        return self.profile.first_token if delta == 0 else self.profile.interval(directives.delta_delay)

    async def pace_buffered(self, deltas: int, directives: Directives) -> None:
        if self.profile != TimingProfile():
            interval = self.profile.interval(directives.delta_delay)
            await asyncio.sleep(self.profile.generation_time(deltas, interval))

    def delta_sent(self, reply: Reply, text: str) -> None:
        sent_at = time.time()
        timing = reply.record["timing"]
        timing["deltas"].append([sent_at, len(text)])
        timing["first_delta"] = timing.get("first_delta") or sent_at
        timing["last_delta"] = sent_at


def start_in_thread(
    host: str = "127.0.0.1", port: int = 0, profile: TimingProfile | None = None
) -> StandinServer:
    """A TimedStandin served in-process (the profile defaults to the environment's)."""
    return server.start_in_thread(host, port, standin=TimedStandin(profile))


def main() -> None:
    parser = server.arguments("The Messages-API stand-in, paced like a model and timing what it sends.")
    env = TimingProfile.from_env()
    parser.add_argument(
        "--first-token-ms", type=float, default=env.first_token * 1000, help="STANDIN_FIRST_TOKEN_MS"
    )
    parser.add_argument(
        "--token-interval-ms", type=float, default=env.token_interval * 1000, help="STANDIN_TOKEN_INTERVAL_MS"
    )
    parsed = parser.parse_args()
    profile = TimingProfile(parsed.first_token_ms / 1000, parsed.token_interval_ms / 1000)
    server.serve(TimedStandin(profile), parsed)


if __name__ == "__main__":
    main()
