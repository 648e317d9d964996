"""The byte checks of claude_chat.attachments at their edges, and its store's requests (moto S3 and DynamoDB).

Every refusal is the contract's (/work/shared/API.md, "Attachments"): 415 `unsupported_attachment`
for a file that is not what it claims, 413 `attachment_too_large` past a limit, 404 `not_found`
for a file that is not the caller's; its message is what the caller reads. The limits are tested
on both sides: the largest file, image and PDF accepted, and the smallest refused.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import io
import json
import math
import os
import struct
import time
import urllib.parse
import zlib
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, StreamObject

from claude_chat import attachments
from claude_chat.attachments import (
    Attachment,
    AttachmentStore,
    Fetched,
    block_bytes,
    content_block,
    image_tokens,
    inspect,
)
from claude_chat.errors import ApiError
from tests.conftest import S3_SECRET_ACCESS_KEY

HAIKU = "claude-haiku-4-5"  # resizes to 1568 px, about 1,600 tokens
NEWER = "claude-opus-4-7"  # 2576 px, 4,784 tokens, counted in 28-pixel patches
ID = "a" * 22
BUCKET = "attachment-checks"
OWNER = "owner-a"
MiB = 1024 * 1024
PDF = "application/pdf"


def refusal(data: bytes, content_type: str, model: str = HAIKU, name: str = "f") -> tuple[int, str, str]:
    """The status, code and message a file is refused with."""
    with pytest.raises(ApiError) as refused:
        inspect(ID, name, content_type, data, model)
    return (refused.value.status, refused.value.code, refused.value.message)


def unsupported(message: str) -> tuple[int, str, str]:
    return (415, "unsupported_attachment", message)


def too_large(message: str) -> tuple[int, str, str]:
    return (413, "attachment_too_large", message)


def image(kind: str = "PNG", size: tuple[int, int] = (8, 6), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, format=kind)
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_of_header(width: int, height: int) -> bytes:
    """A PNG of a signature, an IHDR of these dimensions and IEND: all the checks and imagesize read."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


def png_of_size(total: int) -> bytes:
    """A real PNG grown to `total` bytes by a private ancillary chunk after its IHDR (readers skip it)."""
    small = image("PNG")
    padding = total - len(small) - 12
    return small[:33] + png_chunk(b"prVt", b"\0" * padding) + small[33:]


