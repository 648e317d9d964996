"""The OpenAPI description of the stream function's routes, from the same models as the events.

The buffered functions get theirs from Powertools; the stream function is a
Starlette app, so its routes are described here, with the same request models,
the same error responses (http_api.openapi_responses) and the models the
events are built from (claude_chat.models, used by claude_chat.streaming).
A `text/event-stream` body is a sequence of events, which OpenAPI 3.1 cannot
type: the schema says it is text, and `x-events` lists the JSON schema of
each `data:` line (then `data: [DONE]`), so a client generator has a type for
each event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from claude_chat.caller import SESSION_HEADER
from claude_chat.http_api import openapi_responses
from claude_chat.models import (
    ChatRequest,
    ConversationTurnRequest,
    ErrorReply,
    ResetReply,
    StopRequest,
    StreamDone,
    StreamFailed,
    StreamSearch,
    StreamText,
    StreamThinking,
)
from claude_chat.ui_stream import CHUNKS, UI_STREAM_HEADERS, UIChatRequest

_REF = "#/components/schemas/{model}"
_TURN_ERRORS = (400, 404, 413, 415, 422, 429, 502, 503, 504)
_EVENTS = (StreamText, StreamThinking, StreamSearch, StreamDone, StreamFailed)
_SSE_HEADERS = {
    "X-Turn-Id": {
        "description": "The turn's id: send it to `POST /api/chat/stop` to stop this reply.",
        "schema": {"type": "string"},
    },
}


@dataclass(frozen=True, slots=True)
class StreamRoute:
    path: str
    summary: str
    body: type[BaseModel]
    history: bool = False
    events: tuple[type[BaseModel], ...] = _EVENTS
    headers: tuple[str, ...] = ()  # more headers of the 200 response, each always `v1`-like text


ROUTES = (
    StreamRoute("/api/chat/stream", "One stateless turn, streamed as Server-Sent Events", ChatRequest),
    StreamRoute(
        "/api/chat/history/stream",
        "One turn of one of the caller's conversations, streamed as Server-Sent Events",
        ConversationTurnRequest,
        history=True,
    ),
    StreamRoute(
        "/api/chat/ui",
        "One turn for the Vercel AI SDK (useChat, DefaultChatTransport): its UI message stream",
        UIChatRequest,
        history=True,
        events=CHUNKS,
        headers=tuple(UI_STREAM_HEADERS),
    ),
)


def document(routes: tuple[StreamRoute, ...] = ROUTES) -> dict[str, Any]:
    """An OpenAPI 3.1 document of the streamed turn routes and the stop route."""
    models: set[type[BaseModel]] = {ErrorReply, StopRequest, ResetReply}
    for route in routes:
        models |= {route.body, *route.events}
    _, definitions = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)], ref_template=_REF
    )
    paths: dict[str, Any] = {route.path: {"post": _stream_operation(route)} for route in routes}
    paths["/api/chat/stop"] = {"post": _stop_operation()}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Claude chat API", "version": "1.0.0"},
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {})},
    }


def _stream_operation(route: StreamRoute) -> dict[str, Any]:
    headers = {**_SSE_HEADERS}
    for name in route.headers:
        headers[name] = {"description": "The protocol's version marker.", "schema": {"type": "string"}}
    if route.history:
        headers[SESSION_HEADER] = {"description": "The session token.", "schema": {"type": "string"}}
    errors = _schemas(openapi_responses(ErrorReply, *_TURN_ERRORS, session=route.history, limited=True))
    success = errors.pop("200")
    events = [{"$ref": _REF.format(model=model.__name__)} for model in route.events]
    success["description"] = (
        "The reply as Server-Sent Events: each `data:` line is one JSON event (see `x-events`), "
        "then `data: [DONE]`. Errors before the first byte are JSON responses with their status."
    )
    success["headers"] = {**success.get("headers", {}), **headers}
    success["content"] = {
        "text/event-stream": {"schema": {"type": "string"}, "x-events": {"oneOf": events}},
    }
    return {
        "summary": route.summary,
        "operationId": route.path.strip("/").replace("/", "_") + "_post",
        "requestBody": _body(route.body),
        "responses": {"200": success, **errors},
    }


def _stop_operation() -> dict[str, Any]:
    responses = _schemas(openapi_responses(ResetReply, 400, 422))
    responses["422"]["description"] = "Not a turn id this caller was given (`invalid_request`)."
    return {
        "summary": "Stop a streaming reply (free: no budget is drawn)",
        "operationId": "api_chat_stop_post",
        "requestBody": _body(StopRequest),
        "responses": responses,
    }


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}},
    }


def _schemas(responses: dict[int, Any]) -> dict[str, Any]:
    """http_api's responses (Powertools' `model` form) with JSON schema references instead."""
    converted: dict[str, Any] = {}
    for status, response in responses.items():
        content = {
            media: {"schema": {"$ref": _REF.format(model=entry["model"].__name__)}}
            for media, entry in response.get("content", {}).items()
        }
        converted[str(status)] = {**response, "content": content}
    return converted
