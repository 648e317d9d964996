"""POST /api/chat/ui against `make dev`: the Vercel AI SDK's own client, and the route's edges over HTTP.

The client is the real one, not a re-implementation: tests/aisdk/chat.mjs runs
`AbstractChat` (what useChat wraps) and `DefaultChatTransport` of each `ai`
version that package.json pins (5.0.0, whose chunk schema is strict, the last
5.x, 6 and 7) and prints what it saw; these tests judge that output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import httpx
import pytest

from tests.dev_server import ROOT, DevServer, next_loopback_address

pytestmark = pytest.mark.integration

PACKAGES = ["ai-v5-0", "ai-v5", "ai-v6", "ai-v7"]  # npm aliases in package.json
SCRIPT = ROOT / "tests" / "aisdk" / "chat.mjs"
UI = "/api/chat/ui"


@pytest.fixture(scope="module", params=PACKAGES)
def seen(request: pytest.FixtureRequest, dev_server: DevServer) -> dict[str, Any]:
    """What one version of the SDK's client saw in every scenario (one run of the script)."""
    node = shutil.which("node")
    assert node, "node is needed (make install runs npm ci)"
    package = str(request.param)
    assert (ROOT / "node_modules" / package).exists(), f"{package} is not installed: run npm ci"
    addresses = ",".join(next_loopback_address() for _ in range(6))
    command = [
        node,
        str(SCRIPT),
        "--package",
        package,
        "--base",
        dev_server.base_url,
        "--addresses",
        addresses,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    failed = {
        name: part["failed"] for name, part in output.items() if isinstance(part, dict) and "failed" in part
    }
    assert not failed, failed
    return output


def test_file_parts_are_attachments_and_links_are_refused_unfetched(
    seen: dict[str, Any], dev_server: DevServer
) -> None:
    """A `file` part's data URL is checked by its bytes, sent to Claude as an image block and kept as
    the conversation's attachment; a link is refused (422), never fetched, and nothing is saved."""
    files = seen["files"]
    sent = files["sent"]
    assert (sent["status"], sent["error"]) == ("ready", None), sent
    session = sent["metadata"]["session"]
    standin = httpx.get(f"{dev_server.standin_url}/_standin/requests").json()
    asked = next(
        call["body"]
        for call in reversed(standin)
        if "What is in this picture?" in json.dumps(call["body"]["messages"][-1])
    )
    blocks = asked["messages"][-1]["content"]
    assert [block["type"] for block in blocks] == ["image", "text"]
    assert blocks[0]["source"]["media_type"] == "image/png"
    saved = dev_server.client().get(f"/api/conversations/{files['id']}", headers={"X-Session-Id": session})
    [attached] = saved.json()["messages"][0]["attachments"]
    assert (attached["name"], attached["type"], attached["size"]) == ("dot.png", "image/png", 70)
    link = dev_server.client().get(
        f"/api/attachments/{attached['id']}", headers={"X-Session-Id": session}, follow_redirects=False
    )
    assert link.status_code == 302
    assert httpx.get(link.headers["location"]).content[:8] == b"\x89PNG\r\n\x1a\n"
    remote = files["remote"]
    assert code_of(remote["error"]) == "invalid_request"
    assert remote["response"]["status"] == 422


def code_of(error_text: str | None) -> str:
    """The contract's code in an SDK error's message: the JSON error body, before or during the stream."""
    assert error_text is not None
    return str(json.loads(error_text)["code"])


def test_the_sdk_holds_a_conversation_and_regenerates(seen: dict[str, Any], dev_server: DevServer) -> None:
    reply = seen["reply"]
    first, second, regenerated = reply["first"], reply["second"], reply["regenerated"]
    assert (first["status"], first["error"]) == ("ready", None)
    assert first["text"] == "Stand-in reply to: Hello from the AI SDK"
    headers = first["response"]["headers"]
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert first["metadata"]["turn"] == headers["x-turn-id"]
    assert first["metadata"]["session"] == headers["x-session-id"]
    assert first["metadata"]["conversation"] == reply["id"]
    assert first["metadata"]["turns"] == 1
    assert first["metadata"]["usage"]["output_tokens"] == 8
    assert first["metadata"]["stop_reason"] == "end_turn"
    assert first["metadata"]["title"] == "Hello from the AI SDK"
    # The second turn went to the same session and conversation: Claude saw the first.
    assert second["text"] == "Stand-in reply to: And again (turn 2)"
    assert second["metadata"]["session"] == first["metadata"]["session"]
    assert second["metadata"]["turns"] == 2
    # `regenerate-message` replaced the last turn: still two, and Claude did not see the old reply.
    assert regenerated["text"] == "Stand-in reply to: And again (turn 2)"
    assert regenerated["metadata"]["turns"] == 2
    assert [role for role, _ in reply["messages"]] == ["user", "assistant", "user", "assistant"]
    saved = dev_server.client().get(
        f"/api/conversations/{reply['id']}", headers={"X-Session-Id": first["metadata"]["session"]}
    )
    assert saved.status_code == 200
    assert [m["content"] for m in saved.json()["messages"]] == [text for _, text in reply["messages"]]


def test_errors_reach_the_sdk_with_the_contract_codes(seen: dict[str, Any]) -> None:
    during, before, bad_id = seen["errors"]["during"], seen["errors"]["before"], seen["errors"]["bad_id"]
    # During the stream: an `error` chunk; the client keeps what it showed and holds the error.
    assert during["status"] == "error"
    assert code_of(during["error"]) == "upstream_unavailable"
    assert (during["role"], during["text"]) == ("assistant", "Stand-in reply ")
    assert during["response"]["status"] == 200
    # Before the first byte: the contract's JSON error and status, which the SDK's error carries.
    assert (before["status"], before["response"]["status"]) == ("error", 502)
    assert code_of(before["error"]) == "upstream_error"
    assert before["role"] == "user"
    assert (bad_id["status"], bad_id["response"]["status"]) == ("error", 422)
    assert code_of(bad_id["error"]) == "invalid_request"


def test_a_spent_request_budget_is_a_429_the_sdk_reports(seen: dict[str, Any], dev_server: DevServer) -> None:
    limited = seen["rate_limited"]
    assert limited["statuses"] == [200] * dev_server.rate_limit_max + [429]
    last = limited["last"]
    assert last["status"] == "error"
    assert code_of(last["error"]) == "rate_limited"
    assert last["response"]["headers"]["ratelimit-remaining"] == "0"
    assert int(last["response"]["headers"]["retry-after"]) > 0


def test_stop_keeps_what_the_user_saw(seen: dict[str, Any]) -> None:
    stopped = seen["stop"]
    assert (stopped["status"], stopped["error"]) == ("ready", None)
    shown = stopped["text"]
    assert shown.startswith("Stand-in reply to: Stop")
    assert "w40" not in shown
    # No `finish` came, so the session is the one the `start` chunk carried; the server kept the part sent.
    assert stopped["saved_status"] == 200
    assert stopped["saved"]["turns"] == 1
    kept = stopped["saved"]["messages"][-1]["content"]
    assert kept.startswith(shown.strip())
    assert "w40" not in kept
    # The page kept that session too (5.0.0 calls no onFinish for a stopped reply): the next turn
    # continues the same conversation.
    following = stopped["next"]
    assert (following["status"], following["text"]) == ("ready", "Stand-in reply to: After the stop (turn 2)")
    assert following["metadata"]["session"] == stopped["metadata"]["session"]
    assert following["metadata"]["turns"] == 2


def test_the_transport_parses_every_chunk(seen: dict[str, Any]) -> None:
    reply, error = seen["parser"]["reply"], seen["parser"]["error"]
    assert (reply["status"], reply["error"]) == (200, None)
    assert reply["headers"]["x-vercel-ai-ui-message-stream"] == "v1"
    types = [chunk["type"] for chunk in reply["chunks"]]
    assert types == ["start", "text-start", *["text-delta"] * 5, "text-end", "finish"]
    assert set(reply["chunks"][-1]["messageMetadata"]) == {
        "usage",
        "turns",
        "title",
        "stop_reason",
        "session",
        "conversation",
    }
    assert error["error"] is None
    assert [chunk["type"] for chunk in error["chunks"]][-2:] == ["text-delta", "error"]
    assert code_of(error["chunks"][-1]["errorText"]) == "upstream_unavailable"


# ------------------------------------------------------------------------------ the route over HTTP


def ui_body(text: str = "Hello", **fields: Any) -> dict[str, Any]:
    message = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": text}]}
    return {"id": "http-chat", "messages": [message], "trigger": "submit-message", **fields}


def test_the_stream_on_the_wire(client: httpx.Client) -> None:
    body = ui_body("On the wire", messageId=None, newerSdkField={"x": 1})  # unknown fields are accepted
    body["messages"][0]["metadata"] = {"sent": 1}
    body["messages"][0]["parts"].insert(0, {"type": "step-start"})
    with client.stream("POST", UI, json=body) as response:
        raw = response.read().decode()
    assert response.status_code == 200
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert response.headers["cache-control"] == "no-cache"
    events = raw.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    assert chunks[0]["type"] == "start"
    assert (
        "".join(c["delta"] for c in chunks if c["type"] == "text-delta") == "Stand-in reply to: On the wire"
    )
    assert chunks[-1]["type"] == "finish"


def test_the_text_parts_of_the_last_message_are_joined(client: httpx.Client, dev_server: DevServer) -> None:
    body = ui_body("First part", id="joined-parts")
    # Parts that are neither text nor files are passed over (files are attachments: see above).
    body["messages"][0]["parts"] += [{"type": "step-start"}, {"type": "text", "text": "second"}]
    with client.stream("POST", UI, json=body) as response:
        response.read()
    assert response.status_code == 200
    session = response.headers["x-session-id"]
    saved = client.get("/api/conversations/joined-parts", headers={"X-Session-Id": session}).json()
    assert saved["messages"][0]["content"] == "First part\nsecond"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"messages": ui_body()["messages"], "trigger": "submit-message"}, 422, "invalid_request"),
        (ui_body(id="x" * 65), 422, "invalid_request"),
        (ui_body(trigger="resume-stream"), 422, "invalid_request"),
        ({**ui_body(), "messages": []}, 422, "invalid_request"),
        ({**ui_body(), "messages": [{"role": "user"}]}, 422, "invalid_request"),
        ({**ui_body(), "messages": [{"role": "user", "parts": [{"type": "text"}]}]}, 422, "invalid_request"),
        (
            {**ui_body(), "messages": [{"role": "user", "parts": [{"type": "text", "text": 3}]}]},
            422,
            "invalid_request",
        ),
        ({**ui_body(), "messages": [{"role": "robot", "parts": []}]}, 422, "invalid_request"),
        (
            {**ui_body(), "messages": [{"role": "assistant", "parts": [{"type": "text", "text": "Hi"}]}]},
            422,
            "invalid_request",
        ),
        (
            {**ui_body(), "messages": [{"role": "user", "parts": [{"type": "file", "url": "data:,x"}]}]},
            422,
            "invalid_request",
        ),
        (ui_body("   "), 422, "invalid_request"),
        (ui_body("\ud800"), 422, "invalid_request"),
        (ui_body("x" * 16001), 413, "message_too_long"),
        ([ui_body()], 422, "invalid_request"),
    ],
)
def test_bad_bodies_are_json_errors_before_any_byte(
    client: httpx.Client, body: Any, status: int, code: str
) -> None:
    # json.dumps escapes a lone surrogate as JSON may (httpx's encoder would refuse to send it).
    response = client.post(UI, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == code
    assert "ratelimit-remaining" in response.headers  # drawn from the request budget, as on every route


def test_a_body_that_is_not_json(client: httpx.Client) -> None:
    response = client.post(UI, content=b"{", headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_json")


def test_only_post(client: httpx.Client) -> None:
    response = client.get(UI)
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")


def test_regenerating_a_reply_that_was_never_saved_keeps_the_turn_before(client: httpx.Client) -> None:
    """useChat's regenerate() after a reply that was never saved (its request failed before the function
    ran, or the reply failed) sends the same unanswered last user message with `regenerate-message`:
    that message gets its answer; the conversation's last saved turn (another exchange) is not lost."""
    first = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Alpha"}]}
    with client.stream("POST", UI, json={**ui_body(id="regen-unsaved"), "messages": [first]}) as response:
        response.read()
    headers = {"X-Session-Id": response.headers["x-session-id"]}
    reply = {"id": "a1", "role": "assistant", "parts": [{"type": "text", "text": "Stand-in reply to: Alpha"}]}
    second = {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "Bravo"}]}
    regenerate = {
        **ui_body(id="regen-unsaved", trigger="regenerate-message"),
        "messages": [first, reply, second],
    }
    with client.stream("POST", UI, json=regenerate, headers=headers) as response:
        response.read()
    assert response.status_code == 200
    saved = client.get("/api/conversations/regen-unsaved", headers=headers).json()
    assert [m["content"] for m in saved["messages"] if m["role"] == "user"] == ["Alpha", "Bravo"]
    assert (saved["turns"], saved["title"]) == (2, "Alpha")
