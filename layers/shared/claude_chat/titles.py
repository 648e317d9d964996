"""Conversation titles: readable without a second paid call, or written by Claude when the operator asks.

The default title is the first line of the conversation's first message, cut at
a word near 60 characters: free, instant, and what the person typed. With
`CLAUDE_TITLES=true` the first exchange is also sent to Claude with a small
`max_tokens`, once per conversation, and the title it writes replaces the
default one; its tokens are reserved from and settled against the caller's
budgets like a turn's, and any failure keeps the default title.
"""

from __future__ import annotations

import re

from aws_lambda_powertools import Logger

from claude_chat.caller import Caller
from claude_chat.deadline import Deadline
from claude_chat.model_choice import ModelChoice
from claude_chat.models import TITLE_MAX_CHARS
from claude_chat.settings import get_settings

logger = Logger(child=True)

TITLE_CHARS = 60
TITLE_MAX_TOKENS = 24
_MARKUP = re.compile(r"[`*_#>\[\]]+|[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
# Markdown marks, control characters, and the invisible and bidirectional-override characters that
# would make a title read other than it is (a rename refuses the control characters too).
_TITLE_PROMPT = (
    "Write a title of at most six words for the conversation that starts with the exchange below. "
    "Answer with the title only: no quotes, no punctuation at the end.\n\n"
    "<user>\n{user}\n</user>\n<assistant>\n{assistant}\n</assistant>"
)
_EXCERPT_CHARS = 2000  # of each side of the exchange: enough to name it, and the cost stays small


def title_from(message: str, reply: str = "") -> str:
    """A title from the first exchange: the message's first non-empty line (the reply's when the
    message has no words), without Markdown marks, cut at a word near TITLE_CHARS."""
    for text in (message, reply):
        for line in text.splitlines():
            words = _MARKUP.sub(" ", line).split()
            if words:
                return _shorten(" ".join(words))
    return "New chat"


def _shorten(text: str, limit: int = TITLE_CHARS) -> str:
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = head.rsplit(" ", 1)[0] if " " in head else head
    return cut.rstrip(" ,.;:-") + "…"


def claude_title(
    caller: Caller, model: ModelChoice, message: str, reply: str, deadline: Deadline
) -> str | None:
    """A title Claude (the conversation's model) writes for the first exchange, its cost counted
    against the caller's budgets, not their request window; None when it cannot be had (no budget
    left, Claude failed, no time): the default title stays."""
    from claude_chat import services
    from claude_chat.chat_turn import Quote

    claude = services.claude()
    request = claude.title_request(
        _TITLE_PROMPT.format(user=message[:_EXCERPT_CHARS], assistant=reply[:_EXCERPT_CHARS]),
        TITLE_MAX_TOKENS,
        model.model_id,
    )
    quote = Quote(model, claude.input_bound(request), TITLE_MAX_TOKENS)
    try:
        ticket = services.admission().admit(
            caller.client_key, quote.worst, caller.limits(get_settings()), request=False
        )
    except Exception:
        logger.info("no title from Claude: the budget refused it")
        return None
    try:
        written = claude.complete(request, deadline)
    except Exception:
        # The reservation stays charged: Claude may have billed part of it before failing.
        logger.warning("no title from Claude: the call failed", exc_info=True)
        return None
    ticket.settle(quote.cost(written.usage))
    words = _MARKUP.sub(" ", written.text).replace('"', " ").split()
    return _shorten(" ".join(words), TITLE_MAX_CHARS) if words else None
