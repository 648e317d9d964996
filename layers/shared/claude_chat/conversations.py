"""The conversation routes' shapes: list cursors, times, pages of messages, and exports.

The list cursor names the last conversation of a page by its update time and
id, `<updated_at ms>.<id>`, and is read strictly (anything else is a 422): the
store rebuilds the index key from it under the caller's own owner, so no
cursor can reach another caller's list. Exports are built here so Markdown
and JSON say the same thing.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from claude_chat.conversation_store import ConversationSummary, Turn
from claude_chat.errors import InvalidRequest
from claude_chat.models import AttachmentRef, Citation, ExportedConversation, HistoryMessage
from claude_chat.models import ConversationSummary as SummaryReply

LIST_PAGE = 20  # conversations in a page of the list, by default
LIST_PAGE_MAX = 100
LIST_CURSOR_PATTERN = r"^(0|[1-9][0-9]{0,15})\.([A-Za-z0-9_-]{1,64})$"
BAD_LIST_CURSOR = "`before` is not a cursor from this API: pass the `next` of a list reply unchanged."
# Lambda's buffered response stops at 6 MB of JSON (the body escaped, headers and all).
EXPORT_MAX_BYTES = 5_800_000


def fits_one_response(text: str) -> bool:
    """Whether an export fits the buffered response, measured as Lambda will send it (JSON-escaped)."""
    return len(json.dumps(text)) <= EXPORT_MAX_BYTES


def encode_list_cursor(after: tuple[int, str]) -> str:
    return f"{after[0]}.{after[1]}"


def decode_list_cursor(cursor: str) -> tuple[int, str]:
    found = re.fullmatch(LIST_CURSOR_PATTERN[1:-1], cursor)
    if found is None:
        raise InvalidRequest(BAD_LIST_CURSOR)
    return int(found[1]), found[2]


def iso_time(millis: int) -> str:
    """ISO 8601 in UTC with milliseconds, as JavaScript's Date.toISOString writes it."""
    moment = datetime.fromtimestamp(millis / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def summary_reply(summary: ConversationSummary) -> SummaryReply:
    return SummaryReply(
        id=summary.id,
        title=summary.title,
        turns=summary.turns,
        updated_at=iso_time(summary.updated_at),
        model=summary.model,
    )


def messages_of(turns: tuple[Turn, ...] | list[Turn]) -> list[HistoryMessage]:
    messages: list[HistoryMessage] = []
    for turn in turns:
        files = [AttachmentRef(**attachment.ref()) for attachment in turn.attachments] or None
        messages.append(HistoryMessage(role="user", content=turn.user, attachments=files))
        messages.append(
            HistoryMessage(
                role="assistant",
                content=turn.assistant,
                thinking=turn.thinking or None,
                citations=[Citation.model_validate(cited) for cited in turn.citations] or None,
            )
        )
    return messages


def export_json(summary: ConversationSummary, turns: list[Turn], now_millis: int) -> str:
    exported = ExportedConversation(
        id=summary.id,
        title=summary.title,
        updated_at=iso_time(summary.updated_at),
        exported_at=iso_time(now_millis),
        messages=messages_of(turns),
    )
    return json.dumps(exported.model_dump(exclude_none=True), ensure_ascii=False, indent=2) + "\n"


def export_markdown(summary: ConversationSummary, turns: list[Turn], now_millis: int) -> str:
    """The conversation as a Markdown document: the title, then each message under its speaker.

    The title is escaped (it is the person's text, not markup); messages are kept as written,
    since Claude's replies are Markdown already.
    """
    lines = [
        f"# {_escape_markdown(summary.title)}",
        "",
        f"Exported {iso_time(now_millis)} · {summary.turns} exchanges · "
        f"last updated {iso_time(summary.updated_at)}",
        "",
    ]
    for turn in turns:
        lines += ["## You", ""]
        if turn.attachments:  # each file by name, type and size (names escaped: they are the person's text)
            lines += [
                f"- Attachment: {_escape_markdown(a.name)} ({a.type}, {a.size} bytes, id `{a.id}`)"
                for a in turn.attachments
            ]
            lines.append("")
        lines += [turn.user, "", "## Claude", ""]
        if turn.thinking:  # as a quote, so it reads apart from the reply
            lines += [
                "> **Thinking**",
                ">",
                *(f"> {line}".rstrip() for line in turn.thinking.splitlines()),
                "",
            ]
        lines += [turn.assistant, ""]
        if turn.citations:
            lines += ["**Sources**", "", *(_source_line(cited) for cited in turn.citations), ""]
    return "\n".join(lines)


def _source_line(cited: dict[str, Any]) -> str:
    """A citation as a Markdown list item: the page linked (its title escaped), or the document and page."""
    quote = _escape_markdown(" ".join(str(cited.get("cited_text", "")).split()))
    if cited.get("url"):
        url = str(cited["url"]).replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")
        title = _escape_markdown(str(cited.get("title") or cited["url"]))
        return f"- [{title}](<{url}>): “{quote}”"
    document = _escape_markdown(str(cited.get("document", "document")))
    return f"- {document}, page {cited.get('page', '?')}: “{quote}”"


def export_filename(title: str, extension: str) -> str:
    """A file name from the title: ASCII letters, digits and dashes only (safe in any header)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_title).strip("-").lower()[:60].strip("-")
    return f"{slug or 'conversation'}.{extension}"


def _escape_markdown(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>()#+!|~-])", r"\\\1", text)
