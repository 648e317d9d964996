"""Attachments over real HTTP against `make dev`: the presigned upload to its embedded S3, a turn that
sends the file to Claude (the stand-in), the history, the download link, the deletion, and each refusal
(with nothing written and nothing drawn)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from tests.dev_server import DevServer, next_loopback_address, start_dev_server
from tests.files import noise_png, pdf, png


def start(
    client: httpx.Client, name: str, kind: str, size: int, session: str | None = None
) -> httpx.Response:
    headers = {"X-Session-Id": session} if session else {}
    return client.post("/api/attachments", json={"name": name, "type": kind, "size": size}, headers=headers)


def upload(
    client: httpx.Client,
    name: str,
    kind: str,
    data: bytes,
    *,
    declared: int | None = None,
    session: str | None = None,
) -> tuple[str, str]:
    """An uploaded file's id and the session it belongs to (the browser's two requests)."""
    answer = start(client, name, kind, declared if declared is not None else len(data), session)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    stored = httpx.post(
        body["upload"]["url"], data=body["upload"]["fields"], files={"file": (name, data, kind)}
    )
    assert stored.status_code == 204, stored.text
    return body["id"], answer.headers["x-session-id"]


def turn(client: httpx.Client, session: str, message: str, files: list[str], **body: Any) -> httpx.Response:
    return client.post(
        "/api/chat/history",
        json={"message": message, "attachments": files, **body},
        headers={"X-Session-Id": session},
    )


def file_blocks(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        block
        for message in request["body"]["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block["type"] in ("image", "document")
    ]


def last_request_for(server: DevServer, text: str) -> dict[str, Any]:
    found = [
        r
        for r in server.standin_requests()
        if any(
            isinstance(m["content"], list) and any(b.get("text") == text for b in m["content"])
            for m in r["body"]["messages"][-1:]
        )
    ]
    assert found, text
    return found[-1]


def test_an_image_goes_up_to_the_bucket_then_to_claude_and_into_the_history(dev_server: DevServer) -> None:
    client = dev_server.client()
    data = png((300, 200))
    attachment, session = upload(client, "boat photo.png", "image/png", data)
    reply = turn(client, session, "What is in this picture?", [attachment])
    assert reply.status_code == 200, reply.text
    assert reply.json()["turns"] == 1
    (block,) = file_blocks(last_request_for(dev_server, "What is in this picture?"))
    assert block == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(data).decode()},
    }
    history = client.get("/api/chat/history", headers={"X-Session-Id": session}).json()
    assert history["messages"][0]["attachments"] == [
        {"id": attachment, "name": "boat photo.png", "type": "image/png", "size": len(data)}
    ]
    assert "attachments" not in history["messages"][1]
    # The next turn sends the file again (read from the bucket), and keeps its reference only.
    again = turn(client, session, "And its colour?", [])
    assert again.status_code == 200, again.text
    assert [b["source"]["data"] for b in file_blocks(last_request_for(dev_server, "And its colour?"))] == [
        base64.b64encode(data).decode()
    ]


def test_a_download_link_is_for_the_owner_only_and_works_in_a_browser(dev_server: DevServer) -> None:
    client = dev_server.client()
    data = png((40, 30))
    attachment, session = upload(client, "café.png", "image/png", data)
    link = client.get(f"/api/attachments/{attachment}", headers={"X-Session-Id": session})
    assert link.status_code == 302
    assert link.headers["cache-control"] == "no-store"
    fetched = httpx.get(link.headers["location"], headers={"Origin": "http://127.0.0.1:8080"})
    assert fetched.status_code == 200 and fetched.content == data
    assert fetched.headers["content-disposition"].startswith("attachment;")
    assert fetched.headers["access-control-allow-origin"] in ("*", "http://127.0.0.1:8080")
    # Another caller, or no session: exactly as an id that never existed.
    _, other = upload(dev_server.client(), "x.png", "image/png", png((2, 2)))
    for headers in ({"X-Session-Id": other}, {}):
        refused = client.get(f"/api/attachments/{attachment}", headers=headers)
        assert refused.status_code == 404 and refused.json()["code"] == "not_found"
    never = client.get(f"/api/attachments/{'A' * 22}", headers={"X-Session-Id": session})
    assert never.status_code == 404 and never.json() == refused.json()


def test_a_download_link_as_json_for_a_page_on_another_origin(dev_server: DevServer) -> None:
    client = dev_server.client()
    data = png((20, 10))
    attachment, session = upload(client, "a.png", "image/png", data)
    answer = client.get(
        f"/api/attachments/{attachment}", headers={"X-Session-Id": session, "Accept": "application/json"}
    )
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["expires_in"] == 300 and set(body) == {"url", "expires_in"}
    assert httpx.get(body["url"], headers={"Origin": "http://127.0.0.1:8080"}).content == data
    refused = client.get(f"/api/attachments/{attachment}", headers={"Accept": "application/json"})
    assert refused.status_code == 404 and refused.json()["code"] == "not_found"


def test_a_pdf_is_a_document_with_citations(dev_server: DevServer) -> None:
    client = dev_server.client()
    data = pdf(2)
    attachment, session = upload(client, "report.pdf", "application/pdf", data)
    reply = turn(client, session, "Summarize the report.", [attachment])
    assert reply.status_code == 200, reply.text
    (block,) = file_blocks(last_request_for(dev_server, "Summarize the report."))
    assert block["type"] == "document" and block["citations"] == {"enabled": True}
    assert block["source"]["media_type"] == "application/pdf"
    assert block["title"] == "report.pdf"  # so citations name the document as the user knows it


def test_deleting_a_conversation_deletes_its_files(dev_server: DevServer) -> None:
    client = dev_server.client()
    attachment, session = upload(client, "gone.png", "image/png", png((8, 8)))
    assert turn(client, session, "Keep this", [attachment], conversation="trip").status_code == 200
    link = client.get(f"/api/attachments/{attachment}", headers={"X-Session-Id": session})
    assert link.status_code == 302
    deleted = client.delete("/api/conversations/trip", headers={"X-Session-Id": session})
    assert deleted.status_code == 200
    assert client.get(f"/api/attachments/{attachment}", headers={"X-Session-Id": session}).status_code == 404
    # The object itself is gone (S3 answers 403 for a missing key to a signer without ListBucket).
    assert httpx.get(link.headers["location"]).status_code in (403, 404)


def test_a_reset_deletes_the_default_conversations_files(dev_server: DevServer) -> None:
    client = dev_server.client()
    attachment, session = upload(client, "reset.png", "image/png", png((8, 8)))
    assert turn(client, session, "Look", [attachment]).status_code == 200
    assert client.delete("/api/chat/history", headers={"X-Session-Id": session}).status_code == 200
    assert client.get(f"/api/attachments/{attachment}", headers={"X-Session-Id": session}).status_code == 404


def test_the_stream_route_takes_attachments_too(dev_server: DevServer) -> None:
    client = dev_server.client()
    attachment, session = upload(client, "s.png", "image/png", png((16, 16)))
    with client.stream(
        "POST",
        "/api/chat/history/stream",
        json={"message": "Streamed look", "attachments": [attachment]},
        headers={"X-Session-Id": session},
    ) as response:
        assert response.status_code == 200
        body = response.read().decode()
    assert '"done": true' in body or '"done":true' in body
    assert len(file_blocks(last_request_for(dev_server, "Streamed look"))) == 1


# -- refusals: each is the contract's JSON error, and writes nothing and draws nothing ---------------


def _nothing_written(
    dev_server: DevServer, client: httpx.Client, session: str, key: str, before: int
) -> None:
    history = client.get("/api/chat/history", headers={"X-Session-Id": session}).json()
    assert history["turns"] == 0 and history["messages"] == []
    assert dev_server.tokens_used_today(key) == before


def keyed(dev_server: DevServer) -> tuple[httpx.Client, str]:
    """A client and its client key (its own loopback address)."""
    address = next_loopback_address()
    return dev_server.client(address), address


def test_a_file_disguised_as_an_image_is_415_and_costs_nothing(dev_server: DevServer) -> None:
    client, key = keyed(dev_server)
    attachment, session = upload(client, "cat.png", "image/png", pdf(1))
    before = dev_server.tokens_used_today(key)
    refused = turn(client, session, "Is this a cat?", [attachment])
    assert refused.status_code == 415
    assert refused.json()["code"] == "unsupported_attachment"
    assert "ratelimit" in refused.headers
    _nothing_written(dev_server, client, session, key, before)


def test_an_upload_past_its_declared_size_is_refused_by_the_store(dev_server: DevServer) -> None:
    client = dev_server.client()
    answer = start(client, "big.png", "image/png", 100)
    fields = answer.json()["upload"]
    stored = httpx.post(
        fields["url"], data=fields["fields"], files={"file": ("big.png", png((300, 200)), "image/png")}
    )
    assert stored.status_code == 400 and b"EntityTooLarge" in stored.content
    empty = httpx.post(fields["url"], data=fields["fields"], files={"file": ("big.png", b"", "image/png")})
    assert empty.status_code == 400 and b"EntityTooSmall" in empty.content
    other_type = {**fields["fields"], "Content-Type": "application/pdf"}
    assert httpx.post(fields["url"], data=other_type, files={"file": ("x", b"x", "x")}).status_code == 403


def test_a_form_field_the_policy_does_not_name_is_refused_as_s3_refuses_it(dev_server: DevServer) -> None:
    # S3: every field but the signature, the policy, the file and x-ignore-* must appear in the
    # policy's conditions. Else an uploader could set its own Content-Disposition (served inline),
    # Content-Encoding or ACL on an object the policy bound.
    client = dev_server.client()
    answer = start(client, "page.png", "image/png", 1000)
    fields = answer.json()["upload"]
    for extra in ({"Content-Disposition": "inline"}, {"Content-Encoding": "gzip"}, {"acl": "public-read"}):
        forged = httpx.post(
            fields["url"], data={**fields["fields"], **extra}, files={"file": ("a", png((2, 2)))}
        )
        assert forged.status_code == 403 and b"Extra input fields" in forged.content, extra
    ignored = {**fields["fields"], "x-ignore-note": "anything"}
    assert httpx.post(fields["url"], data=ignored, files={"file": ("a", png((2, 2)))}).status_code == 204


def test_a_declared_size_past_the_types_limit_is_413(dev_server: DevServer) -> None:
    client = dev_server.client()
    refused = start(client, "huge.png", "image/png", 5 * 1024 * 1024 + 1)
    assert refused.status_code == 413 and refused.json()["code"] == "attachment_too_large"
    assert start(client, "doc.pdf", "application/pdf", 32 * 1024 * 1024).status_code == 201
    bad = start(client, "x.svg", "image/svg+xml", 10)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"


def test_another_callers_attachment_is_404_as_one_that_never_existed(dev_server: DevServer) -> None:
    owner = dev_server.client()
    attachment, _ = upload(owner, "mine.png", "image/png", png((4, 4)))
    thief, key = keyed(dev_server)
    _, session = upload(thief, "own.png", "image/png", png((4, 4)))
    before = dev_server.tokens_used_today(key)
    stolen = turn(thief, session, "Whose?", [attachment])
    never = turn(thief, session, "Whose?", ["B" * 22])
    assert stolen.status_code == 404 and never.status_code == 404
    assert stolen.json() == never.json() == {"error": "No such attachment.", "code": "not_found"}
    _nothing_written(dev_server, thief, session, key, before)


def test_an_attachment_belongs_to_the_first_conversation_that_uses_it(dev_server: DevServer) -> None:
    client, key = keyed(dev_server)
    attachment, session = upload(client, "once.png", "image/png", png((4, 4)))
    assert turn(client, session, "First", [attachment], conversation="one").status_code == 200
    assert turn(client, session, "Again here", [attachment], conversation="one").status_code == 200
    before = dev_server.tokens_used_today(key)
    reused = turn(client, session, "Elsewhere", [attachment], conversation="two")
    assert reused.status_code == 422 and reused.json()["code"] == "invalid_request"
    assert dev_server.tokens_used_today(key) == before
    assert client.get("/api/conversations/two", headers={"X-Session-Id": session}).status_code == 404


@pytest.mark.parametrize(
    "files",
    [["short"], ["C" * 22, "C" * 22], [f"{n}" * 22 for n in range(6)], "C" * 22],
    ids=["malformed", "repeated", "too-many", "not-a-list"],
)
def test_bad_attachment_lists_are_422(dev_server: DevServer, files: Any) -> None:
    client = dev_server.client()
    refused = client.post("/api/chat/history", json={"message": "x", "attachments": files})
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_request"


def test_the_object_store_answers_the_pages_cors_preflight(dev_server: DevServer) -> None:
    client = dev_server.client()
    answer = start(client, "p.png", "image/png", 10)
    preflight = httpx.options(
        answer.json()["upload"]["url"],
        headers={"Origin": "http://127.0.0.1:8080", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]


def test_the_openapi_description_has_the_routes_and_fields(dev_server: DevServer) -> None:
    document = httpx.get(f"{dev_server.base_url}/api/openapi.json").json()
    assert "201" in document["paths"]["/api/attachments"]["post"]["responses"]
    assert "302" in document["paths"]["/api/attachments/{attachment_id}"]["get"]["responses"]
    schemas = document["components"]["schemas"]
    assert "attachments" in schemas["ConversationTurnRequest"]["properties"]
    assert "attachments" in schemas["HistoryMessage"]["properties"]
    assert set(schemas["AttachmentRequest"]["properties"]) == {"name", "type", "size"}


def test_the_download_route_answers_as_its_description_says(dev_server: DevServer) -> None:
    """`GET /api/attachments/<id>`: a 302 by default, the link as JSON when `Accept` names
    application/json (the page's way), each with the headers and body the OpenAPI description gives."""
    client = dev_server.client()
    attachment, session = upload(client, "d.png", "image/png", png((12, 12)))
    document = httpx.get(f"{dev_server.base_url}/api/openapi.json").json()
    responses = document["paths"]["/api/attachments/{attachment_id}"]["get"]["responses"]
    as_json = responses["200"]["content"]["application/json"]["schema"]
    for accept in ("application/json", "text/html, application/json;q=0.9"):
        answer = client.get(
            f"/api/attachments/{attachment}", headers={"X-Session-Id": session, "Accept": accept}
        )
        assert answer.status_code == 200, (accept, answer.text)
        assert answer.headers["content-type"].startswith("application/json")
        jsonschema.validate(answer.json(), as_json)
        assert all(name in answer.headers for name in responses["200"]["headers"])
    for accept in ("*/*", "text/html", None):
        headers = {"X-Session-Id": session} | ({"Accept": accept} if accept else {})
        redirect = client.get(f"/api/attachments/{attachment}", headers=headers, follow_redirects=False)
        assert redirect.status_code == 302, accept
        assert all(name in redirect.headers for name in responses["302"]["headers"])
    assert set(responses) >= {"200", "302", "404"}


@pytest.mark.parametrize(
    ("block", "complaint"),
    [
        ({"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}, "base64"),
        (
            {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AAAA"}},
            "media_type",
        ),
        ({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "@@"}}, "base64"),
        (
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
            "process",
        ),
        ({"type": "document", "source": {"type": "base64", "media_type": "application/pdf"}}, "data"),
        (
            {
                "type": "document",
                "source": {"type": "base64", "media_type": "application/pdf", "data": "AAAA"},
                "citations": {"enabled": "yes"},
            },
            "citations",
        ),
    ],
    ids=["url-source", "bmp", "not-base64", "not-an-image", "no-data", "citations-not-bool"],
)
def test_the_standin_checks_file_blocks_as_the_api_does(
    standin: Any, block: dict[str, Any], complaint: str
) -> None:
    answer = httpx.post(
        f"{standin.url}/v1/messages",
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        json={
            "model": "claude-haiku-4-5",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": [block, {"type": "text", "text": "what?"}]}],
        },
    )
    assert answer.status_code == 400, answer.text
    assert complaint in answer.json()["error"]["message"]


def test_the_standin_bills_an_image_by_its_pixels_not_its_base64(standin: Any) -> None:
    data = png((1000, 750))
    answer = httpx.post(
        f"{standin.url}/v1/messages",
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        json={
            "model": "claude-haiku-4-5",
            "max_tokens": 10,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/png",
                                "data": base64.b64encode(data).decode(),
                            },
                        },
                        {"type": "text", "text": "what?"},
                    ],
                }
            ],
        },
    )
    assert answer.status_code == 200, answer.text
    assert 1000 <= answer.json()["usage"]["input_tokens"] < 1100  # 1000 x 750 / 750, and the text


