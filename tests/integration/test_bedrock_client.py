"""Claude on Amazon Bedrock: the stand-in's wire protocol and the client's error mapping.

The event-stream encoder is checked against botocore's decoder (the one AnthropicBedrock
uses), the stand-in's SigV4 check against requests signed by botocore for the wrong service,
region or secret, and the mapping against the real AnthropicBedrock client talking to the
stand-in in-process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as AwsCredentials
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from claude_chat.claude_client import ClaudeClient
from claude_chat.deadline import Deadline
from claude_chat.errors import (
    ApiError,
    NotConfigured,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from claude_chat.settings import DEFAULT_MODELS, Settings
from local.messages_standin import StandinServer, start_in_thread
from local.messages_standin.bedrock import (
    BedrockRuntime,
    Credentials,
    chunk_event,
    encode_message,
    exception_event,
)

REGION = "eu-west-3"
KEY, SECRET = "AKIDLOCALTEST", "local-test-secret"
PROFILE = DEFAULT_MODELS["bedrock"]


def _decoded(data: bytes) -> list[dict[str, object]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [message.to_response_dict() for message in buffer]


def test_encoded_events_decode_with_botocore_and_their_crcs_are_checked() -> None:
    event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "héllo"}}
    frames = chunk_event(event) + exception_event("throttlingException", "slow down")
    chunk, exception = _decoded(frames)
    assert chunk["status_code"] == 200
    assert chunk["headers"] == {
        ":event-type": "chunk",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    import base64

    assert json.loads(base64.b64decode(json.loads(chunk["body"])["bytes"])) == event
    assert exception["status_code"] == 400
    assert exception["headers"][":exception-type"] == "throttlingException"
    assert json.loads(exception["body"]) == {"message": "slow down"}
    # One flipped payload bit: botocore's message CRC refuses it.
    corrupt = bytearray(encode_message({":message-type": "event"}, b'{"a":1}'))
    corrupt[-6] ^= 1
    with pytest.raises(ChecksumMismatch):
        _decoded(bytes(corrupt))


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinServer]:
    server = start_in_thread(
        extra_routes=lambda messages: BedrockRuntime(messages, Credentials(REGION, KEY, SECRET)).routes()
    )
    yield server
    server.stop()


def _signed(
    url: str, body: bytes, *, service: str = "bedrock", region: str = REGION, secret: str = SECRET
) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    SigV4Auth(AwsCredentials(KEY, secret), service, region).add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize(
    ("signing", "exception"),
    [
        ({}, None),
        ({"service": "bedrock-runtime"}, "InvalidSignatureException"),
        ({"region": "us-east-1"}, "InvalidSignatureException"),
        ({"secret": "not-the-secret"}, "InvalidSignatureException"),
        (None, "MissingAuthenticationTokenException"),
    ],
    ids=["signed", "wrong-service", "wrong-region", "wrong-secret", "unsigned"],
)
def test_standin_refuses_requests_not_signed_for_bedrock_in_its_region(
    standin: StandinServer, signing: dict[str, str] | None, exception: str | None
) -> None:
    url = f"{standin.url}/model/{PROFILE}/invoke"
    body = json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}],
        }
    ).encode()
    headers = {"content-type": "application/json"} if signing is None else _signed(url, body, **signing)
    response = httpx.post(url, content=body, headers=headers)
    if exception is None:
        assert response.status_code == 200, response.text
        assert response.json()["content"][0]["text"] == "Stand-in reply to: hi"
        return
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"].split(":")[0] == exception
    assert set(response.json()) == {"message"}


@pytest.fixture(scope="module")
def client(standin: StandinServer) -> ClaudeClient:
    settings = Settings(
        claude_provider="bedrock", anthropic_bedrock_base_url=standin.url, claude_max_retries=0
    )
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_REGION": REGION,
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_SESSION_TOKEN", raising=False)
        patch.delenv("AWS_PROFILE", raising=False)
        built = ClaudeClient(settings, None)
        # The SDK resolves credentials when it signs: sign one request while they are set.
        built.complete(built.build_request([], "warm up", conversation=False), Deadline.after(10))
        return built


def test_bedrock_client_streams_through_the_real_sdk_path_with_prompt_caching(
    standin: StandinServer, client: ClaudeClient
) -> None:
    # Long enough for Claude Haiku 4.5 to cache (4,096 tokens at least).
    request = client.build_request([], "cache this please " * 1000, conversation=True)
    first = client.complete(request, Deadline.after(10))
    second = client.complete(request, Deadline.after(10))
    assert first.text.startswith("Stand-in reply to: cache this please")
    assert first.usage.cache_creation_input_tokens > 0 and second.usage.cache_read_input_tokens > 0
    (recorded,) = [r for r in standin.standin.requests if r.get("provider") == "bedrock"][-1:]
    assert recorded["signature"] == "valid" and recorded["model"] == PROFILE and recorded["streaming"]
    assert "model" not in recorded["body"] and "stream" not in recorded["body"]
    assert recorded["body"]["messages"][-1]["content"][0]["cache_control"] == {"type": "ephemeral"}


@pytest.mark.parametrize(
    ("directive", "expected", "status"),
    [
        ("[standin:status=429]", UpstreamUnavailable, 503),  # ThrottlingException
        ("[standin:status=529]", UpstreamUnavailable, 503),  # ServiceUnavailableException
        ("[standin:status=403]", NotConfigured, 503),  # AccessDeniedException: no grant, model not enabled
        ("[standin:status=404]", NotConfigured, 503),  # ResourceNotFoundException: no such model here
        ("[standin:status=400]", UpstreamError, 502),  # ValidationException
        ("[standin:status=424]", UpstreamError, 502),  # ModelErrorException
        ("[standin:status=504]", UpstreamTimeout, 504),  # ModelTimeoutException
        ("[standin:fail_after=2]", UpstreamError, 502),  # modelStreamErrorException, mid-stream
    ],
)
def test_bedrock_errors_map_onto_the_contract(
    client: ClaudeClient, directive: str, expected: type[ApiError], status: int
) -> None:
    with pytest.raises(ApiError) as raised:
        client.complete(client.build_request([], f"hi {directive}", conversation=False), Deadline.after(10))
    assert type(raised.value) is expected and raised.value.status == status
    if expected is UpstreamUnavailable:
        assert int(raised.value.headers["Retry-After"]) >= 1
    if expected is NotConfigured:
        assert not raised.value.key_rejected  # no key to read again on Bedrock


def test_bedrock_mode_reads_no_api_key_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from claude_chat import settings as settings_module

    def no_secret(arn: str) -> str:
        raise AssertionError(f"read the secret {arn}")

    monkeypatch.setattr(settings_module, "_secret_from_arn", no_secret)
    on_bedrock = Settings(claude_provider="bedrock", anthropic_api_key_secret_arn="arn:aws:secretsmanager:x")
    assert settings_module.anthropic_api_key(on_bedrock) is None
    assert on_bedrock.claude_model == PROFILE
    assert Settings().claude_model == DEFAULT_MODELS["anthropic"] == "claude-haiku-4-5"


def test_bedrock_thinks_through_the_real_sdk_path_and_refuses_the_web_search_tool(
    standin: StandinServer, client: ClaudeClient
) -> None:
    # The same client, asked to think: AnthropicBedrock decodes thinking and signature deltas from
    # Bedrock's event stream.
    thinking = {"type": "enabled", "budget_tokens": 1024}
    request = {
        **client.build_request([], "ponder", conversation=False),
        "thinking": thinking,
        "max_tokens": 1100,
    }
    stream = client.open_stream(request, Deadline.after(10))
    events = list(stream.events())
    reply = stream.final()
    stream.close()
    assert [type(e).__name__ for e in events][:4] == ["Thinking", "Thinking", "Thinking", "Text"]
    assert (reply.thinking, reply.text) == ("Thinking about: ponder", "Stand-in reply to: ponder")
    # InvokeModel has no web search tool: Bedrock refuses it (settings refuse it before any call).
    tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}
    with pytest.raises(UpstreamError):
        client.complete({**request, "tools": [tool]}, Deadline.after(10))
