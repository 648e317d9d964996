"""Attachments in-process (moto S3 and DynamoDB): what a file is by its bytes, what Claude bills for it,
whose it is, and the claim that binds it to one conversation."""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import time
import zlib
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import NameObject, StreamObject

from claude_chat import attachments
from claude_chat.admission import Admission, Conflict, Limits
from claude_chat.attachments import (
    AttachmentNotFound,
    AttachmentStore,
    AttachmentTooLarge,
    UnsupportedAttachment,
    content_block,
    image_tokens,
    inspect,
)
from claude_chat.caller import Caller
from claude_chat.conversation_store import ConversationSummary, Turn
from claude_chat.conversations import export_markdown, messages_of
from claude_chat.rate_limiter import RateLimiter
from tests.files import image, pdf, text_pdf

HAIKU = "claude-haiku-4-5"
BUCKET = "attachments-test"
OWNER = "owner-a"


@functools.cache  # built once per process: make mutation forks every mutant's run from one that has it
def pdf_bomb() -> bytes:
    """One page whose content stream is 100 KB of zlib that inflates to 200 MB of zeros."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=612, height=792)
    stream = StreamObject()
    stream._data = zlib.compress(b"\0" * (200 * 1024 * 1024), 9)
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# -- by their bytes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [("image/png", "PNG"), ("image/jpeg", "JPEG"), ("image/gif", "GIF"), ("image/webp", "WEBP")],
)
def test_each_image_type_is_read_by_its_header(content_type: str, kind: str) -> None:
    checked = inspect("a" * 22, "cat.img", content_type, image(kind, (1000, 750)), HAIKU)
    assert checked.type == content_type and checked.size > 0
    assert checked.tokens == 1000 + 16  # 1000 x 750 / 750, under the standard tier's cap, and its block
    assert checked.low == 1000


def test_a_file_disguised_as_an_image_is_415() -> None:
    with pytest.raises(UnsupportedAttachment):
        inspect("a" * 22, "cat.png", "image/png", pdf(), HAIKU)
    with pytest.raises(UnsupportedAttachment):  # the right magic number, then nothing an image holds
        inspect("a" * 22, "cat.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, HAIKU)
    with pytest.raises(UnsupportedAttachment):  # a GIF declared as a JPEG
        inspect("a" * 22, "cat.jpg", "image/jpeg", image("GIF"), HAIKU)
    with pytest.raises(UnsupportedAttachment):  # an image declared as a PDF
        inspect("a" * 22, "doc.pdf", "application/pdf", image("PNG"), HAIKU)


def test_a_zero_byte_file_is_415() -> None:
    with pytest.raises(UnsupportedAttachment, match="empty"):
        inspect("a" * 22, "empty.png", "image/png", b"", HAIKU)


def test_an_unsupported_type_is_415() -> None:
    with pytest.raises(UnsupportedAttachment):
        inspect("a" * 22, "x.svg", "image/svg+xml", b"<svg/>", HAIKU)


def test_files_past_their_types_limit_are_413() -> None:
    with pytest.raises(AttachmentTooLarge):
        inspect("a" * 22, "big.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * (5 * 1024 * 1024), HAIKU)


def test_an_image_wider_than_claude_takes_is_413_without_decoding_its_pixels() -> None:
    wide = io.BytesIO()
    Image.new("1", (8001, 10)).save(wide, format="PNG")
    with pytest.raises(AttachmentTooLarge):
        inspect("a" * 22, "wide.png", "image/png", wide.getvalue(), HAIKU)


def test_a_pdf_is_counted_by_its_pages() -> None:
    checked = inspect("a" * 22, "doc.pdf", "application/pdf", pdf(3), HAIKU)
    assert checked.tokens == 3 * (1600 + 3000) + 16  # each page: its image's most, and its text's most
    assert checked.low == 3 * 1500


def test_a_pdf_with_more_text_than_a_page_usually_holds_counts_its_text() -> None:
    text = "word " * 1200  # 6,000 bytes of text on one page
    checked = inspect("a" * 22, "dense.pdf", "application/pdf", text_pdf(text), HAIKU)
    assert checked.tokens >= 1600 + 6000 - 10


def test_a_pdf_past_100_pages_is_413() -> None:
    with pytest.raises(AttachmentTooLarge, match="100 pages"):
        inspect("a" * 22, "long.pdf", "application/pdf", pdf(101), HAIKU)


def test_a_pdf_bomb_is_413_not_inflated() -> None:
    bomb = pdf_bomb()
    assert len(bomb) < 1024 * 1024
    with pytest.raises(AttachmentTooLarge):
        inspect("a" * 22, "bomb.pdf", "application/pdf", bomb, HAIKU)


def test_a_pdf_that_does_not_parse_is_415() -> None:
    with pytest.raises(UnsupportedAttachment):
        inspect("a" * 22, "broken.pdf", "application/pdf", b"%PDF-1.7\n" + b"garbage" * 100, HAIKU)


def test_an_encrypted_pdf_is_415() -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=100, height=100)
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(UnsupportedAttachment, match="Encrypted"):
        inspect("a" * 22, "locked.pdf", "application/pdf", out.getvalue(), HAIKU)


# -- what Claude bills ------------------------------------------------------------------------------


def test_image_tokens_follow_claudes_resizing() -> None:
    assert image_tokens(1092, 1092, 1568, 1600) == 1590  # the vision docs' table: 1092 x 1092 is ~1590
    assert image_tokens(200, 200, 1568, 1600) == 54  # 200 x 200 / 750
    assert image_tokens(8000, 8000, 1568, 1600) == 1600  # resized: never more than the tier's most
    assert image_tokens(8000, 6000, 2576, 4784) == 4784
    assert image_tokens(960, 540, 2576, 4784) == 35 * 20  # the newer tier counts 28-pixel patches


def test_newer_and_unknown_models_count_images_at_the_larger_tier() -> None:
    big = image("PNG", (3000, 2000))
    assert inspect("a" * 22, "x", "image/png", big, "claude-haiku-4-5").tokens == 1600 + 16
    assert inspect("a" * 22, "x", "image/png", big, "claude-opus-4-7").tokens == 4784 + 16
    assert inspect("a" * 22, "x", "image/png", big, "some-future-model").tokens == 4784 + 16
    bedrock = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert inspect("a" * 22, "x", "image/png", big, bedrock).tokens == 1600 + 16


def test_blocks_are_base64_images_and_documents_with_citations() -> None:
    data = image()
    png = inspect("a" * 22, "x.png", "image/png", data, HAIKU)
    block = content_block(png, data)
    assert block == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(data).decode()},
    }
    document = pdf()
    checked = inspect("b" * 22, "x.pdf", "application/pdf", document, HAIKU)
    block = content_block(checked, document)
    assert block["type"] == "document" and block["citations"] == {"enabled": True}
    assert block["title"] == "x.pdf"
    assert block["source"]["media_type"] == "application/pdf"


def test_turns_keep_references_not_bytes() -> None:
    checked = inspect("a" * 22, "cat <1>.png", "image/png", image(), HAIKU)
    stored = json.loads(attachments.dump([checked]))
    assert stored == [{**checked.ref(), "tokens": checked.tokens, "low": checked.low, "sha": checked.digest}]
    assert attachments.load(attachments.dump([checked])) == (checked,)
    del stored[0]["sha"]  # kept before files carried their digest: still read
    assert attachments.load(json.dumps(stored)) == (replace(checked, digest=""),)
    turn = Turn("look", "a cat", (checked,))
    (user, assistant) = messages_of([turn])
    assert user.model_dump() == {
        "role": "user",
        "content": "look",
        "attachments": [{"id": "a" * 22, "name": "cat <1>.png", "type": "image/png", "size": checked.size}],
    }
    assert assistant.model_dump() == {"role": "assistant", "content": "a cat"}
    markdown = export_markdown(ConversationSummary("c", "t", 1, 0), [turn], 0)
    assert f"Attachment: cat \\<1\\>.png (image/png, {checked.size} bytes, id `{'a' * 22}`)" in markdown


# -- the store --------------------------------------------------------------------------------------


@pytest.fixture
def store(aws: Any, _s3_client: Any) -> AttachmentStore:
    _s3_client.create_bucket(Bucket=BUCKET)  # in this test's fresh mock
    return AttachmentStore(_s3_client, BUCKET, os.environ["TABLE_NAME"], 86_400)


def put(
    store: AttachmentStore, owner: str, attachment_id: str, data: bytes, content_type: str, declared: int
) -> None:
    store._s3.put_object(
        Bucket=BUCKET,
        Key=attachments.object_key(owner, attachment_id),
        Body=data,
        ContentType=content_type,
        Metadata={"name": attachments.encode_name("chat café.png"), "declared-size": str(declared)},
    )


def test_an_upload_is_bound_to_one_key_the_type_the_size_and_tagged_pending(store: AttachmentStore) -> None:
    upload = store.presign_upload(OWNER, "chat café.png", "image/png", 1234)
    assert len(upload.id) == 22
    fields = upload.fields
    assert fields["key"] == f"uploads/{attachments.owner_digest(OWNER)}/{upload.id}"
    assert fields["Content-Type"] == "image/png"
    assert fields["x-amz-meta-name"] == "chat%20caf%C3%A9.png"
    assert "<Value>pending</Value>" in fields["tagging"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert ["content-length-range", 1, 1234] in policy["conditions"]
    assert ["eq", "$key", fields["key"]] in policy["conditions"]
    assert {"Content-Type": "image/png"} in policy["conditions"]
    assert OWNER not in json.dumps(fields)  # the key names a digest of the owner, not the session


def test_a_file_is_read_back_by_its_owner_only(store: AttachmentStore) -> None:
    data = image()
    put(store, OWNER, "x" * 22, data, "image/png", len(data))
    fetched = store.fetch(OWNER, "x" * 22)
    assert (fetched.name, fetched.type, fetched.data) == ("chat café.png", "image/png", data)
    with pytest.raises(AttachmentNotFound):  # another caller's id: exactly as one that never existed
        store.fetch("owner-b", "x" * 22)
    with pytest.raises(AttachmentNotFound):
        store.fetch(OWNER, "y" * 22)
    assert store.exists("owner-b", "x" * 22) is None
    assert store.exists(OWNER, "x" * 22) is not None


def test_an_upload_past_its_declared_size_is_413(store: AttachmentStore) -> None:
    data = image()
    put(store, OWNER, "x" * 22, data, "image/png", len(data) - 1)
    with pytest.raises(AttachmentTooLarge, match="declared"):
        store.fetch(OWNER, "x" * 22)


def test_a_link_is_short_lived_and_saves_the_file_under_its_name(store: AttachmentStore) -> None:
    link = store.link(OWNER, "x" * 22, "chat café.png", "image/png")
    assert "X-Amz-Expires=300" in link
    assert "response-content-disposition=attachment" in link


def test_kept_files_are_tagged_and_deleted_files_are_gone(store: AttachmentStore, aws: Any) -> None:
    data = image()
    put(store, OWNER, "x" * 22, data, "image/png", len(data))
    store.keep(OWNER, ["x" * 22])
    tags = store._s3.get_object_tagging(Bucket=BUCKET, Key=attachments.object_key(OWNER, "x" * 22))
    assert tags["TagSet"] == [{"Key": "state", "Value": "kept"}]
    store.delete(aws, OWNER, ["x" * 22])
    with pytest.raises(AttachmentNotFound):
        store.fetch(OWNER, "x" * 22)


def test_a_file_belongs_to_the_conversation_of_the_first_turn_that_claims_it(
    store: AttachmentStore, aws: Any
) -> None:
    """The claim is one action of the admission's transaction: another conversation's turn naming the
    file is refused and writes nothing (no budget, no window)."""
    limiter = RateLimiter(aws, os.environ["TABLE_NAME"], 100, 3600)
    admission = Admission(aws, os.environ["TABLE_NAME"], limiter, global_limits=Limits(), shards=1, pool=None)  # type: ignore[arg-type]
    first = store.claim(OWNER, "x" * 22, "trip")
    admission.admit("k", attachments_charge(), Limits(), checks=[first])
    admission.admit("k", attachments_charge(), Limits(), checks=[store.claim(OWNER, "x" * 22, "trip")])
    hits = limiter.peek("k").remaining
    with pytest.raises(Conflict) as refused:
        admission.admit("k", attachments_charge(), Limits(), checks=[store.claim(OWNER, "x" * 22, "other")])
    assert refused.value.check.name == attachments.CLAIM_CHECK
    assert limiter.peek("k").remaining == hits  # the refused turn drew nothing
    key = attachments.claim_key(OWNER, "x" * 22)
    item = aws.get_item(TableName=os.environ["TABLE_NAME"], Key=key)["Item"]
    assert item["cid"] == {"S": "trip"}
    # Another owner's file of the same id is another file.
    admission.admit("k", attachments_charge(), Limits(), checks=[store.claim("owner-b", "x" * 22, "other")])


def attachments_charge() -> Any:
    from claude_chat.admission import Charge

    return Charge(100, 0)


def test_kept_files_must_outlive_the_turns_that_name_them() -> None:
    from claude_chat.settings import Settings

    assert Settings(attachments_bucket="b").attachment_retention_days == 9  # 7 days of sessions, and 2
    with pytest.raises(ValueError, match="ATTACHMENT_RETENTION_DAYS"):
        Settings(attachments_bucket="b", session_max_age_seconds=8 * 86_400)


def test_history_files_past_the_request_size_are_named_not_sent() -> None:
    """The newest turns' files first while they fit the provider's request; older ones become a line
    of text (no read, no tokens)."""
    from types import SimpleNamespace

    from claude_chat.turn_files import TurnFiles

    old = inspect("o" * 22, "old.pdf", "application/pdf", pdf(1), HAIKU)
    session: Any = SimpleNamespace(
        token=SimpleNamespace(session_id=OWNER),
        slot=SimpleNamespace(history=(Turn("a", "b", (old,)),), conversation="c"),
    )
    files = TurnFiles(provider="bedrock", _room=10)
    files.prefetch(session)
    block, low = files.blocks[old.id]
    assert block["type"] == "text" and "too large to send again" in block["text"] and low == 0
    assert old.id not in files.tokens
    assert files.noted  # what Claude bills for this prompt bounds no later one that may send it whole
    assert files.claims(session) == ()  # no new file, nothing to claim


def test_an_object_of_another_type_is_415(store: AttachmentStore) -> None:
    put(store, OWNER, "t" * 22, b"plain text", "text/plain", 100)
    with pytest.raises(UnsupportedAttachment):
        store.fetch(OWNER, "t" * 22)


@functools.cache
def xform_bomb(forms: int, repeats: int) -> bytes:
    """One page whose content draws `forms` form XObjects, each a small deflated stream of many text
    operators: pypdf parses every form afresh (up to its per-stream token budget) within one page's
    extract_text, so a page costs `forms` times the budget."""
    body = zlib.compress(b"BT /F1 12 Tf 10 10 Td (AAAAAAAAAA) Tj ET\n" * repeats, 9)
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    content = b"".join(b"/X%d Do\n" % i for i in range(forms))
    objects[4] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)
    names = b" ".join(b"/X%d %d 0 R" % (i, 6 + i) for i in range(forms))
    objects[5] = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 3 0 R >> /XObject << %s >> >> >>" % names
    )
    for i in range(forms):
        objects[6 + i] = (
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(body), body)
        )
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number in sorted(objects):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, objects[number]))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def test_a_page_of_many_costly_forms_is_stopped_at_the_time_limit_not_after_the_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 100 KB page of 12 forms took about 8 s of CPU, 100 forms far past Lambda's timeout: the time
    # limit was looked at only between pages. With no time left, the check stops at the first form.
    monkeypatch.setattr(attachments, "_PDF_SECONDS", 0.0)
    data = xform_bomb(forms=12, repeats=40_000)
    started = time.monotonic()
    with pytest.raises(AttachmentTooLarge, match="too long"):
        attachments.inspect("a" * 22, "f.pdf", "application/pdf", data, "claude-haiku-4-5")
    assert time.monotonic() - started < 2.0


def test_a_history_file_counted_for_a_smaller_tier_model_is_not_under_counted_on_a_larger_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Uploaded and sent on a model that resizes to 1568 px (about 1,600 tokens); the conversation then
    # switches to a newer model, which takes the same image (and each PDF page) at up to 4,784 tokens.
    from types import SimpleNamespace

    from claude_chat import turn_files

    newer = "claude-opus-4-7"
    picture = inspect("p" * 22, "big.png", "image/png", image("PNG", (2576, 2576)), HAIKU)
    document = inspect("d" * 22, "doc.pdf", "application/pdf", pdf(3), HAIKU)
    monkeypatch.setattr(turn_files, "_read", lambda owner, attachment: b"bytes")
    history = [SimpleNamespace(attachments=(picture, document))]
    session = SimpleNamespace(token=SimpleNamespace(session_id="s"), slot=SimpleNamespace(history=history))
    files = turn_files.TurnFiles.resolve(Caller("203.0.113.9", None), (), newer, "anthropic")
    files.prefetch(session)  # type: ignore[arg-type]
    blocks = [block for block, _ in files.blocks.values()]
    bound = files.bound({"messages": [{"role": "user", "content": blocks}]})
    on_newer = [
        inspect(a.id, a.name, a.type, d, newer).tokens
        for a, d in ((picture, image("PNG", (2576, 2576))), (document, pdf(3)))
    ]
    assert bound >= sum(on_newer), (bound, on_newer)


def test_pdfs_are_read_one_at_a_time_and_one_that_waits_past_the_time_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A turn's files are checked side by side; five small PDFs whose pages each parse into about
    # 300 MB (pypdf's per-stream budget) peaked at 1.4 GB together, past the function's 1,024 MB.
    import threading
    from concurrent.futures import ThreadPoolExecutor

    real = attachments._page_texts
    inside, most = [0], [0]
    lock = threading.Lock()

    def counted(reader: Any, started: float) -> list[int]:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            time.sleep(0.1)  # long enough for the other threads to be inside too, were nothing to stop them
            return real(reader, started)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(attachments, "_page_texts", counted)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: inspect("a" * 22, "f.pdf", "application/pdf", pdf(1), HAIKU), range(4)))
    assert most[0] == 1
    monkeypatch.setattr(attachments, "_PDF_SECONDS", 0.1)
    monkeypatch.setattr(attachments, "_page_texts", lambda reader, started: time.sleep(0.3) or [0])
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(
            pool.submit(inspect, "a" * 22, "f.pdf", "application/pdf", pdf(1), HAIKU) for _ in range(2)
        )
        refused = [o.exception() for o in outcomes if o.exception() is not None]
    assert len(refused) == 1 and isinstance(refused[0], AttachmentTooLarge)
    assert refused[0].message == "This PDF takes too long to read."


def test_a_pdf_of_countless_objects_and_no_xref_is_refused_before_pypdf_rebuilds_its_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A broken xref sends pypdf (not strict) to rebuild the table by reading every object: a 31 MB file
    # of 1.5 million tiny objects took 15 s of CPU in PdfReader's constructor, which no deadline reaches.
    monkeypatch.setattr(attachments, "_PDF_SECONDS", 1.0)
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
    out.write(b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n")
    out.write(b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nendobj\n")
    out.writelines(b"%d 0 obj\n[1 2 3]\nendobj\n" % number for number in range(4, 400_000))
    out.write(b"trailer\n<< /Size 400000 /Root 1 0 R >>\nstartxref\n999999999\n%%EOF\n")
    started = time.monotonic()
    with pytest.raises(AttachmentTooLarge):
        attachments.inspect("a" * 22, "f.pdf", "application/pdf", out.getvalue(), HAIKU)
    assert time.monotonic() - started < 1.5