def test_an_image_turn_is_priced_by_its_pixels_not_its_bytes(dev_server: DevServer) -> None:
    """3.6 MB of PNG would be 3.6 million tokens by its bytes, past any budget here; by its pixels
    (Claude resizes 1200 x 1000 to about 1,600 tokens) the turn fits and is admitted."""
    client, key = keyed(dev_server)
    data = noise_png((1200, 1000))
    assert len(data) > 3_000_000
    attachment, session = upload(client, "noise.png", "image/png", data)
    reply = turn(client, session, "Any pattern?", [attachment])
    assert reply.status_code == 200, reply.text
    assert dev_server.tokens_used_today(key) < 5_000


@pytest.fixture(scope="module")
def bedrock_server() -> Iterator[DevServer]:
    started = start_dev_server(CLAUDE_PROVIDER="bedrock")
    yield started
    started.stop()


def test_on_bedrock_files_go_as_base64_blocks_too(bedrock_server: DevServer) -> None:
    client = bedrock_server.client()
    image_id, session = upload(client, "b.png", "image/png", png((20, 20)))
    document_id, _ = upload(client, "b.pdf", "application/pdf", pdf(1), session=session)
    reply = turn(client, session, "On Bedrock", [image_id, document_id])
    assert reply.status_code == 200, reply.text
    sent = [r for r in bedrock_server.standin_requests() if r.get("provider") == "bedrock"]
    assert [b["type"] for b in file_blocks(sent[-1])] == ["image", "document"]
    assert all(b["source"]["type"] == "base64" for b in file_blocks(sent[-1]))


