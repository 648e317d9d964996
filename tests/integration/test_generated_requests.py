"""Schemathesis against `make dev`: generated good and bad input on every route of the OpenAPI description.

The description is the one Powertools generates from the pydantic models and
`make dev` serves; every response must be a non-500 that matches it (status
code, content type, headers and body schema).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.dev_server import DevServer, start_dev_server

pytestmark = pytest.mark.integration

OPERATIONS = [
    "POST /api/chat",
    "POST /api/chat/history",
    "GET /api/chat/history",
    "DELETE /api/chat/history",
    "GET /api/usage",
    "GET /api/models",
    "GET /api/conversations",
    "GET /api/conversations/{conversation_id}",
    "PATCH /api/conversations/{conversation_id}",
    "DELETE /api/conversations/{conversation_id}",
    "GET /api/conversations/{conversation_id}/export",
    "POST /api/chat/stream",
    "POST /api/chat/history/stream",
    "POST /api/chat/ui",
    "POST /api/chat/stop",
    "POST /api/attachments",
    "GET /api/attachments/{attachment_id}",
]
# Streamed replies (and the stop route, whose ids no generator can forge) are fuzzed with bad input only:
# a generated good request would only stream another stand-in reply.
BAD_INPUT_ONLY = (
    "POST /api/chat/stream",
    "POST /api/chat/history/stream",
    "POST /api/chat/ui",
    "POST /api/chat/stop",
)


@pytest.fixture(scope="module")
def fuzzed_server() -> Iterator[DevServer]:
    # A budget generous enough that the run explores inputs instead of collecting 429s.
    server = start_dev_server(RATE_LIMIT_MAX="100000")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: DevServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed_server.base_url}/api/openapi.json")


def test_the_description_lists_every_route(api_schema) -> None:
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert labels == set(OPERATIONS)


CASES = [
    (label, mode)
    for label in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # DELETE, the usage read and the model list take no input, so there is no bad input to generate for them
    # (GET /api/chat/history takes `limit` and `before`).
    if (mode is GenerationMode.POSITIVE and label not in BAD_INPUT_ONLY)
    or (
        mode is GenerationMode.NEGATIVE
        and label not in ("DELETE /api/chat/history", "GET /api/usage", "GET /api/models")
    )
]


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{label} {mode}" for label, mode in CASES])
def test_generated_requests_get_no_500_and_match_the_description(
    api_schema, fuzzed_server: DevServer, label: str, mode: GenerationMode
) -> None:
    operation = next(r.ok() for r in api_schema.get_all_operations() if r.ok().label == label)

    @settings(
        max_examples=30,  # per operation and mode (22 operations): the suite stays under its 5 minutes
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=fuzzed_server.base_url, timeout=30)

    run()
