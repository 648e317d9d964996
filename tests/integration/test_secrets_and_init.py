"""Secrets come from Secrets Manager once per execution environment; importing a handler reads none.

The secrets path runs against moto's Secrets Manager. The import checks run each
handler module in a fresh interpreter, as a Lambda init phase would, with every
AWS call recorded: nothing may reach AWS before the first request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def secrets_manager(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's Secrets Manager, the layer configured by ARN (as in AWS), and fresh caches."""
    import boto3
    from aws_lambda_powertools.utilities import parameters

    from claude_chat.settings import get_settings

    client = boto3.client("secretsmanager")
    api_key = client.create_secret(Name="claude-chat/anthropic-api-key", SecretString="sk-ant-test-123")
    signing = client.create_secret(Name="claude-chat/signing", SecretString="s" * 64)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("SESSION_SECRET", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY_SECRET_ARN", api_key["ARN"])
    monkeypatch.setenv("SESSION_SECRET_ARN", signing["ARN"])
    get_settings.cache_clear()
    parameters.clear_caches()
    yield client
    get_settings.cache_clear()
    parameters.clear_caches()


class AwsCalls:
    """Every AWS API call made through botocore while active: (service, operation, SecretId if any)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    def count(self, operation: str) -> int:
        return sum(1 for _, name, _ in self.calls if name == operation)

    def secret_reads(self, secret_id: str) -> int:
        return sum(1 for _, name, read in self.calls if name == "GetSecretValue" and read == secret_id)


@pytest.fixture
def aws_calls() -> Iterator[AwsCalls]:
    from botocore.client import BaseClient

    recorded = AwsCalls()
    original = BaseClient._make_api_call

    def record(self: Any, operation_name: str, api_params: Any) -> Any:
        recorded.calls.append(
            (self.meta.service_model.service_name, operation_name, api_params.get("SecretId"))
        )
        return original(self, operation_name, api_params)

    with mock.patch.object(BaseClient, "_make_api_call", record):
        yield recorded


def test_both_secrets_are_read_once_and_then_served_from_the_cache(secrets_manager, aws_calls) -> None:
    from claude_chat.settings import anthropic_api_key, get_settings, session_signing_key

    settings = get_settings()
    for _ in range(3):
        assert anthropic_api_key(settings) == "sk-ant-test-123"
        assert session_signing_key(settings) == "s" * 64
    assert aws_calls.count("GetSecretValue") == 2


def test_a_turn_reads_each_secret_once_per_environment(
    secrets_manager, aws_calls, standin, lambda_handler, lambda_context, events
) -> None:
    handler = lambda_handler("ChatFunction")
    for _ in range(3):
        result = handler(events["chat-history"], lambda_context)
        assert result["statusCode"] == 200, result
    assert aws_calls.count("GetSecretValue") == 2
    # The key reached Claude (the stand-in records whether one was sent, never the key itself).
    assert standin.standin.requests[-1]["has_api_key"] is True


@pytest.mark.parametrize("stored", [None, "   \n"])
def test_until_the_key_is_stored_chat_answers_503_not_configured(
    secrets_manager, stored, standin, lambda_handler, lambda_context, events, capsys
) -> None:
    secret = secrets_manager.create_secret(
        Name="claude-chat/empty", **({"SecretString": stored} if stored else {})
    )
    os.environ["ANTHROPIC_API_KEY_SECRET_ARN"] = secret["ARN"]
    from claude_chat import services
    from claude_chat.settings import get_settings

    get_settings.cache_clear()
    services.reset()
    result = lambda_handler("ChatFunction")(events["chat"], lambda_context)
    assert result["statusCode"] == 503
    assert json.loads(result["body"]) == {
        "error": "The chat service is not set up yet. Please try again later.",
        "code": "not_configured",
    }
    # Storing the key later needs no redeploy: the next turn after the cache expires works.
    secrets_manager.put_secret_value(SecretId=secret["ARN"], SecretString="sk-ant-now-set")
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # stands in for the 5-minute cache expiring
    assert lambda_handler("ChatFunction")(events["chat"], lambda_context)["statusCode"] == 200
    assert "sk-ant-now-set" not in capsys.readouterr().out


# A Lambda init phase: the handler module imported in a fresh interpreter, configured as in AWS
# (secrets by ARN only), with every AWS call recorded and none able to reach a network.
_IMPORT_PROBE = """
import importlib.util, json, sys
from unittest import mock
from botocore.client import BaseClient

calls = []
def record(self, operation_name, api_params):
    calls.append(operation_name)
    raise RuntimeError("no AWS call may happen at import time")

with mock.patch.object(BaseClient, "_make_api_call", record):
    spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
print(json.dumps({
    "calls": calls,
    "modules": sorted(name for name in ("anthropic", "aws_xray_sdk", "uvicorn") if name in sys.modules),
}))
"""


@pytest.mark.parametrize(
    ("handler", "imports", "never_imports"),
    [
        # The chat function imports the SDK at init on purpose: SnapStart snapshots it.
        ("functions/chat/app.py", {"anthropic", "aws_xray_sdk"}, {"uvicorn"}),
        ("functions/history/app.py", {"aws_xray_sdk"}, {"anthropic", "uvicorn"}),
        # The stream function: no X-Ray SDK on its cold start.
        ("functions/stream/app.py", {"anthropic"}, {"aws_xray_sdk"}),
    ],
)
def test_importing_a_handler_reads_no_secret_and_only_what_it_uses(
    handler: str, imports: set[str], never_imports: set[str]
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC_", "SESSION_SECRET", "AWS_", "POWERTOOLS_TRACE"))
    }
    env.update(
        PYTHONPATH=f"{ROOT / 'layers' / 'shared'}{os.pathsep}{ROOT}",
        # As in Lambda, where template.yaml turns tracing on: the Tracer (and the X-Ray SDK) loads at init.
        LAMBDA_TASK_ROOT=str(ROOT / Path(handler).parent),
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="init",
        AWS_SECRET_ACCESS_KEY="init",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
        ANTHROPIC_API_KEY_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf",
        SESSION_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf",
        TABLE_NAME="claude-chat",
    )
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, str(ROOT / handler)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["calls"] == []
    assert imports <= set(probe["modules"]), probe
    assert not never_imports & set(probe["modules"]), probe


def test_snapstart_registers_a_restore_hook_that_reseeds_random(aws, monkeypatch) -> None:
    import random
    import types

    from claude_chat import snapstart

    registered: list[Any] = []
    before: list[Any] = []
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_after_restore = registered.append  # type: ignore[attr-defined]
    runtime.register_before_snapshot = before.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)
    monkeypatch.setattr(snapstart, "RESTORE_HOOKS", [])
    monkeypatch.setattr(snapstart, "BEFORE_CHECKPOINT_HOOKS", [])
    snapstart.prepare()
    snapstart.prepare()  # once per hook, however often init code runs
    assert registered == [snapstart.after_restore]  # the stream app's after-restore route runs it too
    assert before == [snapstart.before_checkpoint]

    # Two restored copies of one snapshot start with the same random state; the hook makes them differ.
    random.seed(1234)
    snapshot = random.getstate()
    draws = []
    for _ in range(2):
        random.setstate(snapshot)
        for hook in registered:
            hook()
        draws.append([random.random() for _ in range(3)])
    assert draws[0] != draws[1]


def test_a_key_claude_rejects_is_the_operators_problem_and_is_read_again_before_the_next_call(
    secrets_manager, aws_calls, standin, lambda_handler, lambda_context, events
) -> None:
    """A revoked key: 503 not_configured (not a 502 for the user), and the rotated key is used at once."""
    secret = secrets_manager.create_secret(Name="claude-chat/rotating", SecretString="sk-ant-revoked")
    os.environ["ANTHROPIC_API_KEY_SECRET_ARN"] = secret["ARN"]
    from claude_chat import services
    from claude_chat.settings import get_settings

    get_settings.cache_clear()
    services.reset()
    handler = lambda_handler("ChatFunction")
    rejected = dict(events["chat"], body=json.dumps({"message": "hi [standin:status=401]"}))
    result = handler(rejected, lambda_context)
    assert (result["statusCode"], json.loads(result["body"])["code"]) == (503, "not_configured")
    reads = aws_calls.secret_reads(secret["ARN"])
    secrets_manager.put_secret_value(SecretId=secret["ARN"], SecretString="sk-ant-rotated")
    # No cache expiry here: the rejection alone makes the next turn read the secret again.
    assert handler(events["chat"], lambda_context)["statusCode"] == 200
    assert aws_calls.secret_reads(secret["ARN"]) == reads + 1
    assert services.claude().api_key == "sk-ant-rotated"