def pdf(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def text_pdf(text: str) -> bytes:
    """One page drawing `text`: five operators (BT, Tf, Td, Tj, ET)."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=612, height=792)
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    fonts = DictionaryObject({NameObject("/F1"): font})
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@functools.cache  # built once per process: make mutation forks every mutant's run from one that has it
def inflating_pdf(inflated: int) -> bytes:
    """One page whose content stream is deflated zeros that inflate to `inflated` bytes."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=612, height=792)
    stream = StreamObject()
    stream._data = zlib.compress(b"\0" * inflated, 9)
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# -- what each refusal says -------------------------------------------------------------------------


def test_an_empty_file_is_415_and_says_it_is_empty() -> None:
    assert refusal(b"", "image/png") == unsupported("This file is empty.")


@pytest.mark.parametrize(
    ("content_type", "kind", "limit"),
    [
        ("image/png", "PNG", 5),
        ("image/jpeg", "JPEG", 5),
        ("image/gif", "GIF", 5),
        ("image/webp", "WEBP", 5),
        (PDF, "PDF", 32),
    ],
)
def test_a_file_a_byte_past_its_types_limit_is_413_and_names_the_limit(
    content_type: str, kind: str, limit: int
) -> None:
    data = b"\0" * (limit * MiB + 1)
    assert refusal(data, content_type) == too_large(f"{kind} files may be at most {limit} MB.")


def test_a_file_of_exactly_its_types_limit_is_read() -> None:
    data = png_of_size(5 * MiB)
    checked = inspect(ID, "big.png", "image/png", data, HAIKU)
    assert checked.size == 5 * MiB


def test_a_file_that_is_not_what_its_type_says_is_415_naming_what_it_is_not() -> None:
    not_png = "This file is not a PNG image, whatever its name or type says."
    assert refusal(pdf(), "image/png") == unsupported(not_png)
    assert refusal(image("PNG"), PDF) == unsupported(
        "This file is not a PDF, whatever its name or type says."
    )
    # A RIFF file of another kind (a WAVE sound) is not a WebP: both the RIFF and the WEBP tags count.
    wave = b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + b"\0" * 28
    assert refusal(wave, "image/webp") == unsupported(
        "This file is not a WEBP image, whatever its name or type says."
    )


# -- the ends of an image's structure ---------------------------------------------------------------


def test_a_png_whose_header_chunk_is_cut_wrong_or_unchecked_is_415() -> None:
    unreadable = unsupported("This file is not a readable PNG image.")
    whole = png_of_header(64, 48)
    assert inspect(ID, "f", "image/png", whole, HAIKU).size == len(whole)
    assert refusal(whole[:12], "image/png") == unreadable  # the signature and 4 bytes
    assert refusal(whole[:40], "image/png") == unreadable  # no IEND
    # The IHDR's length is part of the header: 14 is not an IHDR, though its type and checksum are.
    fourteen = whole[:8] + struct.pack(">I", 14) + whole[12:]
    assert refusal(fourteen, "image/png") == unreadable
    checksum_off = whole[:29] + bytes([whole[29] ^ 1]) + whole[30:]
    assert refusal(checksum_off, "image/png") == unreadable


def test_a_jpeg_may_carry_up_to_1022_bytes_after_its_end_of_image_marker() -> None:
    small = image("JPEG")  # shorter than the 1024 bytes looked at
    assert len(small) < 1024
    assert inspect(ID, "f", "image/jpeg", small, HAIKU).size == len(small)
    assert inspect(ID, "f", "image/jpeg", small + b"\0" * 1022, HAIKU).size == len(small) + 1022
    unreadable = unsupported("This file is not a readable JPEG image.")
    assert refusal(small + b"\0" * 1023, "image/jpeg") == unreadable


def test_a_jpeg_whose_header_does_not_parse_is_415() -> None:
    # A start and an end of image around a segment of length 1 (at least 2 counts its own length).
    broken = b"\xff\xd8\xff\xe0\x00\x01" + b"\xff\xd9"
    assert refusal(broken, "image/jpeg") == unsupported("This file is not a readable JPEG image.")


def test_a_gif_may_be_padded_with_zero_bytes_after_its_trailer_and_with_nothing_else() -> None:
    gif = image("GIF")
    assert inspect(ID, "f", "image/gif", gif + b"\0" * 5, HAIKU).size == len(gif) + 5
    unreadable = unsupported("This file is not a readable GIF image.")
    assert refusal(gif + b" \n", "image/gif") == unreadable
    assert refusal(gif + b"XX", "image/gif") == unreadable
    assert refusal(gif[:-1], "image/gif") == unreadable


def test_a_webp_may_carry_one_pad_byte_after_its_riff_length_and_no_more() -> None:
    webp = image("WEBP")
    assert inspect(ID, "f", "image/webp", webp + b"\0", HAIKU).size == len(webp) + 1
    unreadable = unsupported("This file is not a readable WEBP image.")
    assert refusal(webp + b"\0\0", "image/webp") == unreadable
    assert refusal(webp[:-1], "image/webp") == unreadable


# -- an image's dimensions --------------------------------------------------------------------------


def test_images_from_one_pixel_to_8000_a_side_are_read_and_8001_is_413() -> None:
    for size in ((1, 1), (8000, 1), (1, 8000)):
        assert inspect(ID, "f", "image/png", image("PNG", size, mode="1"), HAIKU).tokens > 16
    too_many = too_large("Images may be at most 8000 x 8000 pixels.")
    assert refusal(image("PNG", (8001, 1), mode="1"), "image/png") == too_many
    assert refusal(image("PNG", (1, 8001), mode="1"), "image/png") == too_many


def test_an_image_with_no_width_or_no_height_is_415() -> None:
    unreadable = unsupported("This file is not a readable PNG image.")
    assert refusal(png_of_header(0, 5), "image/png") == unreadable
    assert refusal(png_of_header(5, 0), "image/png") == unreadable


# -- a PDF's checks ---------------------------------------------------------------------------------


def test_each_pdf_refusal_says_why() -> None:
    assert refusal(b"%PDF-1.7\n" + b"garbage" * 100, PDF) == unsupported("This file is not a readable PDF.")
    assert refusal(pdf(0), PDF) == unsupported("This PDF has no pages.")
    assert refusal(pdf(101), PDF) == too_large("PDFs may have at most 100 pages.")
    writer = PdfWriter()
    writer.add_blank_page(width=100, height=100)
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    encrypted = unsupported("Encrypted or password-protected PDFs are not supported.")
    assert refusal(out.getvalue(), PDF) == encrypted


def test_a_pdf_of_100_pages_is_read_and_counted() -> None:
    checked = inspect(ID, "f.pdf", PDF, pdf(100), HAIKU)
    assert checked.tokens == 100 * (1600 + 3000) + 16
    assert checked.low == 100 * 1500


def test_a_stream_that_inflates_past_64_mb_is_413_though_pypdf_alone_takes_75() -> None:
    # pypdf's own limit is 75,000,000 bytes; this module sets 64 MiB (67,108,864).
    inflates = too_large("This PDF inflates past what is accepted.")
    assert refusal(inflating_pdf(70_000_000), PDF) == inflates


def test_a_pdf_whose_xref_offset_is_off_is_read_as_pdf_readers_do() -> None:
    good = pdf(1)
    start = good.rindex(b"startxref\n") + len(b"startxref\n")
    off = good[:start] + b"123" + good[good.index(b"\n", start) :]
    assert off != good
    assert inspect(ID, "f.pdf", PDF, off, HAIKU).tokens == 1600 + 3000 + 16


def test_a_pdf_past_the_object_limit_is_refused_and_one_at_it_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = pdf(1)
    objects = data.count(b"obj") // 2  # each object's `obj` and `endobj`
    monkeypatch.setattr(attachments, "_PDF_MAX_OBJECTS", objects)
    assert inspect(ID, "f.pdf", PDF, data, HAIKU).tokens == 1600 + 3000 + 16
    monkeypatch.setattr(attachments, "_PDF_MAX_OBJECTS", objects - 1)
    assert refusal(data, PDF) == too_large("This PDF holds more objects than accepted.")


class TickingClock:
    """A monotonic clock that moves on a second each time it is read: time passes as the reading does."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1
        return self.now

    def time(self) -> float:
        return time.time()


def test_the_time_limit_is_looked_at_between_the_operators_of_a_page(monkeypatch: pytest.MonkeyPatch) -> None:
    # Started at 1, the limit at 3: the page's contents are inflated by 2, its first operator is
    # drawn at 3 and the second past the limit, before the page's text is whole.
    monkeypatch.setattr(attachments, "time", TickingClock())
    monkeypatch.setattr(attachments, "_PDF_SECONDS", 2)
    assert refusal(text_pdf("one two three"), PDF) == too_large("This PDF takes too long to read.")


def test_a_pdf_read_by_its_deadline_is_in_time_and_one_a_tick_later_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = text_pdf("one two three")
    clock = TickingClock()
    monkeypatch.setattr(attachments, "time", clock)
    inspect(ID, "f.pdf", PDF, data, HAIKU)
    ticks = clock.now  # the clock's last reading, the first being 1
    clock.now = 0
    monkeypatch.setattr(attachments, "_PDF_SECONDS", ticks - 1)  # the limit is that last reading
    assert inspect(ID, "f.pdf", PDF, data, HAIKU).tokens >= 1600 + 3000 + 16
    clock.now = 0
    monkeypatch.setattr(attachments, "_PDF_SECONDS", ticks - 2)
    assert refusal(data, PDF) == too_large("This PDF takes too long to read.")


# -- what Claude bills ------------------------------------------------------------------------------


def test_a_long_thin_image_is_counted_as_claude_resizes_it() -> None:
    # 3000 x 200 resized to a 1568-pixel long edge: 1568 x 105 (104.5 rounded), 219.5 tokens, so 220.
    assert image_tokens(3000, 200, 1568, 1600) == 220
    assert image_tokens(200, 3000, 1568, 1600) == 220
    # An edge resized below a pixel stays one pixel: 1568 x 1, 2.1 tokens, so 3.
    assert image_tokens(8000, 1, 1568, 1600) == 3
    assert image_tokens(1, 8000, 1568, 1600) == 3
    assert image_tokens(8000, 1, 2576, 4784) == 92  # 2576 / 28 patches by one


def test_an_image_counted_in_patches_counts_as_its_pixels_on_an_older_model() -> None:
    data = image("PNG", (1120, 980))  # 40 x 35 patches of 28 x 28 pixels
    newer = inspect(ID, "f.png", "image/png", data, NEWER)
    older = inspect(ID, "f.png", "image/png", data, HAIKU)
    assert newer.tokens == 40 * 35 + 16
    assert older.tokens == math.ceil(1120 * 980 / 750) + 16
    assert newer.tokens_on(HAIKU) == older.tokens
    assert older.tokens_on(NEWER) == 4784 + 16  # the tier it was counted on is not kept: the most


def test_a_pdf_counted_on_one_tier_is_counted_exactly_on_the_other() -> None:
    data = pdf(3)
    older = inspect(ID, "f.pdf", PDF, data, HAIKU)
    newer = inspect(ID, "f.pdf", PDF, data, NEWER)
    on_newer = older.tokens_on(NEWER)
    assert on_newer == newer.tokens and isinstance(on_newer, int)
    assert newer.tokens_on(HAIKU) == newer.tokens  # the tier it was counted on is not kept: the larger


# -- how a checked file is kept and sent ------------------------------------------------------------


def test_a_checked_file_keeps_the_digest_of_its_bytes_and_holds_only_those() -> None:
    data = image("PNG")
    checked = inspect(ID, "f.png", "image/png", data, HAIKU)
    assert checked.digest == hashlib.sha256(data).hexdigest()
    assert checked.holds(data)
    assert not checked.holds(data + b"\0")  # another length
    assert not checked.holds(data[:-1] + bytes([data[-1] ^ 1]))  # the same length, other bytes
    kept_before_digests = Attachment(ID, "f.png", "image/png", len(data), 100, 50)
    assert kept_before_digests.holds(bytes(len(data)))  # only its length to go by
    assert not kept_before_digests.holds(b"")


def test_turns_keep_their_files_compactly_with_names_as_written() -> None:
    checked = Attachment(ID, "café.png", "image/png", 10, 100, 50, "d")
    kept = attachments.dump([checked])
    assert "café" in kept  # not \u00e9: an item's size counts
    assert ", " not in kept and ": " not in kept
    assert attachments.load(kept) == (checked,)
    assert attachments.load(None) == attachments.load("") == ()


@pytest.mark.parametrize("size", [1, 2, 3, 4, 3000, 3001])
@pytest.mark.parametrize(
    ("content_type", "name"),
    [("image/png", "a.png"), (PDF, "report.pdf"), (PDF, ""), (PDF, "é" * 200 + "\U0001f600" * 55)],
)
def test_a_files_share_of_the_request_is_its_blocks_json_whoever_writes_it(
    size: int, content_type: str, name: str
) -> None:
    # A document's title is its name: up to 255 characters, 6 bytes each ASCII-escaped (12 a pair).
    attachment = Attachment(ID, name, content_type, size, 100, 50)
    block = content_block(attachment, b"\xff" * size)
    assert block_bytes(attachment) == len(json.dumps(block))
    assert block_bytes(attachment) >= len(
        json.dumps(block, separators=(",", ":"), ensure_ascii=False).encode()
    )


def test_a_block_is_filled_with_its_bytes_when_they_come_and_a_pdf_without_a_name_has_a_title() -> None:
    document = Attachment(ID, "", PDF, 3, 100, 50)
    block = content_block(document, None)
    assert block["source"] == {"type": "base64", "media_type": PDF, "data": ""}
    assert block["title"] == "document.pdf"
    attachments.fill(block, b"%PD")
    assert block["source"]["data"] == base64.b64encode(b"%PD").decode()
    assert content_block(document, b"%PD") == block


def test_an_owners_files_live_under_a_digest_of_the_owner_that_never_changes() -> None:
    # Keys of files already uploaded: the digest must stay what it was.
    assert attachments.object_key(OWNER, ID) == f"uploads/95256875151043abdcafdd26fd390c65/{ID}"


def test_a_name_is_kept_as_ascii_metadata_every_character_but_letters_digits_and_marks_encoded() -> None:
    assert attachments.encode_name("a/b c.é") == "a%2Fb%20c.%C3%A9"
    assert attachments.decode_name(attachments.encode_name("a/b c.é")) == "a/b c.é"


def test_a_file_of_another_conversation_is_refused_as_an_invalid_request() -> None:
    error = attachments.check_reused()
    assert (error.status, error.code) == (422, "invalid_request")
    assert error.message == (
        "An attachment belongs to the conversation of the first turn that used it; "
        "upload it again to use it here."
    )


# -- the store --------------------------------------------------------------------------------------


@pytest.fixture
def store(aws: Any, _s3_client: Any) -> AttachmentStore:
    _s3_client.create_bucket(Bucket=BUCKET)  # in this test's fresh mock
    return AttachmentStore(_s3_client, BUCKET, os.environ["TABLE_NAME"], 86_400)


def put(
    store: AttachmentStore, data: bytes, metadata: dict[str, str], content_type: str = "image/png"
) -> None:
    store._s3.put_object(
        Bucket=BUCKET,
        Key=attachments.object_key(OWNER, ID),
        Body=data,
        ContentType=content_type,
        Metadata=metadata,
    )


def test_an_upload_is_declared_bound_to_the_bucket_and_open_for_ten_minutes(store: AttachmentStore) -> None:
    before = datetime.datetime.now(tz=datetime.UTC).replace(microsecond=0)
    upload = store.presign_upload(OWNER, "a.pdf", PDF, 4321)
    assert upload.url == f"https://{BUCKET}.s3.amazonaws.com/"
    assert upload.fields["x-amz-meta-declared-size"] == "4321"
    policy = json.loads(base64.b64decode(upload.fields["policy"]))
    assert {"bucket": BUCKET} in policy["conditions"]
    assert {"x-amz-meta-declared-size": "4321"} in policy["conditions"]
    expires = datetime.datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.UTC
    )
    assert before + datetime.timedelta(seconds=600) <= expires <= before + datetime.timedelta(seconds=602)


def multipart(fields: dict[str, str], data: bytes) -> tuple[str, bytes]:
    """A browser's upload form: the presigned fields, then the file."""
    boundary = "form-boundary-7d1f"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return f"multipart/form-data; boundary={boundary}", b"".join(parts) + f"--{boundary}--\r\n".encode()


def test_the_presigned_form_passes_the_policy_checks_s3_makes_for_its_own_file_only(
    store: AttachmentStore,
) -> None:
    """Through the local store's policy checks (local/object_store.py: S3's, before moto stores a file):
    the form as presigned, with a file of 1 byte to the declared size, and nothing else."""
    from local.object_store import _PostPolicy

    upload = store.presign_upload(OWNER, "chat café.png", "image/png", 4)
    tags: list[tuple[str, ...]] = []

    def post(fields: dict[str, str], data: bytes) -> tuple[str, bool]:
        stored: list[bool] = []
        answer: dict[str, str] = {}

        def moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            stored.append(True)
            start_response("204 No Content", [])
            return [b""]

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            answer["status"] = status

        checks = _PostPolicy(moto, lambda: S3_SECRET_ACCESS_KEY, "us-east-1", lambda *tag: tags.append(tag))
        content_type, body = multipart(fields, data)
        environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": content_type, "PATH_INFO": f"/{BUCKET}"}
        b"".join(
            checks(
                {**environ, "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}, start_response
            )
        )
        return answer["status"], bool(stored)

    assert post(upload.fields, b"1234") == ("204 No Content", True)
    assert tags == [(BUCKET, upload.fields["key"], "state=pending")]
    assert post(upload.fields, b"12345") == ("400 Bad Request", False)  # past the declared size
    assert post(upload.fields, b"") == ("400 Bad Request", False)
    assert post({**upload.fields, "Content-Type": "image/gif"}, b"1234") == ("403 Forbidden", False)
    assert post({**upload.fields, "key": upload.fields["key"] + "x"}, b"1234") == ("403 Forbidden", False)


def test_a_file_of_exactly_its_types_limit_is_read_whole(store: AttachmentStore) -> None:
    data = b"\x89" * (5 * MiB)
    put(store, data, {"name": "big.png", "declared-size": str(len(data))})
    assert store.fetch(OWNER, ID) == Fetched("big.png", "image/png", 5 * MiB, data)


def test_a_file_past_its_types_limit_is_413_before_it_is_read(store: AttachmentStore) -> None:
    data = b"\x89" * (5 * MiB + 1)
    put(store, data, {"name": "big.png", "declared-size": str(10 * MiB)})
    with pytest.raises(ApiError) as refused:
        store.fetch(OWNER, ID)
    assert (refused.value.status, refused.value.message) == (413, "This file is larger than its type allows.")


@pytest.mark.parametrize("declared", [None, "x1", "0"])
def test_a_file_larger_than_declared_or_with_no_declared_size_is_413(
    store: AttachmentStore, declared: str | None
) -> None:
    put(store, b"\x89", {"name": "f.png"} | ({"declared-size": declared} if declared is not None else {}))
    with pytest.raises(ApiError) as refused:
        store.fetch(OWNER, ID)
    assert (refused.value.status, refused.value.code) == (413, "attachment_too_large")
    assert refused.value.message == "This file is larger than declared at its upload."


def test_a_file_without_a_name_is_read_with_none(store: AttachmentStore) -> None:
    put(store, b"\x89", {"declared-size": "1"})
    assert store.fetch(OWNER, ID) == Fetched("", "image/png", 1, b"\x89")
    assert store.exists(OWNER, ID) == Fetched("", "image/png", 1, b"")


def test_what_exists_says_of_a_file_is_its_name_type_and_length_without_its_bytes(
    store: AttachmentStore,
) -> None:
    put(store, b"\x89PNG", {"name": attachments.encode_name("chat café.png"), "declared-size": "4"})
    assert store.exists(OWNER, ID) == Fetched("chat café.png", "image/png", 4, b"")
    assert store.exists(OWNER, "b" * 22) is None


class HeadRefused:
    """An S3 client whose HEAD fails with `code`, as S3 and S3-compatible stores say it."""

    exceptions = SimpleNamespace(ClientError=ClientError)

    def __init__(self, code: str) -> None:
        self.code = code

    def head_object(self, **_: Any) -> Any:
        raise ClientError({"Error": {"Code": self.code, "Message": "refused"}}, "HeadObject")


@pytest.mark.parametrize("code", ["404", "NoSuchKey", "NotFound"])
def test_each_way_a_store_says_no_such_object_is_none(code: str) -> None:
    assert AttachmentStore(HeadRefused(code), BUCKET, "t", 1).exists(OWNER, ID) is None


def test_any_other_head_failure_is_raised() -> None:
    with pytest.raises(ClientError):
        AttachmentStore(HeadRefused("403"), BUCKET, "t", 1).exists(OWNER, ID)


def test_a_download_link_names_the_object_and_saves_the_file_under_a_safe_name(
    store: AttachmentStore,
) -> None:
    def disposition(name: str) -> str:
        link = urllib.parse.urlsplit(store.link(OWNER, ID, name, PDF))
        assert link.path == "/" + attachments.object_key(OWNER, ID)
        query = urllib.parse.parse_qs(link.query)
        assert query["response-content-type"] == [PDF]
        return query["response-content-disposition"][0]

    assert disposition("Chat café/ report.pdf") == (
        "attachment; filename=\"Chat_caf_report.pdf\"; filename*=UTF-8''Chat%20caf%C3%A9%2F%20report.pdf"
    )
    assert disposition("").startswith('attachment; filename="attachment";')
    assert disposition("a" * 150).startswith(f'attachment; filename="{"a" * 100}";')


def test_a_file_a_turns_body_carried_is_stored_as_its_upload_would_be_and_kept(
    store: AttachmentStore,
) -> None:
    data = image("PNG")
    checked = inspect(ID, "chat café.png", "image/png", data, HAIKU)
    store.put(OWNER, checked, data)
    assert store.fetch(OWNER, ID) == Fetched("chat café.png", "image/png", len(data), data)
    tags = store._s3.get_object_tagging(Bucket=BUCKET, Key=attachments.object_key(OWNER, ID))
    assert tags["TagSet"] == [{"Key": "state", "Value": "kept"}]


def test_a_claim_expires_the_retention_after_its_turn(store: AttachmentStore) -> None:
    values = store.claim(OWNER, ID, "c", now=1_000.7).item["Update"]["ExpressionAttributeValues"]
    assert values == {":cid": {"S": "c"}, ":exp": {"N": str(1_000 + 86_400)}}
    before = int(time.time())
    values = store.claim(OWNER, ID, "c").item["Update"]["ExpressionAttributeValues"]
    assert before + 86_400 <= int(values[":exp"]["N"]) <= int(time.time()) + 86_400


def test_deleting_files_deletes_their_objects_and_their_claims_only(store: AttachmentStore, aws: Any) -> None:
    table = os.environ["TABLE_NAME"]
    ids = ["x" * 22, "y" * 22]
    for attachment_id in ids:
        store._s3.put_object(Bucket=BUCKET, Key=attachments.object_key(OWNER, attachment_id), Body=b"1")
        aws.put_item(TableName=table, Item={**attachments.claim_key(OWNER, attachment_id), "cid": {"S": "c"}})
    aws.put_item(TableName=table, Item={**attachments.claim_key("owner-b", ids[0]), "cid": {"S": "c"}})
    store.delete(aws, OWNER, ids)
    for attachment_id in ids:
        assert "Item" not in aws.get_item(TableName=table, Key=attachments.claim_key(OWNER, attachment_id))
        assert store.exists(OWNER, attachment_id) is None
    assert "Item" in aws.get_item(TableName=table, Key=attachments.claim_key("owner-b", ids[0]))


class Recorder:
    """A client that records each call it is asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda **arguments: self.calls.append((name, arguments))


def test_files_are_deleted_in_the_largest_batches_s3_and_dynamodb_take() -> None:
    # DeleteObjects takes 1,000 keys, BatchWriteItem 25 requests; each id once.
    s3, dynamodb = Recorder(), Recorder()
    ids = [f"{n:022d}" for n in range(1001)]
    AttachmentStore(s3, BUCKET, "table", 1).delete(dynamodb, OWNER, [*ids, ids[0]])
    assert s3.calls == [
        (
            "delete_objects",
            {
                "Bucket": BUCKET,
                "Delete": {
                    "Objects": [{"Key": attachments.object_key(OWNER, i)} for i in chunk],
                    "Quiet": True,
                },
            },
        )
        for chunk in (ids[:1000], ids[1000:])
    ]
    batches = [call["RequestItems"]["table"] for name, call in dynamodb.calls if name == "batch_write_item"]
    assert len(batches) == len(dynamodb.calls) == 41
    assert [len(batch) for batch in batches] == [25] * 40 + [1]
    deleted = [request["DeleteRequest"]["Key"] for batch in batches for request in batch]
    assert deleted == [attachments.claim_key(OWNER, i) for i in ids]
