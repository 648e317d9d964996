"""Attachments: files a caller uploads straight to the object store, checked by their bytes, sent to Claude.

Uploads never pass through Lambda (a function URL carries at most 6 MB): `POST
/api/attachments` answers a presigned POST to the bucket, bound to one key, the
declared type and at most the declared size. A turn names its files by id;
before Claude sees one, this module reads it back and checks it:

- it is the caller's: its key is `uploads/<owner digest>/<id>` (the digest of
  the session, or signed-in user, that uploaded it), so another caller's id
  names a key that does not exist for you, exactly like an id that never did
  (404 `not_found`);
- it was uploaded, within its declared size and its type's limit (413
  `attachment_too_large`), and is not empty;
- it is what it claims by its bytes (415 `unsupported_attachment`): the
  type's magic number and the ends of its structure, then imagesize reads an
  image's dimensions from its header (pixels are never decoded, so a
  decompression bomb costs nothing; past Claude's 8000 x 8000 is 413), or pypdf
  parses a PDF (not encrypted, 1 to 100 pages; decompression limits lowered).
  (Pillow would verify images further, but adds 21 MB to the layer: imagesize
  is 130 KB.)

Ownership and reuse: a file belongs to the conversation of the first turn
that uses it. The turn's admission transaction (claude_chat.admission) claims
it, `pk = S#<owner>#~files, sk = A#<id>` holding the conversation's id, with
the same all-or-nothing write as the budgets: a turn of another conversation
naming it is refused (422 `invalid_request`) and writes nothing. (Deleting a
conversation deletes its files, so a file cannot be shared by two.) A
stateless turn checks and sends files but claims none.

Lifecycle: an upload carries the tag `state=pending`; a bucket lifecycle rule
deletes pending objects a day after their upload. A turn that is saved with a
file tags it `state=kept`; kept files are deleted with their conversation
(reset or delete, claude_chat.conversation_store), and a second rule deletes
them after ATTACHMENT_RETENTION_DAYS, by when the turn items that name them
have expired (session max age plus a day's grace).

What Claude bills (`inspect`): an image by its pixels after Claude's own
resizing (https://platform.claude.com/docs/en/build-with-claude/vision: tokens =
width x height / 750, long edge at most 1568 px and about 1,600 tokens; models
of the newer tier take up to 2576 px and 4,784 tokens, ceil(w/28) x ceil(h/28));
a PDF by its pages (build-with-claude/pdf-support: each page is sent as text and
as an image, typically 1,500 to 3,000 tokens): per page the image's tier
maximum plus the larger of 3,000 and the page's extracted text in UTF-8 bytes
(a token covers at least a byte). `low` is the estimate prompt caching places
its breakpoints by (never above what Claude counts).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re
import secrets
import threading
import time
import urllib.parse
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from claude_chat.admission import Check
from claude_chat.errors import ApiError, InvalidRequest, NotFound

KiB, MiB = 1024, 1024 * 1024
IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
PDF_TYPE = "application/pdf"
MAX_BYTES = {**dict.fromkeys(IMAGE_TYPES, 5 * MiB), PDF_TYPE: 32 * MiB}
PDF_MAX_PAGES = 100
IMAGE_MAX_EDGE = 8000  # Claude refuses larger images
ID_PATTERN = r"^[A-Za-z0-9_-]{22}$"
NAME_MAX_CHARS = 255
UPLOAD_SECONDS = 600  # how long a presigned upload may start
LINK_SECONDS = 300  # how long a download link works
PENDING, KEPT = "pending", "kept"
# Provider request limits (the whole JSON body): Anthropic's standard endpoints 32 MB
# (https://docs.claude.com/en/api/overview, "Request size limits"); Bedrock's InvokeModel 20 MB
# (Bedrock user guide, "Anthropic Claude Messages API", Request and Response).
REQUEST_MAX_BYTES = {"anthropic": 32 * MiB, "bedrock": 20 * MiB}
_FRAMING_TOKENS = 16  # an image or document block's own tokens, at most
_PDF_TEXT_TOKENS_PER_PAGE = 3000  # the documented upper end of a page's text tokens
_PDF_LOW_TOKENS_PER_PAGE = 1500  # the documented lower end of a page (caching's low estimate)
# Models that resize to 1568 px and about 1,600 tokens (w*h/750); the newer tier's (and any model
# neither list knows) are counted at the larger tier, so an image is never under-counted.
_HIGH_TIER = re.compile(r"claude-(opus-4-[7-9]|opus-[5-9]|sonnet-[5-9]|haiku-[5-9]|fable|mythos)")
_STANDARD_TIER = re.compile(r"claude-(3|opus-4|sonnet-4|haiku-4)")
_STANDARD = (1568, 1600)  # long edge, most tokens
_HIGH = (2576, 4784)
_MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    PDF_TYPE: (b"%PDF-",),
}


class UnsupportedAttachment(ApiError):
    status, code, message = 415, "unsupported_attachment", "This file is not a supported image or PDF."


class AttachmentTooLarge(ApiError):
    status, code, message = 413, "attachment_too_large", "This file is too large."


class AttachmentNotFound(NotFound):
    """Also what another caller's attachment answers: nothing tells the two apart."""

    message = "No such attachment."


