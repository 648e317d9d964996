# ruff: noqa: RUF001 - BENCHMARKS.md is prose: en dashes and multiplication signs
"""What a turn with a file or a web search costs in Claude tokens, per 1,000 turns.

The short chat's measured turn (section `footprint`'s 1,000 turns) with one
more thing: a 1,000 x 1,000 screenshot, a 10-page PDF or one web search, each
twice, at the docs' estimate of what Claude bills for it and at the project's
bound (what a turn is counted at: claude_chat.attachments.inspect on a real
file, and pricing.search_reserve_tokens with MAX_TOKENS more output for a
search). Priced by claude_chat.pricing, so the dollars are what the money
budgets charge when Claude bills those tokens. Nothing here is measured: the
rows are worked out from the results when the report is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from claude_chat import attachments, pricing
from claude_chat.models import Usage
from claude_chat.settings import Settings
from tests.files import LETTER, pdf, png

MODEL = "claude-haiku-4-5"  # the model the other sections' turns are priced on
TURNS = 1000
SCREENSHOT = (1000, 1000)
PDF_PAGES = 10
# platform.claude.com, PDF support, "Estimate your costs": "Each page typically uses 1,500-3,000 tokens
# per page depending on content density", plus each page as an image (the vision rules).
PDF_TEXT_TOKENS_PER_PAGE = (1500, 3000)
# The web search tool's page gives no size for a search's results; its example response (one search
# answering a one-line question) bills 6,039 input tokens: the tool's definition, the results, and
# the question read by both samplings. Taken as what one search adds, with this turn's own prompt read
# again after the search.
SEARCH_EXAMPLE_INPUT_TOKENS = 6039
SOURCES = (
    "The docs' figures are platform.claude.com's, read for this section: Vision (an image is width "
    "× height / 750 tokens once Claude has resized it to at most 1,568 px on the long edge and about "
    '1.15 megapixels), PDF support ("Estimate your costs": 1,500–3,000 tokens of text per page, plus '
    "each page as an image; the resolution a page is rendered at is not published) and the web search "
    "tool ($10 per 1,000 searches plus standard token costs: results are input tokens, in each sampling "
    "of the turn; no typical size is given)"
)


@dataclass(frozen=True, slots=True)
class Row:
    turn: str
    figure: str  # "measured", "estimate" or "bound"
    how: str  # where the added tokens come from
    input_tokens: tuple[int, int]  # per turn; a range where the docs give one
    output_tokens: int
    searches: int

    def dollars(self, base: dict[str, float]) -> tuple[float, float]:
        """Claude's bill for 1,000 such turns, as claude_chat.pricing prices it (low, high)."""
        prices = pricing.prices_for(MODEL, pricing.PRICE_TABLE)
        assert prices is not None
        return (
            self._cost(prices, base, self.input_tokens[0]),
            self._cost(prices, base, self.input_tokens[1]),
        )

    def _cost(self, prices: pricing.Prices, base: dict[str, float], input_tokens: int) -> float:
        usage = Usage(
            input_tokens=TURNS * input_tokens,
            output_tokens=TURNS * self.output_tokens,
            cache_creation_input_tokens=round(base["cache_creation_input_tokens"]),
            cache_read_input_tokens=round(base["cache_read_input_tokens"]),
        )
        return prices.cost(usage, TURNS * self.searches) / pricing.NANOS_PER_USD


def base_turn(results: dict[str, Any]) -> dict[str, Any] | None:
    """The short chat's 1,000 turns through the chat function (tokens are the same in every row of it)."""
    rows = results.get("footprint", {}).get("model", {}).get("thousand_turns", [])
    return next(
        (r for r in rows if r["conversation"] == "short chat" and r["function"] == "ChatFunction"), None
    )


