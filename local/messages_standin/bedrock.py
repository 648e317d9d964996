"""Amazon Bedrock's runtime API for Claude, played locally by the Messages-API stand-in.

Why: with CLAUDE_PROVIDER=bedrock the code under test runs `anthropic.AnthropicBedrock`, and
that real code path (SigV4 signing, Bedrock's invoke paths, its binary event stream, its error
shapes) should run locally and in the tests with no AWS account. So this speaks Bedrock's wire
protocol around the stand-in's replies (same directives, prompt cache, recorded requests and
disconnects: it answers through `MessagesStandin.reply`):

    POST /model/{modelId}/invoke                        the Messages API's JSON reply
    POST /model/{modelId}/invoke-with-response-stream   `application/vnd.amazon.eventstream`: one
                                                        `chunk` event per Messages API event, its
                                                        payload {"bytes": base64(event JSON)}

The body is the Messages API's without `model` and `stream` (the path says those) and with
`anthropic_version`; thinking streams as on the Messages API, and a web search tool is refused
(ValidationException: InvokeModel has no server tools). Errors are Bedrock's:
`{"message": ...}` with the exception's name in the
`x-amzn-errortype` header (a `[standin:status=429]` directive answers ThrottlingException, 403
AccessDeniedException, 400 ValidationException...), and mid-stream an exception frame
(`[standin:fail_after=N]`: modelStreamErrorException, as Bedrock reports Claude's overload).

Every request must be signed with AWS Signature Version 4 for the service `bedrock` in the
expected region, with the known local credentials; the signature itself is recomputed with
botocore's signer. Anything else is refused with 403, as Bedrock refuses it.

The event-stream encoder is here, a few lines (prelude, string headers, payload, CRC32s):
botocore has only a decoder, and the tests check this encoder against it.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hmac
import json
import re
import struct
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from local.messages_standin.server import MessagesStandin
from local.messages_standin.wire import new_id

SERVICE = "bedrock"
EVENT_STREAM = "application/vnd.amazon.eventstream"
_ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
_HEADER_STRING = 7  # the event-stream header value type of a UTF-8 string
_MAX_CLOCK_SKEW = datetime.timedelta(minutes=5)
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s]+)/(?P<date>\d{8})/(?P<region>[^/\s]+)/(?P<service>[^/\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<headers>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
# A Bedrock model id or cross-Region inference profile id for Claude, or an ARN of either.
_MODEL_ID = re.compile(r"(?:[a-z-]+\.)?anthropic\.claude-[a-z0-9-]+(?::\d+)?|arn:aws[a-z-]*:bedrock:[^\s]+")
# The Messages API's refusals (the stand-in's statuses) as Bedrock answers them: status, exception.
_EXCEPTIONS: dict[int, tuple[int, str, str]] = {
    400: (400, "ValidationException", "Malformed input request, please reformat your input and try again."),
    401: (403, "AccessDeniedException", "You don't have access to the model with the specified model ID."),
    403: (403, "AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: (404, "ResourceNotFoundException", "The requested resource could not be found."),
    408: (408, "ModelTimeoutException", "Model has timed out in processing the request."),
    424: (424, "ModelErrorException", "The model returned an error."),
    429: (429, "ThrottlingException", "Too many requests, please wait before trying again."),
    500: (500, "InternalServerException", "The server encountered an internal error."),
    503: (503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
    504: (408, "ModelTimeoutException", "Model has timed out in processing the request."),
    529: (503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
}
# A Messages API `error` event mid-stream, as the exception frame Bedrock sends instead.
_STREAM_EXCEPTIONS = {
    "overloaded_error": "modelStreamErrorException",
    "rate_limit_error": "throttlingException",
    "api_error": "internalServerException",
    "invalid_request_error": "validationException",
}


# --------------------------------------------------------------------------- event stream


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total and headers length, CRC32), headers, payload, CRC32."""
    encoded = b"".join(
        struct.pack(">B", len(name.encode())) + name.encode()
        + struct.pack(">BH", _HEADER_STRING, len(value.encode())) + value.encode()
        for name, value in headers.items()
    )  # fmt: skip
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


