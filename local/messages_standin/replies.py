"""What the stand-in answers, and how a test steers one request: the `[standin:...]` directives.

Why apart: the replies are the stand-in's behaviour, shared by both wire formats
(the Messages API's and Bedrock's), and tests depend on them word for word. They
are deterministic: "Stand-in reply to: <last user message>", plus " (turn N)" when
the request carries N-1 earlier assistant messages. One word is one output token
and one streamed text delta.

A test steers one request with directives in the last user message; they are
removed from the echoed reply, and several may be combined:

    [standin:status=529]        answer with that error status and its real error type:
                                429 rate_limit_error, 500 api_error, 529 overloaded_error,
                                400 invalid_request_error, 401 authentication_error, ...
    [standin:retry_after=9]     the retry-after header of a 429 (default 7)
    [standin:delay=2.5]         wait that many seconds before the response headers (timeouts)
    [standin:delta_delay=0.2]   wait that many seconds between streamed text deltas
    [standin:fail_after=3]      stream: an `error` event (overloaded_error) after 3 deltas;
                                otherwise: a 529
    [standin:drop_after=3]      stream: close the connection after 3 deltas, without
                                message_stop; otherwise: close it halfway through the body
    [standin:words=50]          make the reply exactly 50 words ("w1 w2 ..." after the echo)
    [standin:echo=raw]          reply with the user's text itself, whitespace and newlines kept
                                (Markdown for the browser tests), one delta per word
    [standin:advance_clock=301] move the prompt cache's clock forward 301 s before billing this
                                request (and every later one): cache expiry without sleeping
    [standin:search=tides|moon] search the web for "tides", then "moon" (the request must carry
                                the web_search tool; searches past its max_uses fail with
                                max_uses_exceeded), and cite each search's first result
    [standin:redacted=1]        a thinking request: a redacted_thinking block (safety-encrypted
                                thinking, no text) before the thinking block

Without a directive, a request that asks for thinking (`thinking`: enabled or adaptive)
thinks first, "Thinking about: <last user message>", a word per thinking delta (with
`display: omitted`, the default of Opus 4.7 and later, only the signature comes); and a
reply to a message with documents that enable citations cites page 1 of the first.

An unknown directive or a bad value is a 400, so a typo in a test fails loudly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from local.messages_standin.wire import BadRequest, Extras, Prompt, Search

DIRECTIVE = re.compile(r"\[standin:(\w+)=([^\]]*)\]")


@dataclass(frozen=True)
class Directives:
    """How the last user message asked this request to behave."""

    status: int | None = None
    retry_after: int = 7
    delay: float = 0.0
    delta_delay: float | None = None  # None: no pause of its own (a paced stand-in's interval)
    fail_after: int | None = None
    drop_after: int | None = None
    words: int | None = None
    echo: str = "summary"
    advance_clock: float = 0.0
    search: tuple[str, ...] = ()
    redacted: bool = False

    @classmethod
    def parse(cls, text: str) -> Directives:
        found = dict(DIRECTIVE.findall(text))
        unknown = sorted(found.keys() - cls.__dataclass_fields__.keys())
        if unknown:
            raise BadRequest(f"unknown stand-in directive(s): {', '.join(unknown)}")
        try:
            directives = cls(
                status=int(found["status"]) if "status" in found else None,
                retry_after=int(found.get("retry_after", 7)),
                delay=float(found.get("delay", 0)),
                delta_delay=float(found["delta_delay"]) if "delta_delay" in found else None,
                fail_after=int(found["fail_after"]) if "fail_after" in found else None,
                drop_after=int(found["drop_after"]) if "drop_after" in found else None,
                words=int(found["words"]) if "words" in found else None,
                echo=found.get("echo", "summary"),
                advance_clock=float(found.get("advance_clock", 0)),
                search=tuple(q.strip() for q in found.get("search", "").split("|") if q.strip()),
                redacted=found.get("redacted", "0") == "1",
            )
        except ValueError as error:
            raise BadRequest(f"bad stand-in directive value: {error}") from error
        if directives.status is not None and not 400 <= directives.status <= 599:
            raise BadRequest("stand-in directive status must be an HTTP error status (400-599)")
        counts = (directives.retry_after, directives.fail_after, directives.drop_after)
        floats = (directives.delay, directives.delta_delay or 0, directives.advance_clock)
        if min(*floats, *(n for n in counts if n is not None)) < 0:
            raise BadRequest("stand-in directive values must not be negative")
        if directives.echo not in ("summary", "raw"):
            raise BadRequest("stand-in directive echo must be raw (or summary, the default)")
        if directives.words is not None and directives.words < 1:
            raise BadRequest("stand-in directive words must be at least 1")
        return directives


def reply_words(prompt: Prompt, directives: Directives) -> tuple[list[str], str]:
    """The reply as its text deltas (a word and the space after it), and its stop reason."""
    if directives.echo == "raw":
        raw = DIRECTIVE.sub("", prompt.last_user_text).strip() or "(empty)"
        deltas = re.findall(r"\S+\s*", raw)
        if len(deltas) > prompt.max_tokens:
            return deltas[: prompt.max_tokens], "max_tokens"
        return deltas, "end_turn"
    echoed = " ".join(DIRECTIVE.sub(" ", prompt.last_user_text).split())
    text = f"Stand-in reply to: {echoed}"
    if prompt.assistant_turns:
        text += f" (turn {prompt.assistant_turns + 1})"
    words = text.split()
    if directives.words is not None:
        filler = (f"w{n}" for n in range(1, directives.words + 1))
        words = [*words, *filler][: directives.words]
    stop_reason = "end_turn"
    if len(words) > prompt.max_tokens:
        words, stop_reason = words[: prompt.max_tokens], "max_tokens"
    return [f"{word} " for word in words[:-1]] + words[-1:], stop_reason


def reply_extras(prompt: Prompt, directives: Directives) -> Extras:
    """What the reply holds besides its text: thinking when asked, the searches the directive asks for,
    and the citations of its text (each search's first result, or page 1 of a cited document)."""
    if directives.search and prompt.web_search is None:
        raise BadRequest("stand-in directive search needs the web_search tool in the request")
    thinking: list[str] = []
    omitted = False
    if prompt.thinking is not None:
        echoed = " ".join(DIRECTIVE.sub(" ", prompt.last_user_text).split())
        words = f"Thinking about: {echoed}".split()
        thinking = [f"{word} " for word in words[:-1]] + words[-1:]
        omitted = prompt.thinking.get("display") == "omitted"
    max_uses = (prompt.web_search or {}).get("max_uses") or len(directives.search)
    searches = [
        Search(query, None if number < max_uses else "max_uses_exceeded")
        for number, query in enumerate(directives.search)
    ]
    citations = [
        {
            "type": "web_search_result_location",
            "url": search.results[0]["url"],
            "title": search.results[0]["title"],
            "encrypted_index": search.results[0]["encrypted_content"],
            "cited_text": f"What the web says about {search.query}.",
        }
        for search in searches
        if search.error is None
    ]
    if prompt.documents:
        citations.append(
            {
                "type": "page_location",
                "cited_text": f"Page 1 of {prompt.documents[0]}.",
                "document_index": 0,
                "document_title": prompt.documents[0],
                "start_page_number": 1,
                "end_page_number": 2,
            }
        )
    return Extras(thinking, searches, citations, omitted, directives.redacted and bool(thinking))
