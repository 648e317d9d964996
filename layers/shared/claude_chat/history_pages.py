"""The paging of `GET /api/chat/history`: page sizes and the `before` cursor.

A reply must stay far below Lambda's 6 MB response limit however long the
conversation, so a page holds at most PAGE_TURNS turns and about PAGE_BYTES
of body. The cursor names the conversation (its generation) and the oldest
turn already shown; it is opaque to clients and read strictly, so a bad one is
a 422, never a 500 and never a different page. A cursor from before a reset
names a conversation that no longer exists: its page is empty.
"""

from __future__ import annotations

import base64
import binascii
import re

from claude_chat.errors import InvalidRequest

PAGE_TURNS = 100  # the default and the most `?limit=` may ask for
PAGE_BYTES = 1_000_000  # a page's whole body, envelope included
ENVELOPE_BYTES = 2_000  # `turns`, `session`, `before` and the braces, with room to spare
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{3,30}$"

_DECODED = re.compile(r"(0|[1-9][0-9]{0,9})\.([1-9][0-9]{0,9})")
BAD_CURSOR = "`before` is not a cursor from this API: pass the `before` of a history reply unchanged."


def encode_cursor(generation: int, turn: int) -> str:
    return base64.urlsafe_b64encode(f"{generation}.{turn}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(generation, turn) of a cursor this API issued; InvalidRequest for anything else."""
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise InvalidRequest(BAD_CURSOR)
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError) as error:
        raise InvalidRequest(BAD_CURSOR) from error
    found = _DECODED.fullmatch(text)
    # Only the canonical spelling: no second encoding of the same cursor slips through.
    if found is None or encode_cursor(int(found[1]), int(found[2])) != cursor:
        raise InvalidRequest(BAD_CURSOR)
    return int(found[1]), int(found[2])