def chunk_event(event: Mapping[str, Any]) -> bytes:
    """A `chunk` event carrying one Messages API stream event, as InvokeModelWithResponseStream sends it."""
    data = json.dumps(event, separators=(",", ":")).encode()
    payload = json.dumps({"bytes": base64.b64encode(data).decode()}).encode()
    headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, payload)


def exception_event(exception_type: str, message: str, **fields: Any) -> bytes:
    """An exception frame (`:message-type: exception`), Bedrock's way of failing a stream mid-way."""
    payload = json.dumps({"message": message, **fields}).encode()
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, payload)


# --------------------------------------------------------------------------- SigV4


@dataclass(frozen=True)
class Credentials:
    """The credentials and region every request must be signed with (the local server's fake ones)."""

    region: str
    access_key: str
    secret_key: str


def signature_refusal(
    method: str, url: str, headers: Mapping[str, str], body: bytes, expected: Credentials
) -> tuple[str, str] | None:
    """Why Bedrock would refuse this request's signature (exception, message), or None if it is valid."""
    authorization = headers.get("authorization")
    if not authorization:
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    found = _AUTHORIZATION.fullmatch(authorization.strip())
    if found is None:
        return "IncompleteSignatureException", "Authorization header requires a SigV4 signature."
    scope = _scope_refusal(found, expected)
    if scope is not None:
        return scope
    stale = _date_refusal(headers.get("x-amz-date", ""), found["date"])
    if stale is not None:
        return stale
    if not hmac.compare_digest(
        _signature(method, url, headers, body, found=found, expected=expected), found["signature"]
    ):
        return "InvalidSignatureException", (
            "The request signature we calculated does not match the signature you provided."
        )
    return None


def _scope_refusal(found: re.Match[str], expected: Credentials) -> tuple[str, str] | None:
    """The credential scope: Bedrock's service, the expected region, a known access key."""
    if found["service"] != SERVICE:
        return "InvalidSignatureException", f"Credential should be scoped to correct service: '{SERVICE}'."
    if found["region"] != expected.region:
        return (
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{found['region']}'.",
        )
    if found["key"] != expected.access_key:
        return "UnrecognizedClientException", "The security token included in the request is invalid."
    return None


def _date_refusal(amz_date: str, scope_date: str) -> tuple[str, str] | None:
    """X-Amz-Date: present, the scope's day, and within Bedrock's allowed clock skew of now."""
    try:
        signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return (
            "IncompleteSignatureException",
            "Authorization header requires existence of a valid X-Amz-Date.",
        )
    if abs(datetime.datetime.now(datetime.UTC) - signed_at) > _MAX_CLOCK_SKEW or scope_date != amz_date[:8]:
        return "InvalidSignatureException", "Signature expired or not yet valid."
    return None


