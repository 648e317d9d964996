"""History pages: ConversationStore.history_page on moto, and the cursor the API hands out."""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from claude_chat.attachments import Attachment
from claude_chat.conversation_store import ConversationStore, HistoryPage, Turn, _extras, _json_size
from claude_chat.conversations import messages_of
from claude_chat.errors import InvalidRequest
from claude_chat.history_pages import decode_cursor, encode_cursor
from claude_chat.models import Citation

NOW = 1_800_000_000
BIG = 10**9


@pytest.fixture
def store(aws) -> ConversationStore:
    return ConversationStore(
        aws,
        os.environ["TABLE_NAME"],
        ttl_seconds=3600,
        max_age_seconds=7 * 24 * 3600,
        pool=ThreadPoolExecutor(4),
    )


def seed(aws: Any, numbers: list[int], *, generation: int = 0, session: str = "s1", text: str = "") -> None:
    """Turn items and META written as the store's docstring lays them out, gaps and all."""
    table = os.environ["TABLE_NAME"]
    for number in numbers:
        aws.put_item(
            TableName=table,
            Item={
                "pk": {"S": f"S#{session}"},
                "sk": {"S": f"T#{generation:010d}#{number:010d}"},
                "user": {"S": f"u{number}{text}"},
                "assistant": {"S": f"a{number}{text}"},
                "expires_at": {"N": str(NOW + 10**6)},
            },
        )
    aws.put_item(
        TableName=table,
        Item={
            "pk": {"S": f"S#{session}"},
            "sk": {"S": "~META"},
            "turns": {"N": str(len(numbers))},
            "gen": {"N": str(generation)},
            "expires_at": {"N": str(NOW + 3600)},
        },
    )


def users(page: HistoryPage) -> list[str]:
    return [turn.user for turn in page.turns]


def all_pages(store: ConversationStore, limit: int, max_bytes: int = BIG) -> list[HistoryPage]:
    record = store.load("s1", NOW)
    pages = [store.history_page(record, limit, max_bytes)]
    while pages[-1].older is not None:
        pages.append(store.history_page(record, limit, max_bytes, before=pages[-1].older))
        assert len(pages) < 100
    return pages


def test_pages_run_newest_first_each_oldest_first_and_skip_gaps(store, aws) -> None:
    numbers = [1, 2, 4, 5, 6, 9, 10, 11]  # slots taken by turns that never completed leave gaps
    seed(aws, numbers)
    pages = all_pages(store, limit=3)
    assert [users(page) for page in pages] == [["u9", "u10", "u11"], ["u4", "u5", "u6"], ["u1", "u2"]]
    assert [page.older for page in pages] == [9, 4, None]


def test_nothing_older_means_no_cursor_even_when_the_page_is_exactly_full(store, aws) -> None:
    seed(aws, [1, 2, 3])
    page = store.history_page(store.load("s1", NOW), 3, BIG)
    assert (users(page), page.older) == (["u1", "u2", "u3"], None)


def test_a_cursor_in_a_gap_or_past_the_end_reads_what_is_older(store, aws) -> None:
    seed(aws, [1, 2, 5, 6])
    record = store.load("s1", NOW)
    assert users(store.history_page(record, 10, BIG, before=4)) == ["u1", "u2"]
    assert users(store.history_page(record, 10, BIG, before=99)) == ["u1", "u2", "u5", "u6"]
    assert store.history_page(record, 10, BIG, before=1) == HistoryPage((), None)


def test_the_size_cap_cuts_a_page_but_a_huge_turn_still_makes_one(store, aws) -> None:
    seed(aws, list(range(1, 11)), text="😀" * 1000)  # 12 bytes each once escaped: ~24 KB a turn
    per_turn = len(json.dumps("u1" + "😀" * 1000)) * 2
    pages = all_pages(store, limit=100, max_bytes=3 * per_turn + 300)
    assert [len(page.turns) for page in pages] == [3, 3, 3, 1]
    in_order = [turn.user.rstrip("😀") for page in reversed(pages) for turn in page.turns]
    assert in_order == [f"u{n}" for n in range(1, 11)]
    tiny = all_pages(store, limit=100, max_bytes=10)
    assert [len(page.turns) for page in tiny] == [1] * 10


def test_only_the_current_generation_and_only_this_session(store, aws) -> None:
    seed(aws, [1, 2, 3], generation=0)  # left behind by a reset whose deletes were cut short
    seed(aws, [1], generation=1)
    seed(aws, [1, 2], session="other")
    page = store.history_page(store.load("s1", NOW), 10, BIG)
    assert (users(page), page.older) == (["u1"], None)
    assert store.load("s1", NOW).generation == 1


def test_a_session_without_turns_has_an_empty_page(store) -> None:
    assert store.history_page(store.load("nobody", NOW), 10, BIG) == HistoryPage((), None)