def test_a_file_replaced_after_its_check_is_not_sent_again_unchecked(dev_server: DevServer) -> None:
    # A presigned POST works until it expires, as often as it is sent: after a turn checked and
    # counted a tiny image, its uploader replaces it (up to the declared size) with one Claude bills
    # far more for. A later turn reads the file again for the history: it must not send the new bytes
    # (never checked, and counted as the tiny image they replaced).
    client = dev_server.client()
    small, large = png((4, 4)), png((2576, 2576))
    answer = start(client, "swap.png", "image/png", len(large))
    body = answer.json()
    form, session = body["upload"], answer.headers["x-session-id"]
    sent = httpx.post(form["url"], data=form["fields"], files={"file": ("swap.png", small, "image/png")})
    assert sent.status_code == 204
    assert turn(client, session, "first look", [body["id"]]).status_code == 200
    again = httpx.post(form["url"], data=form["fields"], files={"file": ("swap.png", large, "image/png")})
    assert again.status_code == 204
    assert turn(client, session, "second look", []).status_code == 200
    resent = [
        block["source"]["data"]
        for block in file_blocks(last_request_for(dev_server, "second look"))
        if block["type"] == "image"
    ]
    assert base64.b64encode(large).decode() not in resent


def test_a_history_file_sent_as_a_note_leaves_no_bound_for_the_next_turn(dev_server: DevServer) -> None:
    # What Claude billed for a turn bounds the next turn's history (META's ctx) only if that history
    # goes as it went: a file sent as a line of text this time (gone, or changed since its check) may
    # go whole again later, and the bound would be far below what Claude bills then.
    client = dev_server.client()
    small = png((4, 4))
    answer = start(client, "swap.png", "image/png", len(small) * 100)
    body = answer.json()
    form, session = body["upload"], answer.headers["x-session-id"]
    sent = httpx.post(form["url"], data=form["fields"], files={"file": ("swap.png", small, "image/png")})
    assert sent.status_code == 204
    db, table = dev_server.dynamodb()
    meta_key = {"pk": {"S": f"S#{session.split('.')[0]}"}, "sk": {"S": "~META"}}

    def meta() -> dict[str, Any]:
        return dict(db.get_item(TableName=table, Key=meta_key, ConsistentRead=True)["Item"])

    assert turn(client, session, "first look", [body["id"]]).status_code == 200
    assert "ctx" in meta()  # the file went whole: what Claude billed bounds the next turn
    changed = noise_png((40, 40))
    assert (
        httpx.post(
            form["url"], data=form["fields"], files={"file": ("swap.png", changed, "image/png")}
        ).status_code
        == 204
    )
    assert turn(client, session, "second look", []).status_code == 200
    assert "ctx" not in meta()
