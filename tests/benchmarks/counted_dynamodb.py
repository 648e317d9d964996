"""`make dev` with a DynamoDB that records every call: how the benchmarks count round trips.

Why here and not in local/: only the benchmarks read it. The harness starts
`python -m tests.benchmarks.counted_dynamodb` instead of `python -m local.server`
(the same server, settings and workers), and this puts a recorder in front of the
embedded DynamoDB. It records each call (operation from X-Amz-Target, start and
end in time.time() seconds, request and response sizes; the JSON bodies too, for
working out capacity units, since moto reports constant ones):

    GET    /_calls              {"counts": {"GetItem": 3, ...}, "calls": [...]}, the last 5000 calls
    GET    /_calls?bodies=1     the same, each call with its "request" and "response" JSON
    DELETE /_calls              the same snapshot, then forgets it (read and reset in one step)

The server's worker processes import this module too (a process multiprocessing's
fork server starts re-imports the main module), so it imports nothing that
local.server does not.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

from local import server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_RECORDED_CALLS = 5000


class CallRecorder:
    """Counts and records each DynamoDB call it passes on; answers /_calls itself."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._calls: deque[dict[str, Any]] = deque(maxlen=_RECORDED_CALLS)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") == "/_calls":
            return self._report(environ, start_response)
        started = time.time()
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(request)
        operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2] or "unknown"
        response = list(self._app(environ, start_response))
        call = {"operation": operation, "start": started, "end": time.time(), "request_bytes": len(request)}
        with self._lock:
            self._counts[operation] += 1
            self._calls.append({**call, "_request": request, "_response": b"".join(response)})
        return response

    def _report(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            counts, calls = dict(self._counts), list(self._calls)
            if environ.get("REQUEST_METHOD") == "DELETE":
                self._counts.clear()
                self._calls.clear()
        bodies = "bodies=1" in environ.get("QUERY_STRING", "")
        listed = []
        for call in calls:
            entry = {key: value for key, value in call.items() if not key.startswith("_")}
            entry["response_bytes"] = len(call["_response"])
            if bodies:
                entry["request"] = _json_or_none(call["_request"])
                entry["response"] = _json_or_none(call["_response"])
            listed.append(entry)
        body = json.dumps({"counts": counts, "calls": listed}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


if __name__ == "__main__":
    server.main(wrap_dynamodb=CallRecorder)
