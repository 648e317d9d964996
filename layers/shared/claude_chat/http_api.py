"""The HTTP surface every function URL shares, built on Powertools' resolver.

Turn routes take no Powertools-validated body: the turn itself reads it
(claude_chat.chat_turn), after drawing on the rate limit, so a malformed
request costs budget and carries the headers, and both transports read
bodies the same way (as JSON whatever the Content-Type: a `fetch()` without
headers sends text/plain, which also spares the browser a CORS preflight).
`FunctionUrlApi.handle` gives every route the invocation's deadline. CORS
itself is the function URL's job, never the code's: a header set twice is
rejected by browsers.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from claude_chat.caller import SESSION_COOKIE, SESSION_HEADER, Caller, caller_of
from claude_chat.deadline import Deadline
from claude_chat.errors import (
    ApiError,
    ConversationNotFound,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
)
from claude_chat.models import ErrorReply
from claude_chat.request_body import request_error
from claude_chat.settings import get_settings

logger = Logger(child=True)


_ERROR_DESCRIPTIONS = {
    400: "The body is not JSON (`invalid_json`).",
    404: "An attachment that is not the caller's, or does not exist (`not_found`).",
    413: "`message` is too long (`message_too_long`), or an attachment is (`attachment_too_large`).",
    415: "An attachment is not what its type claims, or not a supported type (`unsupported_attachment`).",
    422: "`message` is missing, empty or not a string, or an unknown field was sent (`invalid_request`).",
    429: "Rate limited (`rate_limited`); see Retry-After.",
    502: "Claude answered with an error the client cannot fix (`upstream_error`).",
    503: "Claude is rate-limited or overloaded (`upstream_unavailable`); see Retry-After.",
    504: "Claude did not answer in time (`upstream_timeout`).",
}
_SESSION_HEADERS = {SESSION_HEADER: {"description": "The session token.", "schema": {"type": "string"}}}
_RATE_LIMIT_HEADERS = {
    name: {"description": description, "schema": {"type": "string"}}
    for name, description in {
        "RateLimit-Policy": 'IETF draft-10 policy, e.g. `"chat";q=20;w=60`.',
        "RateLimit": 'IETF draft-10 state, e.g. `"chat";r=19;t=42`.',
        "RateLimit-Limit": "Requests per window.",
        "RateLimit-Remaining": "Requests left in this window.",
        "RateLimit-Reset": "Seconds until the window resets.",
    }.items()
}


def openapi_responses(
    reply: type[BaseModel], *errors: int, session: bool = False, limited: bool = False
) -> dict[int, Any]:
    """OpenAPI `responses` of a route: its reply model, its headers, and the contract errors it can answer."""
    headers = {**(_SESSION_HEADERS if session else {}), **(_RATE_LIMIT_HEADERS if limited else {})}
    success: dict[str, Any] = {"description": "OK", "content": {"application/json": {"model": reply}}}
    if headers:
        success["headers"] = headers
    responses: dict[int, Any] = {200: success}
    for status in errors:
        responses[status] = {
            "description": _ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"model": ErrorReply}},
            **({"headers": _RATE_LIMIT_HEADERS} if limited else {}),
        }
    return responses


class FunctionUrlApi(LambdaFunctionUrlResolver):
    """A Powertools resolver that speaks the contract's errors and knows its own routes."""

    def __init__(self, bodies: Mapping[str, type[BaseModel]] | None = None) -> None:
        """`bodies`: the model of each route that reads its own body ("POST /api/chat": ChatRequest)."""
        super().__init__(enable_validation=True)
        self.route_methods: dict[str, set[str]] = {}
        self._bodies = dict(bodies or {})
        self.exception_handler(ApiError)(self._api_error)
        self.exception_handler(RequestValidationError)(self._validation_error)
        self.exception_handler(NotFoundError)(self._no_route)
        self.exception_handler(Exception)(self._defect)

    def route(self, rule: Any, method: Any, *args: Any, **kwargs: Any) -> Any:
        methods = [method] if isinstance(method, str) else list(method)
        self.route_methods.setdefault(rule, set()).update(m.upper() for m in methods)
        return super().route(rule, method, *args, **kwargs)

    def openapi_document(self) -> dict[str, Any]:
        """Powertools' OpenAPI description, minus the 422 body it adds to routes that take no input."""
        document: dict[str, Any] = self.get_openapi_schema(
            title="Claude chat API", version="1.0.0"
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                body_model = self._bodies.get(f"{method.upper()} {path}")
                if body_model is not None:
                    # The route reads its own body (see the module docstring); describe it all the same.
                    name = body_model.__name__
                    schemas[name] = body_model.model_json_schema()
                    operation["requestBody"] = {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
                    }
                if "requestBody" not in operation and "parameters" not in operation:
                    operation.get("responses", {}).pop("422", None)
        text = json.dumps(document["paths"])
        for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
            if f"/{unused}" not in text:
                schemas.pop(unused, None)
        return document

    def handle(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        """The Lambda entry point: Powertools' routing, with the invocation's deadline at hand."""
        started = time.perf_counter()
        self.context["deadline"] = Deadline.of_lambda(context)
        try:
            self.context["caller"] = caller_of(event)  # with sign-in on, a 401 before any route runs
            result = self.resolve(dict(event), context)
        except ApiError as error:
            result = _result(error)
        except Exception as error:
            logger.exception("unhandled error", extra={"error_type": type(error).__name__})
            result = _result(InternalError())
        finally:
            self.context.pop("deadline", None)
            self.context.pop("caller", None)
        logger.info(
            "request",
            extra={
                "method": _method(event),
                "path": event.get("rawPath"),
                "status": result.get("statusCode"),
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return result

    @property
    def deadline(self) -> Deadline:
        deadline: Deadline = self.context["deadline"]
        return deadline

    @property
    def caller(self) -> Caller:
        caller: Caller = self.context["caller"]
        return caller

    def _api_error(self, error: ApiError) -> Response[Any]:
        return Response(
            status_code=error.status,
            content_type=content_types.APPLICATION_JSON,
            body=error.json(),
            headers=error.headers,
        )

    def _validation_error(self, error: RequestValidationError) -> Response[Any]:
        return self._api_error(_contract_error(error.errors()))

    def _no_route(self, _: NotFoundError) -> Response[Any]:
        path, method = self.current_event.path, self.current_event.http_method.upper()
        matching = [methods for rule, methods in self.route_methods.items() if rule_matches(rule, path)]
        if any(method in methods for methods in matching):
            # The route exists for this method, but a path parameter is not one its pattern allows:
            # no such resource (a conversation id that cannot exist is one that does not).
            return self._api_error(ConversationNotFound())
        allowed = sorted({m for methods in matching for m in methods})
        return self._api_error(MethodNotAllowed(allowed) if allowed else NotFound())

    def _defect(self, error: Exception) -> Response[Any]:
        logger.exception("unhandled error", extra={"error_type": type(error).__name__})
        return self._api_error(InternalError())


def session_cookie(token: str) -> Cookie:
    return Cookie(
        name=SESSION_COOKIE,
        value=token,
        path="/",
        secure=True,
        http_only=True,
        same_site=SameSite.LAX_MODE,
        max_age=get_settings().session_ttl_seconds,
    )


def rule_matches(rule: str, path: str) -> bool:
    """Whether a route rule (`/api/conversations/<conversation_id>`) matches a request path."""
    pattern = re.sub(r"<[^/>]+>", "[^/]+", re.escape(rule))  # re.escape leaves < and > alone
    return re.fullmatch(pattern, path) is not None


def session_response(body: Any, token: str, headers: Mapping[str, str] | None = None) -> Response[Any]:
    """A 200 JSON reply that hands the session token back as header and cookie."""
    cookie = session_cookie(token)
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={**(headers or {}), SESSION_HEADER: token},
        cookies=[cookie],
    )


def _method(event: Mapping[str, Any]) -> str:
    return str(event.get("requestContext", {}).get("http", {}).get("method", "")).upper()


def _result(error: ApiError) -> dict[str, Any]:
    return {
        "statusCode": error.status,
        "headers": {"Content-Type": "application/json", **error.headers},
        "body": error.json(),
        "isBase64Encoded": False,
    }


def _contract_error(errors: Sequence[Any]) -> ApiError:
    """The contract's error for pydantic's first complaint: a query parameter's, else the body's."""
    for error in errors:
        location = tuple(error.get("loc", ()))
        if location[:1] == ("query",) and len(location) > 1:
            return InvalidRequest(f"`{location[1]}` is not valid: {error.get('msg', 'bad value')}.")
    return request_error(errors)
