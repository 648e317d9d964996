"""The paging of `GET /api/chat/history`: page sizes and the `before` cursor.

A reply must stay far below Lambda's 6 MB response limit however long the
conversation, so a page holds at most PAGE_TURNS turns and about PAGE_BYTES
of body. The cursor names the conversation (its generation) and the oldest
turn already shown, as `<generation>-<turn>`. Clients treat it as opaque; the
server reads it strictly, by a pattern the OpenAPI description states in full,
so every cursor that matches is answered (a page, maybe empty) and anything
else is a 422, never a 500 and never a different page. A cursor from before a
reset names a conversation that no longer exists: its page is empty.
"""

from __future__ import annotations

import re

from claude_chat.errors import InvalidRequest

PAGE_TURNS = 100  # the default and the most `?limit=` may ask for
PAGE_BYTES = 1_000_000  # a page's whole body, envelope included
ENVELOPE_BYTES = 2_000  # `turns`, `session`, `before` and the braces, with room to spare
# Numbers as the sort keys hold them (at most 10 digits), without leading zeros; turns count from 1.
CURSOR_PATTERN = r"^(0|[1-9][0-9]{0,9})-([1-9][0-9]{0,18})$"
BAD_CURSOR = "`before` is not a cursor from this API: pass the `before` of a history reply unchanged."


def encode_cursor(generation: int, turn: int) -> str:
    return f"{generation}-{turn}"


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(generation, turn) of a cursor this API issued; InvalidRequest for anything else."""
    found = re.fullmatch(CURSOR_PATTERN[1:-1], cursor)
    if found is None:
        raise InvalidRequest(BAD_CURSOR)
    return int(found[1]), int(found[2])
