"""What a Lambda function URL does around a function, emulated for `make dev`.

It turns an HTTP request into the payload-2.0 event a function URL sends
(sourceIp from the TCP peer, cookies split out, a body in base64 unless it is
UTF-8 text, X-Forwarded-For appended to as AWS's front end is seen to do,
though the code never reads it), turns the function's result back into an
HTTP response, refusing one over Lambda's 6 MB response payload limit as a
function URL does, and answers CORS from the template's function URL
settings, as AWS does, so the code never sets CORS itself.
"""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_TEXT_TYPES = ("text/", "application/json", "+json", "application/xml", "+xml", "javascript", "urlencoded")

# Lambda's limit on a buffered (RequestResponse) invocation's response payload: the handler's return
# value as the runtime serializes it, envelope and all. A function URL answers 502 when it is exceeded.
MAX_RESPONSE_PAYLOAD_BYTES = 6_291_556
# What a function URL answers then, as for a function error (reported by users; AWS does not
# document the exact body or headers).
PAYLOAD_TOO_LARGE_BODY = b"Internal Server Error"


def lambda_event(
    *,
    method: str,
    path: str,
    query_string: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    peer_ip: str,
    api_id: str = "localdev",
) -> dict[str, Any]:
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, value in headers:
        name = raw_name.lower()
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        merged[name] = f"{merged[name]},{value}" if name in merged else value
    # AWS's front end appends the address it saw; whatever the client sent stays in front of it.
    forwarded = merged.get("x-forwarded-for")
    merged["x-forwarded-for"] = f"{forwarded}, {peer_ip}" if forwarded else peer_ip
    merged.setdefault("x-forwarded-proto", "http")
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query_string,
        "headers": merged,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": api_id,
            "domainName": merged.get("host", "127.0.0.1"),
            "domainPrefix": api_id,
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": peer_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query_string:
        event["queryStringParameters"] = {
            name: value
            for name, _, value in (part.partition("=") for part in query_string.split("&") if part)
        }
    if body:
        text = _as_text(body, merged.get("content-type", ""))
        if text is not None:
            event["body"] = text
        else:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    return event


def _as_text(body: bytes, content_type: str) -> str | None:
    """The body as text if a function URL passes it so: a text content type and valid UTF-8.

    Anything else arrives base64-encoded, never decoded with replacement characters, so a handler
    sees the bytes the client sent and can refuse them.
    """
    content_type = content_type.lower()
    if not content_type or not any(kind in content_type for kind in _TEXT_TYPES):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass
class HttpResult:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_result(result: Mapping[str, Any] | str) -> HttpResult:
    """A function URL's reading of a handler's return value (payload format 2.0)."""
    size = response_payload_bytes(result)
    if size > MAX_RESPONSE_PAYLOAD_BYTES:
        print(
            f"function URL: the function's response payload is {size} bytes, over Lambda's limit of"
            f" {MAX_RESPONSE_PAYLOAD_BYTES}; AWS would answer 502, and so does make dev",
            file=sys.stderr,
            flush=True,
        )
        return HttpResult(502, [("content-type", "application/json")], PAYLOAD_TOO_LARGE_BODY)
    if not isinstance(result, Mapping) or "statusCode" not in result:
        return HttpResult(200, [("content-type", "application/json")], _as_bytes(result, False))
    headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
    headers += [("set-cookie", str(cookie)) for cookie in result.get("cookies") or []]
    body = _as_bytes(result.get("body", ""), bool(result.get("isBase64Encoded")))
    return HttpResult(int(result["statusCode"]), headers, body)


def response_payload_bytes(result: Any) -> int:
    """The size Lambda measures: the return value as the Python 3.12+ runtimes serialize it (raw UTF-8)."""
    return len(json.dumps(result, ensure_ascii=False, default=str).encode())


def _as_bytes(body: Any, is_base64: bool) -> bytes:
    if body is None:
        return b""
    if not isinstance(body, str):
        body = json.dumps(body)
    return base64.b64decode(body) if is_base64 else body.encode()


class CorsPolicy:
    """A function URL's Cors block, with AllowOrigins from CORS_ALLOW_ORIGINS as the template's parameter."""

    def __init__(self, cors: Mapping[str, Any], allow_origins: list[str]) -> None:
        self._origins = [origin.strip() for origin in allow_origins if origin.strip()]
        self._methods = [str(m).upper() for m in cors.get("AllowMethods", [])]
        self._headers = [str(h).lower() for h in cors.get("AllowHeaders", [])]
        self._expose = [str(h).lower() for h in cors.get("ExposeHeaders", [])]
        self._max_age = cors.get("MaxAge")
        self._credentials = bool(cors.get("AllowCredentials"))

    def _allowed_origin(self, origin: str | None) -> str | None:
        if not origin:
            return None
        if "*" in self._origins:
            return "*" if not self._credentials else origin
        return origin if origin in self._origins else None

    def preflight(self, origin: str | None, method: str | None, headers: str | None) -> list[tuple[str, str]]:
        allowed = self._allowed_origin(origin)
        if allowed is None or (method or "").upper() not in (*self._methods, "*"):
            return []
        wanted = [h.strip().lower() for h in (headers or "").split(",") if h.strip()]
        if "*" not in self._headers and any(h not in self._headers for h in wanted):
            return []
        response = [
            ("access-control-allow-origin", allowed),
            ("access-control-allow-methods", ",".join(self._methods)),
        ]
        if wanted:
            response.append(("access-control-allow-headers", ",".join(wanted)))
        if self._max_age is not None:
            response.append(("access-control-max-age", str(self._max_age)))
        return response

    def actual(self, origin: str | None) -> list[tuple[str, str]]:
        allowed = self._allowed_origin(origin)
        if allowed is None:
            return []
        response = [("access-control-allow-origin", allowed)]
        if self._expose:
            response.append(("access-control-expose-headers", ",".join(self._expose)))
        if self._credentials:
            response.append(("access-control-allow-credentials", "true"))
        if allowed != "*":
            response.append(("vary", "Origin"))
        return response
