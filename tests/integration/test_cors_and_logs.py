"""CORS comes from the function URL settings only, and logs never carry message text or tokens."""

from __future__ import annotations

import json

import pytest

from claude_chat.observability import session_hash

pytestmark = pytest.mark.integration

ORIGIN = "https://chat.example.com"


def test_preflight_is_answered_from_the_template(client) -> None:
    response = client.options(
        "/api/chat/history",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-session-id",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-headers"] == "content-type,x-session-id"
    assert response.headers["access-control-max-age"] == "600"


def test_each_cors_header_reaches_the_browser_once(client) -> None:
    response = client.post("/api/chat/history", json={"message": "hi"}, headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers.get_list("access-control-allow-origin") == ["*"]
    exposed = response.headers.get_list("access-control-expose-headers")
    assert len(exposed) == 1
    assert {"x-session-id", "ratelimit", "retry-after"} <= set(exposed[0].split(","))


def test_the_handlers_never_set_cors_themselves(events, aws, standin, lambda_handler, lambda_context) -> None:
    for function, event in (("ChatFunction", "chat-history"), ("HistoryFunction", "history-get")):
        result = lambda_handler(function)(events[event], lambda_context)
        assert not [name for name in result["headers"] if name.lower().startswith("access-control-")]


def test_logs_carry_no_message_text_and_no_session_token(dev_server) -> None:
    client = dev_server.client()
    secret_text = "my-bank-pin-is-4921"
    token = client.post("/api/chat/history", json={"message": secret_text}).json()["session"]
    client.post(
        "/api/chat/history",
        json={"message": f"{secret_text} [standin:status=500]"},
        headers={"X-Session-Id": token},
    )
    client.get("/api/chat/history", headers={"X-Session-Id": token})
    with client.stream(
        "POST", "/api/chat/history/stream", json={"message": secret_text}, headers={"X-Session-Id": token}
    ) as streamed:
        assert "".join(streamed.iter_text()).endswith("data: [DONE]\n\n")
    log = dev_server.log()
    assert '"status": 200' in log or '"status":200' in log  # the request log is there...
    assert secret_text not in log  # ...but never what the user wrote
    assert token not in log
    session_id = token.split(".")[0]
    assert session_id not in log
    # Log lines name the session by a hash, so one conversation can be followed without its token.
    assert f'"session":"{session_hash(session_id)}"' in log.replace(" ", "")
    # Metrics are EMF lines: the tokens of each turn, per model.
    emf = [json.loads(line) for line in log.splitlines() if line.startswith('{"_aws"')]
    token_lines = [line for line in emf if "InputTokens" in line]
    assert token_lines and all(line["model"] == "claude-haiku-4-5" for line in token_lines)


def test_a_page_on_another_origin_can_read_the_export_file_name(client) -> None:
    """The deployed page is on another origin than the history function: without the header in
    Access-Control-Expose-Headers, fetch() hides Content-Disposition and the page names the file
    itself ("Café crème" became caf-cr-me.md, a title in another script conversation.md)."""
    turn = client.post("/api/chat/history", json={"message": "Café crème", "conversation": "cors-export"})
    assert turn.status_code == 200, turn.text
    response = client.get(
        "/api/conversations/cors-export/export",
        headers={"Origin": ORIGIN, "X-Session-Id": turn.json()["session"]},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == 'attachment; filename="cafe-creme.md"'
    exposed = response.headers["access-control-expose-headers"].split(",")
    assert "content-disposition" in exposed