@dataclass(frozen=True, slots=True)
class Attachment:
    """A checked file as turns keep it: its reference, and what Claude bills for it (`tokens`, an upper
    bound; `low`, an estimate never above it)."""

    id: str
    name: str
    type: str
    size: int
    tokens: int
    low: int
    # SHA-256 of the bytes checked: a presigned POST may be sent again until it expires, so the file
    # read back for a later turn's history must be these bytes ("" for files kept before it was).
    digest: str = ""

    def tokens_on(self, model: str) -> int:
        """What Claude may bill for this file on `model`: `tokens` was counted on the model of the turn
        that first sent it, and a conversation may change models (an image's and each PDF page's
        image count up to 4,784 tokens on the newer tier, about 1,600 on the other)."""
        most = _tier(model)[1]
        if most > _STANDARD[1]:  # counted on either tier: the larger tier's bound
            if self.type == PDF_TYPE:
                return self.tokens + (self.low // _PDF_LOW_TOKENS_PER_PAGE) * (most - _STANDARD[1])
            return max(self.tokens, most + _FRAMING_TOKENS)
        if self.type == PDF_TYPE:
            return self.tokens
        # Counted in 28-pixel patches (at least w x h / 784), or already in pixels / 750.
        pixels = math.ceil(max(0, self.tokens - _FRAMING_TOKENS) * 784 / 750)
        return max(self.tokens, min(most, pixels) + _FRAMING_TOKENS)

    def ref(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "size": self.size}

    def stored(self) -> dict[str, Any]:
        return {**self.ref(), "tokens": self.tokens, "low": self.low, "sha": self.digest}

    def holds(self, data: bytes) -> bool:
        """Whether `data` are the bytes that were checked (a file replaced since is not)."""
        if len(data) != self.size:
            return False
        return not self.digest or hashlib.sha256(data).hexdigest() == self.digest

    @staticmethod
    def from_stored(data: dict[str, Any]) -> Attachment:
        return Attachment(
            str(data["id"]),
            str(data["name"]),
            str(data["type"]),
            int(data["size"]),
            int(data["tokens"]),
            int(data["low"]),
            str(data.get("sha", "")),
        )


@dataclass(frozen=True, slots=True)
class InlineFile:
    """A file a turn's body carried (an AI SDK `file` part's data URL), not yet in the bucket."""

    name: str
    type: str
    data: bytes


def dump(attachments: Sequence[Attachment]) -> str:
    return json.dumps([a.stored() for a in attachments], separators=(",", ":"), ensure_ascii=False)


def load(text: str | None) -> tuple[Attachment, ...]:
    return tuple(Attachment.from_stored(item) for item in json.loads(text)) if text else ()


def content_block(attachment: Attachment, data: bytes | None) -> dict[str, Any]:
    """Claude's block for a file: an image block, or a document block with citations on. Base64 on
    both providers (Bedrock takes no URL source). `data` None: filled in later (`fill`)."""
    source = {
        "type": "base64",
        "media_type": attachment.type,
        "data": base64.b64encode(data).decode() if data is not None else "",
    }
    if attachment.type == PDF_TYPE:
        # The title is the file's name, so Claude's citations name the document as the user knows it.
        title = attachment.name or "document.pdf"
        return {"type": "document", "source": source, "title": title, "citations": {"enabled": True}}
    return {"type": "image", "source": source}


def fill(block: dict[str, Any], data: bytes) -> None:
    block["source"]["data"] = base64.b64encode(data).decode()


def block_bytes(attachment: Attachment) -> int:
    """What a file adds to the request body: its base64 and the block's JSON around it, a document's
    title (the file's name) included, as json.dumps writes it (ASCII-escaped and spaced: never shorter
    than a compact or UTF-8 writing)."""
    return 4 * math.ceil(attachment.size / 3) + len(json.dumps(content_block(attachment, None)))


def owner_digest(owner: str) -> str:
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


def object_key(owner: str, attachment_id: str) -> str:
    return f"uploads/{owner_digest(owner)}/{attachment_id}"


def new_id() -> str:
    return secrets.token_urlsafe(16)  # 22 characters, 128 random bits


def encode_name(name: str) -> str:
    """A file name as object metadata (ASCII only): percent-encoded UTF-8."""
    return urllib.parse.quote(name, safe="")


def decode_name(value: str) -> str:
    return urllib.parse.unquote(value)


# -- what a file is, by its bytes ------------------------------------------------------------------


def inspect(attachment_id: str, name: str, declared_type: str, data: bytes, model: str) -> Attachment:
    """The checked file, or UnsupportedAttachment / AttachmentTooLarge. Never logs a byte or a name."""
    if declared_type not in MAX_BYTES:
        raise UnsupportedAttachment()
    if not data:
        raise UnsupportedAttachment("This file is empty.")
    if len(data) > MAX_BYTES[declared_type]:
        limit = _megabytes(declared_type)
        raise AttachmentTooLarge(f"{_kind(declared_type)} files may be at most {limit} MB.")
    if not _magic_matches(declared_type, data):
        kind = _article(declared_type)
        raise UnsupportedAttachment(f"This file is not {kind}, whatever its name or type says.")
    edge, most = _tier(model)
    if declared_type == PDF_TYPE:
        pages = _pdf_pages(data)
        tokens = sum(most + max(_PDF_TEXT_TOKENS_PER_PAGE, text) for text in pages) + _FRAMING_TOKENS
        low = _PDF_LOW_TOKENS_PER_PAGE * len(pages)
    else:
        width, height = _image_size(declared_type, data)
        tokens = image_tokens(width, height, edge, most) + _FRAMING_TOKENS
        low = image_tokens(width, height, *_STANDARD)
        low = min(low, tokens)
    digest = hashlib.sha256(data).hexdigest()
    return Attachment(attachment_id, name, declared_type, len(data), tokens, low, digest)


def image_tokens(width: int, height: int, max_edge: int, most: int) -> int:
    """Claude's tokens for an image after its own resizing: scaled to `max_edge` on the long edge
    (aspect kept), then counted as width x height / 750, at most `most` (it scales down further)."""
    scale = min(1.0, max_edge / max(width, height))
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    if most > _STANDARD[1]:  # the newer tier counts 28-pixel patches
        return min(most, math.ceil(w / 28) * math.ceil(h / 28))
    return min(most, math.ceil(w * h / 750))


def _tier(model: str) -> tuple[int, int]:
    if _HIGH_TIER.search(model) or not _STANDARD_TIER.search(model):
        return _HIGH
    return _STANDARD


def _magic_matches(declared_type: str, data: bytes) -> bool:
    if declared_type == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return any(data.startswith(magic) for magic in _MAGIC[declared_type])


def _image_size(declared_type: str, data: bytes) -> tuple[int, int]:
    """The image's dimensions from its header (imagesize: no pixel is decoded, so no decompression
    bomb can cost anything), after its structure's ends check out: a PNG's IHDR checksum and IEND, a
    JPEG's end-of-image marker, a GIF's trailer, a WebP's RIFF length (a cut or padded file is not
    what it claims)."""
    import imagesize

    if not _complete(declared_type, data):
        raise UnsupportedAttachment(f"This file is not a readable {_kind(declared_type)} image.")
    # (-1, -1) for a header it cannot read: imagesize.get turns any error into that.
    width, height = imagesize.get(io.BytesIO(data), exif_rotation=False)
    if width < 1 or height < 1:
        raise UnsupportedAttachment(f"This file is not a readable {_kind(declared_type)} image.")
    if width > IMAGE_MAX_EDGE or height > IMAGE_MAX_EDGE:
        raise AttachmentTooLarge(_TOO_MANY_PIXELS)
    return width, height


def _complete(declared_type: str, data: bytes) -> bool:
    if declared_type == "image/png":
        # The first chunk is IHDR (its length, 13, and type), its CRC over type and data; the last IEND.
        return (
            data[8:16] == b"\0\0\0\x0dIHDR"
            and data[29:33] == zlib.crc32(data[12:29]).to_bytes(4, "big")
            and data.endswith(_PNG_END)
        )
    if declared_type == "image/jpeg":
        return b"\xff\xd9" in data[-1024:]  # end of image (some cameras append a little after it)
    if declared_type == "image/gif":
        return data.rstrip(b"\0").endswith(b";")
    # webp: the RIFF length (the magic number made sure of its 12 bytes), a pad byte at most after it
    riff_length = int.from_bytes(data[4:8], "little")
    return riff_length + 8 in (len(data), len(data) - 1)


_PNG_END = b"IEND\xaeB`\x82"
_TOO_MANY_PIXELS = f"Images may be at most {IMAGE_MAX_EDGE} x {IMAGE_MAX_EDGE} pixels."


# pypdf's bomb protections, set deliberately for every PDF read here: a stream may inflate to at most
# 64 MB (a 32 MB PDF's pages need far less), declare no more, and decoding may do at most 200 MB of work.
_PDF_LIMITS = {
    "maximum_declared_stream_length": 64 * MiB,
    "array_based_stream_maximum_output_length": 64 * MiB,
    "lzw_maximum_output_length": 64 * MiB,
    "run_length_maximum_output_length": 64 * MiB,
    "zlib_maximum_output_length": 64 * MiB,
    "brotli_maximum_output_length": 64 * MiB,
    "jbig2_maximum_output_length": 64 * MiB,
    "image_maximum_buffer_size": 64 * MiB,
    "stream_decoding_work_maximum_length": 200 * MiB,
}


_PDF_SECONDS = 10.0  # a PDF whose pages take longer than this to read is refused, not waited for
# Objects written out in the file (those inside object streams are read only when used). A broken
# xref makes pypdf read every one to rebuild its table, in its constructor, where no deadline reaches:
# 1.5 million tiny objects (31 MB) took 15 s of CPU, 250,000 take under 3; a 100-page PDF needs far fewer.
_PDF_MAX_OBJECTS = 250_000


# A turn's files are checked side by side, but PDFs one at a time: parsing one content stream up to
# pypdf's budget (2,000,000 tokens) takes about 300 MB, five at once past the function's 1,024 MB.
_ONE_PDF_AT_A_TIME = threading.Lock()


class _Overtime(BaseException):
    """Raised from pypdf's operator visitor when the time is up: a BaseException, because pypdf
    swallows an Exception raised while it extracts a form XObject and carries on with the next."""


def _pdf_pages(data: bytes) -> list[int]:
    """Each page's extracted text in UTF-8 bytes; UnsupportedAttachment for a PDF that does not parse,
    is encrypted or has no page, AttachmentTooLarge past 100 pages or one that inflates past the limits."""
    import pypdf
    from pypdf.errors import LimitReachedError, PyPdfError

    started = time.monotonic()
    if data.count(b"obj") > 2 * _PDF_MAX_OBJECTS:  # each object's `obj` and `endobj`, counted in C
        raise AttachmentTooLarge("This PDF holds more objects than accepted.")
    if not _ONE_PDF_AT_A_TIME.acquire(timeout=_PDF_SECONDS):  # the wait counts against the time limit
        raise AttachmentTooLarge(_TOO_SLOW)
    try:
        with pypdf.apply_configuration(None, **_PDF_LIMITS):
            return _page_texts(pypdf.PdfReader(io.BytesIO(data), strict=False), started)
    except LimitReachedError:
        raise AttachmentTooLarge("This PDF inflates past what is accepted.") from None
    except _Overtime:
        raise AttachmentTooLarge(_TOO_SLOW) from None
    except ApiError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, OSError):
        raise UnsupportedAttachment("This file is not a readable PDF.") from None
    finally:
        _ONE_PDF_AT_A_TIME.release()


