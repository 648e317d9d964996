"""Fixtures shared by unit and integration tests.

The environment is set before anything imports the layer, because settings are
read once per process, as in a Lambda cold start. AWS is moto, Claude is the
local Messages-API stand-in: nothing here reaches the network.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "TABLE_NAME": "claude-chat-test",
    "SESSION_SECRET": "unit-test-signing-key-not-a-secret",
    "ANTHROPIC_API_KEY": "test-key",
    "CLAUDE_MAX_RETRIES": "0",
    "CLAUDE_TIMEOUT_SECONDS": "3",
    "RATE_LIMIT_MAX": "5",
    # An hour-long window: a test's few requests never straddle a window boundary.
    "RATE_LIMIT_WINDOW_SECONDS": "3600",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
for _name, _value in TEST_ENV.items():
    os.environ[_name] = _value
for _name in (
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_PROFILE",
    "ANTHROPIC_API_KEY_SECRET_ARN",
    "SESSION_SECRET_ARN",
):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def events() -> dict[str, dict[str, Any]]:
    """events/*.json by file stem, as `sam local invoke -e` would read them."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(EVENTS.glob("*.json"))}


@pytest.fixture(scope="session")
def standin() -> Iterator[Any]:
    from local.messages_standin import start_in_thread

    server = start_in_thread()
    os.environ["ANTHROPIC_BASE_URL"] = server.url
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _dynamodb_client() -> Any:
    """One DynamoDB client for every moto test of the session: building a client takes tens of
    milliseconds, a test's fresh table a few (make mutation runs a module's tests once per mutant).

    moto is imported first: its hook joins every botocore session made after that (and answers only
    while a mock is on), so the client, from a session of its own, reaches each test's fresh mock even
    when boto3's default session was made before moto was imported (a Stubber test run first).
    """
    import boto3
    import moto  # noqa: F401 - see above

    return boto3.session.Session().client("dynamodb")


# The S3 client's own credentials: a presigned POST is signed with them (a policy check needs them).
S3_SECRET_ACCESS_KEY = "testing"


@pytest.fixture(scope="session")
def _s3_client() -> Any:
    """One S3 client for the session, as for DynamoDB above (under a mock, each new one took 0.1 to 0.5 s
    to build), signing with SigV4, as the functions' does (a presigned POST's x-amz-* fields)."""
    import boto3
    import moto  # noqa: F401 - see _dynamodb_client
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key=S3_SECRET_ACCESS_KEY)
    return session.client("s3", config=Config(signature_version="s3v4"))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, _dynamodb_client: Any) -> Iterator[Any]:
    """A fresh moto DynamoDB with the table from template.yaml, and fresh layer singletons.

    moto applies a request in several steps, so two threads' updates of one item could both
    read it before either writes. DynamoDB applies each request atomically; here, one at a time
    does the same (as `make dev`'s embedded DynamoDB does), so concurrency tests stay honest.
    """
    import threading

    from moto import mock_aws
    from moto.core.botocore_stubber import BotocoreStubber

    one_at_a_time = threading.Lock()
    answer = BotocoreStubber.__call__

    def atomic(self: Any, *args: Any, **kwargs: Any) -> Any:
        with one_at_a_time:
            return answer(self, *args, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", atomic)

    from claude_chat import services
    from local.dynamodb import create_table

    with mock_aws():  # a mock starts empty: this test's table is new
        create_table(_dynamodb_client, os.environ["TABLE_NAME"])
        services.reset()
        yield _dynamodb_client
        services.reset()


@pytest.fixture
def pool() -> Iterator[Any]:
    """Threads for a store's or an admission's side-by-side calls, a pool per test: a pool shared
    across tests keeps the threads of the process that started them, and a test run in a process
    forked after that (make mutation forks one per mutant) would wait on threads it does not have."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as threads:
        yield threads


@pytest.fixture(scope="session")
def lambda_handler() -> Callable[[str], Callable[[dict[str, Any], Any], Any]]:
    """The handler template.yaml names for a function, imported from its CodeUri."""
    from local.lambda_runtime import load_handler_module
    from local.template import url_functions

    specs = {spec.logical_id: spec for spec in url_functions()}

    def load(logical_id: str) -> Callable[[dict[str, Any], Any], Any]:
        spec = specs[logical_id]
        handler: Callable[[dict[str, Any], Any], Any] = getattr(
            load_handler_module(spec), spec.handler.rsplit(".", 1)[1]
        )
        return handler

    return load


@pytest.fixture
def lambda_context() -> Any:
    from local.lambda_runtime import LocalLambdaContext

    return LocalLambdaContext(function_name="test")