def rows(results: dict[str, Any]) -> list[Row]:
    base = base_turn(results)
    if base is None:
        return []
    tokens = base["tokens"]
    prompt = round(tokens["input_tokens"] / TURNS)  # per turn
    reply = round(tokens["output_tokens"] / TURNS)
    defaults = Settings.model_construct()  # the settings' defaults: MAX_TOKENS, WEB_SEARCH_RESERVE_TOKENS

    def more(
        turn: str, figure: str, how: str, added: tuple[int, int], output: int = 0, searches: int = 0
    ) -> Row:
        return Row(turn, figure, how, (prompt + added[0], prompt + added[1]), reply + output, searches)

    width, height = SCREENSHOT
    docs_image = math.ceil(width * height / 750)
    counted_image = attachments.inspect(
        "i" * 22, "screenshot.png", "image/png", png(SCREENSHOT), MODEL
    ).tokens
    # A Letter page at 200 dpi, as Claude counts an image that size once resized to its limits.
    page_image = attachments.image_tokens(
        LETTER[0] * 200 // 72, LETTER[1] * 200 // 72, *attachments._tier(MODEL)
    )
    low_text, high_text = PDF_TEXT_TOKENS_PER_PAGE
    counted_pdf = attachments.inspect("d" * 22, "report.pdf", "application/pdf", pdf(PDF_PAGES), MODEL).tokens
    reserve = pricing.search_reserve_tokens(MODEL, defaults)
    image = f"one {width:,} × {height:,} screenshot"
    document = f"one {PDF_PAGES}-page PDF"
    return [
        Row(
            "nothing more",
            "measured",
            "the stand-in's billing of the footprint section's turns",
            (prompt, prompt),
            reply,
            0,
        ),
        more(
            image,
            "estimate",
            f"{width:,} × {height:,} / 750 = {docs_image:,} tokens (no resizing)",
            (docs_image, docs_image),
        ),
        more(
            image, "bound", f"{counted_image:,} tokens: the same, and 16 for its block", (counted_image,) * 2
        ),
        more(
            document,
            "estimate",
            f"per page {low_text:,}–{high_text:,} tokens of text and {page_image:,} for the page as an "
            "image (a Letter page at 200 dpi, resized to the vision limits)",
            (PDF_PAGES * (low_text + page_image), PDF_PAGES * (high_text + page_image)),
        ),
        more(
            document,
            "bound",
            f"{counted_pdf:,} tokens: per page the image's most and the larger of 3,000 and its text's "
            "bytes, and 16 for the block",
            (counted_pdf, counted_pdf),
        ),
        more(
            "one web search",
            "estimate",
            f"$0.01, {SEARCH_EXAMPLE_INPUT_TOKENS:,} input tokens (the web search tool page's example: one "
            f"search answering a one-line question) and this turn's prompt read again ({prompt:,})",
            (SEARCH_EXAMPLE_INPUT_TOKENS + prompt,) * 2,
            searches=1,
        ),
        more(
            "one web search",
            "bound",
            f"$0.01, {reserve:,} input tokens (the model's context window) and MAX_TOKENS "
            f"({defaults.max_tokens:,}) more output for the sampling after it",
            (reserve, reserve),
            output=defaults.max_tokens,
            searches=1,
        ),
    ]


def _span(low: float, high: float, form: str) -> str:
    return form.format(low) if low == high else f"{form.format(low)}–{form.format(high)}"


def markdown(results: dict[str, Any]) -> str:
    """The section's table and what its figures are (empty without the footprint section's results)."""
    found = rows(results)
    base = base_turn(results)
    if not found or base is None:
        return ""
    prices = pricing.prices_for(MODEL, pricing.PRICE_TABLE)
    assert prices is not None
    defaults = Settings.model_construct()
    reserve = pricing.search_reserve_tokens(MODEL, defaults)
    reserved = prices.worst_case(reserve, defaults.max_tokens, 1) / pricing.NANOS_PER_USD
    infrastructure = base["dollars"]["lambda"] + base["dollars"]["dynamodb"]
    short = found[0]
    out = [
        "### Turns with a file or a web search\n",
        f"The short chat's turn (above: {short.input_tokens[0]:,} input and {short.output_tokens:,} output "
        f"tokens a turn) with one thing more, {TURNS:,} turns each, priced by the project's own code "
        f"(`claude_chat.pricing`, Claude Haiku 4.5 at its table's prices of {pricing.PRICES_AS_OF}: "
        f"${prices.input} and ${prices.output} per million input and output tokens, ${prices.web_search} "
        "a search), so the dollars are what the money budgets charge when Claude bills these tokens. Each "
        "twice: **estimate** is the docs' figure for what Claude bills; **bound** is what the project "
        "counts the turn at before Claude answers (a file's tokens as `claude_chat.attachments.inspect` "
        "counts them on a real file, a search as `pricing.search_reserve_tokens` reserves it): the worst "
        "case a turn is admitted on, which Claude's bill stays under, and the budgets then settle to the "
        "bill. " + SOURCES + ".\n",
        "| turn: the short chat's, with | figure | input tokens per turn | output tokens per turn "
        "| searches | Claude $ per 1,000 turns | the added tokens |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in found:
        low, high = row.dollars(base["tokens"])
        out.append(
            f"| {row.turn} | {row.figure} | {_span(*row.input_tokens, '{:,}')} | {row.output_tokens:,} "
            f"| {row.searches} | {_span(low, high, '{:.2f}')} | {row.how} |"
        )
    out.append(
        f"\nLambda and DynamoDB are left at the short chat's (${infrastructure:.4f} per 1,000 turns, "
        "ChatFunction at the template's size): a file's check (reading it back from S3, a PDF's parse) "
        "and a search's wait for results add Lambda time, and S3's requests and storage are not counted. "
        f"A search turn's bound is reserved at admission at the dearest input rate, ${reserved:.2f} more "
        "a turn (`Prices.worst_case`); the results are not sent to Claude again in later turns, so a "
        "search is paid for once.\n"
    )
    return "\n".join(out)