def _page_texts(reader: Any, started: float) -> list[int]:
    if reader.is_encrypted:
        raise UnsupportedAttachment("Encrypted or password-protected PDFs are not supported.")
    count = len(reader.pages)
    if count > PDF_MAX_PAGES:
        raise AttachmentTooLarge(f"PDFs may have at most {PDF_MAX_PAGES} pages.")
    if count == 0:
        raise UnsupportedAttachment("This PDF has no pages.")
    deadline = started + _PDF_SECONDS

    def in_time(*_: Any) -> None:
        """Before each operator, the page's and its forms' (one page may draw thousands of forms,
        each parsed afresh): past the deadline by at most one stream's parse (pypdf's per-stream
        budget of 2,000,000 tokens, about 5 s of CPU), not by a page's whole extraction."""
        if time.monotonic() > deadline:
            raise _Overtime()

    sizes = []
    for page in reader.pages:
        contents = page.get_contents()  # inflated under the limits (extract_text swallows a bomb's error)
        if contents is not None:
            contents.get_data()
        in_time()
        text = page.extract_text(visitor_operand_before=in_time)
        sizes.append(len(text.encode("utf-8", "surrogatepass")))
        in_time()
    return sizes


_TOO_SLOW = "This PDF takes too long to read."


def _kind(content_type: str) -> str:
    return "PDF" if content_type == PDF_TYPE else IMAGE_TYPES[content_type]


