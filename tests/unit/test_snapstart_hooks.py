"""SnapStart of the stream function: the Web Adapter's two hooks, what they renew, and who may call them.

The adapter (1.1.0+) POSTs, empty and with no request or Lambda context, to the app's
before-checkpoint path just before the snapshot and to its after-restore path in each
restored copy. Client requests reach the app through the same adapter, always with those
contexts; local/web_adapter.py emulates both kinds of request.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local.lambda_runtime import load_handler_module
from local.template import url_functions
from local.web_adapter import call_app, call_snapstart_hooks, snapstart_hook_paths

BEFORE, AFTER = "/snapstart/before-checkpoint", "/snapstart/after-restore"


def _run(coroutine: Callable[[], Coroutine[Any, Any, None]]) -> None:
    # On a thread of its own: Playwright's sync API can leave an event loop running on this one.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, coroutine()).result()


@pytest.fixture
def stream_app(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The stream function's app, with the hook paths template.yaml gives its adapter."""
    spec = next(spec for spec in url_functions() if spec.logical_id == "StreamFunction")
    for name in ("AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH", "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH"):
        monkeypatch.setenv(name, spec.environment[name])
    assert snapstart_hook_paths() == [BEFORE, AFTER]
    return load_handler_module(spec).app


@pytest.fixture
def hook_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which of the layer's two hook functions ran."""
    from claude_chat import snapstart

    calls: list[str] = []
    monkeypatch.setattr(snapstart, "before_checkpoint", lambda: calls.append("before"))
    monkeypatch.setattr(snapstart, "after_restore", lambda: calls.append("after"))
    return calls


def _asgi(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 8000),
    }
    _run(lambda: app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


def test_the_adapters_own_calls_run_the_layers_hooks(stream_app: Any, hook_calls: list[str]) -> None:
    _run(lambda: call_snapstart_hooks(stream_app))
    assert hook_calls == ["before", "after"]


@pytest.mark.parametrize("path", [BEFORE, AFTER, "/snapstart/After-Restore", "/snapstart//after%2Drestore"])
def test_a_client_request_for_a_hook_is_refused_by_the_adapter(
    stream_app: Any, hook_calls: list[str], events: dict[str, Any], path: str
) -> None:
    event = {**events["stream-chat"], "rawPath": path, "body": ""}
    event["requestContext"] = {**event["requestContext"], "http": {**event["requestContext"]["http"]}}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    _run(lambda: call_app(stream_app, event, "StreamFunction", receive, send, 10))
    assert sent[0]["status"] == 403
    assert hook_calls == []


@pytest.mark.parametrize("method", ["POST", "GET", "PUT"])
@pytest.mark.parametrize("path", [BEFORE, AFTER])
def test_a_forwarded_request_for_a_hook_is_refused_by_the_app_itself(
    stream_app: Any, hook_calls: list[str], method: str, path: str
) -> None:
    """Without the adapter's guard too: a request the adapter forwards carries its contexts (written
    over any a client sent), and the app answers it as it answers a path that does not exist."""
    forwarded = [
        (b"x-amzn-request-context", json.dumps({"http": {"sourceIp": "203.0.113.9"}}).encode()),
        (b"x-amzn-lambda-context", b'{"request_id": "r"}'),
    ]
    for headers in (forwarded, forwarded[:1], forwarded[1:]):
        status, body = _asgi(stream_app, method, path, headers)
        assert status == 404, (method, path, headers)
        assert json.loads(body)["code"] == "not_found"
    assert hook_calls == []


def test_only_an_empty_post_runs_a_hook(stream_app: Any, hook_calls: list[str]) -> None:
    assert _asgi(stream_app, "GET", AFTER, [])[0] == 404
    assert _asgi(stream_app, "POST", AFTER, [])[0] == 204
    assert hook_calls == ["after"]


def test_a_failing_hook_fails_make_dev_as_it_would_fail_a_restore(
    stream_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claude_chat import snapstart

    def broken() -> None:
        raise RuntimeError("cannot renew")

    monkeypatch.setattr(snapstart, "after_restore", broken)
    with pytest.raises(RuntimeError):
        _run(lambda: call_snapstart_hooks(stream_app))


def test_restore_renews_randomness_connections_and_secrets_and_init_reads_no_secret(
    stream_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the adapter's calls: nothing secret before the restore, fresh state after it."""
    import aws_lambda_powertools.utilities.parameters as parameters

    from claude_chat import services, settings, snapstart

    secret_reads: list[str] = []
    monkeypatch.setattr(settings, "_secret_from_arn", lambda arn: secret_reads.append(arn) or "k" * 64)
    cleared: list[bool] = []
    monkeypatch.setattr(parameters, "clear_caches", lambda: cleared.append(True))
    monkeypatch.setenv("SESSION_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf")
    monkeypatch.delenv("SESSION_SECRET", raising=False)
    settings.get_settings.cache_clear()
    services.reset()

    snapstart.warm()  # the stream app's init (as at import), then the adapter's two calls
    client = services.dynamodb()
    closed: list[bool] = []
    monkeypatch.setattr(client, "close", lambda: closed.append(True))
    monkeypatch.setattr(services, "_claude", object())  # as if a Claude client had been built
    random.seed(1234)  # every restored copy of one snapshot starts from the same random state
    snapshot = random.getstate()

    _asgi(stream_app, "POST", BEFORE, [])
    assert closed == [True] and services._claude is None
    assert secret_reads == [], "no secret may be read before the snapshot"

    draws = []
    for _ in range(2):  # two copies restored from the snapshot
        random.setstate(snapshot)
        assert _asgi(stream_app, "POST", AFTER, [])[0] == 204
        draws.append([random.random() for _ in range(3)])
    assert draws[0] != draws[1], "restored copies must not share a random sequence"
    assert closed == [True, True, True]
    assert cleared == [True, True]
    assert services.dynamodb() is client, "the client stays (its model loaded), only its sockets go"
    assert secret_reads == []

    services.turn_ids()  # the first use after the restore reads the signing key
    assert secret_reads == ["arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf"]
    settings.get_settings.cache_clear()