def test_a_page_is_read_across_dynamodb_s_own_1_mb_pages(store, aws, monkeypatch) -> None:
    seed(aws, list(range(1, 8)), text="x" * 190_000)  # ~380 KB a turn: a Query returns 1 MB at most
    queries = []
    real_query = aws.query
    monkeypatch.setattr(aws, "query", lambda **request: queries.append(request) or real_query(**request))
    (page,) = all_pages(store, limit=100, max_bytes=BIG)
    assert len(queries) >= 3
    assert [user[:2] for user in users(page)] == [f"u{n}" for n in range(1, 8)]


@pytest.mark.parametrize(
    ("generation", "turn"), [(0, 1), (0, 100), (3, 12345), (9_999_999_999, 9_999_999_999)]
)
def test_cursors_round_trip(generation, turn) -> None:
    cursor = encode_cursor(generation, turn)
    assert decode_cursor(cursor) == (generation, turn)
    assert re.fullmatch(r"[0-9-]+", cursor)  # safe in a URL as it is


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "1",
        "0-0",
        "-1",
        "0--1",
        "00-1",
        "0-01",
        "0-1\n",
        " 0-1",
        "0-1 ",
        "0-10000000000000000000",
        "0-1a",
        "0.1",
        "\u0660-\u0661",  # Arabic-Indic digits
    ],
)
def test_anything_but_a_cursor_we_issued_is_invalid_request(cursor) -> None:
    with pytest.raises(InvalidRequest) as raised:
        decode_cursor(cursor)
    assert "`before`" in raised.value.message


def test_a_page_holds_what_was_asked_and_exactly_what_fits(store, aws) -> None:
    """Each of these turns is 88 bytes at worst: "u1" and "a1" as JSON strings, and 80 for the rest."""
    seed(aws, [1, 2, 3])
    record = store.load("s1", NOW)
    assert store.history_page(record, 0, BIG) == HistoryPage((), None)
    one = store.history_page(record, 1, BIG)
    assert (users(one), one.older) == (["u3"], 3)
    two = store.history_page(record, 10, 2 * 88)
    assert (users(two), two.older) == (["u2", "u3"], 2)


def cited(text: str) -> dict[str, Any]:
    return Citation(cited_text=text, url="https://tides.example/a", title="Tides").as_json()


def written(turns: list[Turn] | tuple[Turn, ...]) -> int:
    """Bytes of turns as the history's messages, ASCII-escaped and spaced: the longest JSON writing."""
    return len(json.dumps([message.model_dump() for message in messages_of(turns)]))


FILE = Attachment("a" * 22, "chat café 😀.png", "image/png", 1234, 1_616, 1_600, "0" * 64)
TURNS = {
    "text": Turn("hi", "hello"),
    "thinking": Turn("q", "a", thinking="é" * 500),
    "web citations": Turn("q", "a", citations=(cited("tides " * 50),) * 3),
    "cjk citations": Turn("q", "a", citations=(cited("潮汐" * 300),) * 3),  # 6 bytes a character escaped
    "emoji citations": Turn("q", "a", citations=(cited("😀" * 300),) * 3),  # 12 bytes a character
    "pdf citations": Turn(
        "q", "a", citations=(Citation(cited_text="x", document="d.pdf", page=2).as_json(),) * 20
    ),
    "files": Turn("q", "a", attachments=(FILE, FILE)),
    "everything": Turn("q", "a", thinking="t", citations=(cited("x"),), attachments=(FILE,)),
}


@pytest.mark.parametrize("name", TURNS)
def test_a_turn_is_counted_at_most_a_few_bytes_over_its_messages_written_out(name: str) -> None:
    turn = TURNS[name]
    assert written([turn]) <= _json_size(turn) <= written([turn]) + 40


def test_a_page_of_cited_turns_is_no_longer_than_asked_once_written(store, aws) -> None:
    # Each turn's citations are ~1,000 characters in DynamoDB, ~12,000 bytes in the reply.
    turn = Turn("q", "a", citations=(cited("😀" * 300),) * 3)
    table = os.environ["TABLE_NAME"]
    for number in range(1, 11):
        key = {"pk": {"S": "S#s1"}, "sk": {"S": f"T#{0:010d}#{number:010d}"}}
        item = {**key, "user": {"S": "q"}, "assistant": {"S": "a"}, **_extras(turn)}
        aws.put_item(TableName=table, Item={**item, "expires_at": {"N": str(NOW + 10**6)}})
    seed(aws, [])
    aws.update_item(
        TableName=table,
        Key={"pk": {"S": "S#s1"}, "sk": {"S": "~META"}},
        UpdateExpression="SET turns = :ten",
        ExpressionAttributeValues={":ten": {"N": "10"}},
    )
    max_bytes = 3 * written([turn]) + 100
    pages = all_pages(store, limit=100, max_bytes=max_bytes)
    assert [len(page.turns) for page in pages] == [3, 3, 3, 1]
    assert all(written(page.turns) <= max_bytes for page in pages)