def _article(content_type: str) -> str:
    return "a PDF" if content_type == PDF_TYPE else f"a {IMAGE_TYPES[content_type]} image"


def _megabytes(content_type: str) -> int:
    return MAX_BYTES[content_type] // MiB


# -- the store --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    url: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class Fetched:
    """An object as read back: its bytes and what its upload declared."""

    name: str
    type: str
    declared: int
    data: bytes


_PENDING_TAGGING = f"<Tagging><TagSet><Tag><Key>state</Key><Value>{PENDING}</Value></Tag></TagSet></Tagging>"


class AttachmentStore:
    def __init__(self, s3: Any, bucket: str, table: str, retention_seconds: int) -> None:
        self._s3 = s3
        self.bucket = bucket
        self._table = table
        self._retention = retention_seconds

    def presign_upload(self, owner: str, name: str, content_type: str, size: int) -> Upload:
        """A presigned POST for one new object under the caller's prefix: that key, that type, 1 byte to
        `size`, tagged pending, its name and declared size as metadata."""
        attachment_id = new_id()
        key = object_key(owner, attachment_id)
        fields = {
            "Content-Type": content_type,
            "x-amz-meta-name": encode_name(name),
            "x-amz-meta-declared-size": str(size),
            "tagging": _PENDING_TAGGING,
        }
        conditions: list[Any] = [
            {"bucket": self.bucket},
            ["eq", "$key", key],
            ["content-length-range", 1, size],
            *({name_: value} for name_, value in fields.items()),
        ]
        post = self._s3.generate_presigned_post(
            self.bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=UPLOAD_SECONDS
        )
        return Upload(attachment_id, str(post["url"]), {k: str(v) for k, v in post["fields"].items()})

    def fetch(self, owner: str, attachment_id: str) -> Fetched:
        """The caller's object, read whole (at most its type's limit), or AttachmentNotFound."""
        if not re.fullmatch(ID_PATTERN, attachment_id):
            raise AttachmentNotFound()
        try:
            answer = self._s3.get_object(Bucket=self.bucket, Key=object_key(owner, attachment_id))
        except self._s3.exceptions.NoSuchKey:
            raise AttachmentNotFound() from None
        # S3 answers each of these (Metadata empty when there is none).
        metadata = answer["Metadata"]
        content_type = str(answer["ContentType"])
        length = int(answer["ContentLength"])
        try:
            declared = int(metadata.get("declared-size", 0))  # none: no upload presigned here, so too large
        except ValueError:
            declared = 0
        body = answer["Body"]
        try:
            if content_type not in MAX_BYTES:
                raise UnsupportedAttachment()
            if length > MAX_BYTES[content_type]:
                raise AttachmentTooLarge("This file is larger than its type allows.")
            if length > declared:
                raise AttachmentTooLarge("This file is larger than declared at its upload.")
            data = body.read(MAX_BYTES[content_type] + 1)
        finally:
            body.close()
        return Fetched(decode_name(str(metadata.get("name", ""))), content_type, declared, data)

    def exists(self, owner: str, attachment_id: str) -> Fetched | None:
        """What a HEAD says of the caller's object (no bytes), or None."""
        if not re.fullmatch(ID_PATTERN, attachment_id):
            return None
        try:
            answer = self._s3.head_object(Bucket=self.bucket, Key=object_key(owner, attachment_id))
        except self._s3.exceptions.ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return Fetched(
            decode_name(str(answer["Metadata"].get("name", ""))),
            str(answer["ContentType"]),
            int(answer["ContentLength"]),
            b"",
        )

    def link(self, owner: str, attachment_id: str, name: str, content_type: str) -> str:
        """A short-lived GET link to the caller's object, saved under its name."""
        ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:100] or "attachment"
        disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{encode_name(name)}"
        return str(
            self._s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": object_key(owner, attachment_id),
                    "ResponseContentDisposition": disposition,
                    "ResponseContentType": content_type,
                },
                ExpiresIn=LINK_SECONDS,
            )
        )

    def claim(self, owner: str, attachment_id: str, conversation: str, now: float | None = None) -> Check:
        """The admission's check that the file is this conversation's, or no one's yet (then it is)."""
        now = time.time() if now is None else now
        return Check(
            CLAIM_CHECK,
            {
                "Update": {
                    "Key": claim_key(owner, attachment_id),
                    "UpdateExpression": "SET cid = if_not_exists(cid, :cid), expires_at = :exp",
                    "ConditionExpression": "attribute_not_exists(cid) OR cid = :cid",
                    "ExpressionAttributeValues": {
                        ":cid": {"S": conversation},
                        ":exp": {"N": str(int(now) + self._retention)},
                    },
                }
            },
        )

    def put(self, owner: str, attachment: Attachment, data: bytes) -> None:
        """A file that came inside a turn's body (the AI SDK's `file` parts), stored as an upload
        of it would be, once the turn that carried it is saved: already kept."""
        self._s3.put_object(
            Bucket=self.bucket,
            Key=object_key(owner, attachment.id),
            Body=data,
            ContentType=attachment.type,
            Metadata={"name": encode_name(attachment.name), "declared-size": str(len(data))},
            Tagging=f"state={KEPT}",
        )

    def keep(self, owner: str, attachment_ids: Sequence[str]) -> None:
        """A saved turn's files: tagged kept, so the pending lifecycle rule leaves them."""
        for attachment_id in attachment_ids:
            self._s3.put_object_tagging(
                Bucket=self.bucket,
                Key=object_key(owner, attachment_id),
                Tagging={"TagSet": [{"Key": "state", "Value": KEPT}]},
            )

    def delete(self, dynamodb: Any, owner: str, attachment_ids: Sequence[str]) -> None:
        """A deleted conversation's files and their claims."""
        ids = list(dict.fromkeys(attachment_ids))
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            self._s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": object_key(owner, i)} for i in chunk], "Quiet": True},
            )
        for start in range(0, len(ids), 25):
            chunk = ids[start : start + 25]
            dynamodb.batch_write_item(
                RequestItems={self._table: [{"DeleteRequest": {"Key": claim_key(owner, i)}} for i in chunk]}
            )


CLAIM_CHECK = "attachment"


def claim_key(owner: str, attachment_id: str) -> dict[str, Any]:
    """A file's claim: in a partition of the owner's that no conversation can have (ids hold no `~`)."""
    return {"pk": {"S": f"S#{owner}#~files"}, "sk": {"S": f"A#{attachment_id}"}}


def check_reused() -> InvalidRequest:
    return InvalidRequest(
        "An attachment belongs to the conversation of the first turn that used it; "
        "upload it again to use it here."
    )