def _signature(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    found: re.Match[str],
    expected: Credentials,
) -> str:
    """The signature botocore computes for the same request, headers and time with the known secret."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as AwsCredentials

    signed = {name: headers.get(name, "") for name in found["headers"].split(";")}
    request = AWSRequest(method=method, url=url, headers=signed, data=body)
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(AwsCredentials(expected.access_key, expected.secret_key), SERVICE, expected.region)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


# --------------------------------------------------------------------------- routes


def _bedrock_error(status: int, exception: str, message: str, request_id: str) -> JSONResponse:
    return JSONResponse(
        {"message": message},
        status_code=status,
        headers={"x-amzn-errortype": f"{exception}:{_ERROR_NAMESPACE}", "x-amzn-requestid": request_id},
    )


def _body_refusal(body: dict[str, Any]) -> str | None:
    """Why InvokeModel refuses a JSON body (a ValidationException's message), or None."""
    if not isinstance(body.get("anthropic_version"), str):
        return "Malformed input request: #: required key [anthropic_version] not found"
    extraneous = sorted({"model", "stream"} & body.keys())
    if extraneous:
        return f"Malformed input request: #: extraneous key [{extraneous[0]}] is not permitted"
    tools = body.get("tools")
    if isinstance(tools, list) and any(
        isinstance(tool, dict) and str(tool.get("type", "")).startswith("web_search") for tool in tools
    ):  # InvokeModel has no server tools (the web search tool is the Messages API's)
        return "The model returned the following errors: tools.0: web_search is not supported on this API"
    return None


class BedrockRuntime:
    """Bedrock's invoke routes, answered by a MessagesStandin behind SigV4 and Bedrock's framing."""

    def __init__(self, standin: MessagesStandin, credentials: Credentials) -> None:
        self._standin = standin
        self._credentials = credentials

    def routes(self) -> list[Route]:
        return [
            Route("/model/{model_id:path}/invoke", self._invoke, methods=["POST"]),
            Route(
                "/model/{model_id:path}/invoke-with-response-stream", self._invoke_streaming, methods=["POST"]
            ),
        ]

    async def _invoke(self, request: Request) -> Response:
        return await self._answer(request, streaming=False)

    async def _invoke_streaming(self, request: Request) -> Response:
        return await self._answer(request, streaming=True)

    async def _answer(self, request: Request, *, streaming: bool) -> Response:
        request_id = new_id("")
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        model_id = request.path_params["model_id"]
        url = f"{request.url.scheme}://{request.headers.get('host', '')}{request.scope['raw_path'].decode()}"
        if request.url.query:
            url += f"?{request.url.query}"
        refusal = signature_refusal(request.method, url, request.headers, raw, self._credentials)
        record = self._standin.record(
            request,
            request_id,
            body,
            has_api_key=False,
            provider="bedrock",
            model=model_id,
            streaming=streaming,
            signature=refusal[0] if refusal else "valid",
        )
        if refusal is not None:
            return _bedrock_error(403, *refusal, request_id)
        if not _MODEL_ID.fullmatch(model_id):
            return _bedrock_error(
                400, "ValidationException", "The provided model identifier is invalid.", request_id
            )
        if not isinstance(body, dict):
            return _bedrock_error(
                400, "ValidationException", "Malformed input request: not a JSON object.", request_id
            )
        refusal_message = _body_refusal(body)
        if refusal_message is not None:
            return _bedrock_error(400, "ValidationException", refusal_message, request_id)
        response = await self._standin.reply(
            request, record, {**body, "model": model_id, "stream": streaming}
        )
        return self._as_bedrock(response, record)

    def _as_bedrock(self, response: Response, record: dict[str, Any]) -> Response:
        request_id: str = record["request_id"]
        if response.status_code >= 400:
            error = json.loads(bytes(response.body)).get("error", {})
            status, exception, default = _EXCEPTIONS.get(
                response.status_code, (response.status_code, "InternalServerException", "")
            )
            return _bedrock_error(status, exception, str(error.get("message") or default), request_id)
        del response.headers["request-id"]
        response.headers["x-amzn-requestid"] = request_id
        if isinstance(response, StreamingResponse) and response.media_type == "text/event-stream":
            response.body_iterator = _frames(response.body_iterator, record)
            response.headers["content-type"] = EVENT_STREAM
            response.headers["x-amzn-bedrock-content-type"] = "application/json"
            return response
        usage = record.get("usage") or {}
        response.headers["x-amzn-bedrock-input-token-count"] = str(usage.get("input_tokens", 0))
        response.headers["x-amzn-bedrock-output-token-count"] = str(usage.get("output_tokens", 0))
        return response


async def _frames(events: AsyncIterable[Any], record: dict[str, Any]) -> AsyncIterator[bytes]:
    """The stand-in's SSE events, each as the event-stream message Bedrock sends for it."""
    async for chunk in events:
        text = chunk if isinstance(chunk, str) else bytes(chunk).decode()
        name = re.search(r"^event: (.+)$", text, re.M)
        data = re.search(r"^data: (.+)$", text, re.M)
        if name is None or data is None or name[1] == "ping":
            continue  # Bedrock forwards no pings
        event = json.loads(data[1])
        if name[1] == "error":
            error = event.get("error", {})
            exception = _STREAM_EXCEPTIONS.get(error.get("type"), "internalServerException")
            # Claude's own failure mid-stream: Bedrock names the status Claude answered with.
            extra = {"originalStatusCode": 529} if exception == "modelStreamErrorException" else {}
            yield exception_event(exception, str(error.get("message", "")), **extra)
            return
        if name[1] == "message_stop":
            usage = record.get("usage") or {}
            event["amazon-bedrock-invocationMetrics"] = {
                "inputTokenCount": usage.get("input_tokens", 0),
                "outputTokenCount": usage.get("output_tokens", 0),
            }
        yield chunk_event(event)
