"""A warm conversation's turn reads nothing: the newest turns a container knows are what a read finds.

claude_chat.conversation_store keeps, with what a read or a save says of META, the newest turns
(`Recent`); claude_chat.sessions keeps both per conversation while the container is warm, and the
next turn takes its slot from them (`known_slot`) with an exact check on META in its admission. The
promise: whenever that check holds, the slot is the one a read would have taken (same history, same
turn replaced); when anything else was saved, reset or deleted since, the check fails.
"""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from claude_chat.conversation_store import (
    ConversationStore,
    Known,
    NumberedTurn,
    Recent,
    Slot,
    Turn,
    _turn_sk,
    known,
)
from claude_chat.session_tokens import SessionTokens
from claude_chat.sessions import Sessions
from tests.unit.test_conversation_store import MAX_AGE, NOW, TTL, apply, take_slot

WINDOW = 3  # turns of history: small, so the window moves (and a regenerate reaches past it) often


@pytest.fixture
def store(aws: Any, pool: ThreadPoolExecutor) -> ConversationStore:
    return ConversationStore(
        aws, os.environ["TABLE_NAME"], ttl_seconds=TTL, max_age_seconds=MAX_AGE, pool=pool
    )


def comparable(slot: Slot) -> Slot:
    """A slot without what differs between two takings of it: its number (a time), and what each
    knew of the newest turns (as deep as each read or kept; the history taken from them is compared)."""
    return replace(slot, number=0, recent=None)


class Container:
    """One warm container's view of one conversation: what its reads and its own saves told it."""

    def __init__(self, store: ConversationStore, partition: str) -> None:
        self.store, self.partition = store, partition
        self.state: Known | None = None
        self.served = 0  # turns whose slot came from what it knew, not from a read

    def slot(self, now: float, *, replace_last: bool = False, replace_only: str | None = None) -> Slot:
        """The turn's slot as claude_chat.chat_turn takes it: from what is known when the exact check
        holds, else from a read (checked too). Where both apply, they must agree."""
        if self.state is not None:
            guessed = self.store.known_slot(
                self.partition,
                NOW,
                self.state,
                now,
                lasting=False,
                max_history_turns=WINDOW,
                replace_last=replace_last,
                replace_only=replace_only,
            )
            if guessed.recent is not None and apply(self.store, self.store.check(guessed, now, exact=True)):
                read = self.store.plan_turn(
                    self.partition, NOW, WINDOW, now, replace_last=replace_last, replace_only=replace_only
                )
                assert read is not None
                assert comparable(guessed) == comparable(read)  # its title too: a rename fails the check
                self.served += 1
                return guessed
        taken = take_slot(
            self.store,
            self.partition,
            NOW,
            WINDOW,
            now=now,
            replace_last=replace_last,
            replace_only=replace_only,
        )
        assert taken is not None
        self.state = known(taken)
        return taken

    def turn(
        self, now: float, text: str, *, replace_last: bool = False, meanwhile: Container | None = None
    ) -> None:
        """A turn; `meanwhile`, another container's turn saved while this one's reply is written."""
        slot = self.slot(now, replace_last=replace_last)
        if meanwhile is not None:
            meanwhile.turn(now + 0.5, f"{text} meanwhile")
        saved = self.store.save_turn(slot, Turn(text, f"re {text}"), now=now + 0.6, title=text)
        self.state = saved.state


def test_what_a_container_knows_is_what_a_read_finds_whenever_the_check_holds(
    store: ConversationStore,
) -> None:
    """Random turns, regenerates, other containers' turns, renames and resets: every slot taken from
    what was known equals the read's, and a change made elsewhere always fails the check."""
    for seed in range(4):  # short walks: make mutation runs this once per mutant of the store
        rng = random.Random(seed)
        partition = f"walk{seed}"  # the default conversation of an anonymous session: the idle check too
        mine, theirs = Container(store, partition), Container(store, partition)
        now = float(NOW)
        for step in range(24):
            now += 1
            action = rng.choice(["mine", "mine", "mine", "regenerate", "theirs", "race", "rename", "reset"])
            if action in ("mine", "race"):
                mine.turn(now, f"{seed}.{step}", meanwhile=theirs if action == "race" else None)
            elif action == "regenerate":
                mine.turn(
                    now, f"{seed}.{step} again", replace_last=True, meanwhile=rng.choice([None, theirs])
                )
            elif action == "theirs":
                theirs.turn(now, f"{seed}.{step} elsewhere")
            elif action == "rename":
                record = store.load(partition, NOW)
                store.rename(record, f"renamed {step}")
            else:
                store.reset(store.load(partition, NOW), now)
        assert mine.served > 0  # the walk took slots from what was known, not only from reads


def test_a_regenerate_from_what_is_known_replaces_the_newest_turn_and_sends_the_rest(
    store: ConversationStore,
) -> None:
    mine = Container(store, "s1")
    for number in range(6):
        mine.turn(NOW + number, f"u{number}")
    slot = mine.slot(NOW + 10, replace_last=True)
    assert mine.served == 6  # every turn after the first read, and this one
    assert [turn.user for turn in slot.history] == ["u2", "u3", "u4"]  # the window's start moved by 2
    newest = mine.state.recent.turns[0] if mine.state and mine.state.recent else None
    assert newest is not None and slot.replaces == newest.number and newest.turn.user == "u5"
    # Only the newest turn whose message is this one is replaced (AI SDK clients resend it).
    other = mine.slot(NOW + 11, replace_last=True, replace_only="not the last message")
    assert other.replaces is None and [turn.user for turn in other.history] == ["u4", "u5"]


def test_a_regenerate_whose_turn_was_gone_already_leaves_the_newest_turns_unknown(
    store: ConversationStore, aws: Any
) -> None:
    """TTL removed the turn a regenerate replaces (nothing else changed): what is left is not known."""
    mine = Container(store, "s1")
    mine.turn(NOW, "one")
    mine.turn(NOW + 1, "two")
    slot = mine.slot(NOW + 2, replace_last=True)
    assert slot.replaces is not None and slot.recent is not None
    gone = {"pk": {"S": "S#s1"}, "sk": {"S": _turn_sk(slot.generation, slot.replaces)}}
    aws.delete_item(TableName=os.environ["TABLE_NAME"], Key=gone)
    saved = store.save_turn(slot, Turn("two again", "r"), now=NOW + 3)
    assert saved.state is not None and saved.state.turns == 3 and saved.state.recent is None


def test_a_change_elsewhere_fails_the_check_of_what_was_known(store: ConversationStore) -> None:
    mine, theirs = Container(store, "s1"), Container(store, "s1")
    mine.turn(NOW, "one")
    stale = mine.state
    theirs.turn(NOW + 1, "two")
    assert stale is not None and stale.recent is not None
    slot = store.known_slot("s1", NOW, stale, NOW + 2, lasting=False, max_history_turns=WINDOW)
    assert [turn.user for turn in slot.history] == ["one"]  # what was known: not "two"
    assert not apply(store, store.check(slot, NOW + 2, exact=True))


def test_newest_turns_serve_only_as_deep_as_known_and_until_one_expires() -> None:
    turns = tuple(NumberedTurn(number, 1000 + number, Turn(f"u{number}", "a")) for number in (9, 8, 7))
    recent = Recent(3, turns, 4)
    assert recent.serves(3, now=1000) and not recent.serves(4, now=1000)
    assert not recent.serves(3, now=1007)  # the third newest expired: DynamoDB may have removed it
    assert recent.serves(2, now=1007)  # what a read of two would find has not
    assert Recent(1 << 30, (), 4).serves(10, now=0)  # a generation with no turn: all of them known


def test_a_save_adds_its_turn_before_the_known_ones_and_keeps_no_more_than_the_limit() -> None:
    turns = tuple(NumberedTurn(number, 0, Turn(f"u{number}", "a")) for number in (9, 8, 7, 6))
    recent = Recent(4, turns, 4)
    new = NumberedTurn(10, 0, Turn("u10", "a"))
    assert recent.after_save(new, None) == Recent(4, (new, *turns[:3]), 4)
    assert Recent(2, turns[:2], 4).after_save(new, None) == Recent(3, (new, *turns[:2]), 4)
    # A regenerate replaces the newest: as deep as before, the replaced one gone.
    assert recent.after_save(new, 9) == Recent(4, (new, *turns[1:]), 4)
    assert recent.after_save(new, 8) is None  # not the newest known: cannot say what is left
    assert Recent(4, (), 4).after_save(new, 9) is None
    # Another container's clock ran ahead: the saved turn would not sort first.
    assert recent.after_save(NumberedTurn(9, 0, Turn("late", "a")), None) is None


def test_the_warm_conversations_keep_their_turns_only_within_a_bound(
    store: ConversationStore, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    import claude_chat.sessions as sessions_module

    monkeypatch.setattr(sessions_module, "_WARM_TURN_CHARS", 100)
    sessions = Sessions(SessionTokens("k" * 32, MAX_AGE), store, pool)
    big = Recent(1, (NumberedTurn(1, 0, Turn("x" * 30, "y" * 30)),), 2)
    for name in ("a", "b", "c"):
        sessions.remember(name, Known(1, 1, None, 1, "t", big))
    # The least recently used lose their turns first, and keep what they know of META.
    assert [sessions._warm[name].recent is not None for name in "abc"] == [False, False, True]
    assert sessions._warm["a"] == Known(1, 1, None, 1, "t")
    assert sessions._warm_chars == 60
    sessions.remember("c", None)
    assert "c" not in sessions._warm and sessions._warm_chars == 0


def _fails(store: ConversationStore, monkeypatch: pytest.MonkeyPatch, call: str) -> None:
    """One of a careful save's calls fails as DynamoDB fails once botocore's retries are spent: META's
    count (the turn's item, and the deletion of the turn it replaces, written before it), or the
    deletion (the item written beside it)."""
    from botocore.exceptions import ClientError

    def throttled(*_: Any, **__: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
            "UpdateItem",
        )

    monkeypatch.setattr(store, call, throttled)


@pytest.mark.parametrize(
    ("regenerate", "failing"),
    [(True, "_count_turn"), (False, "_count_turn"), (True, "_delete_turn")],
)
def test_a_save_that_failed_after_writing_its_turn_items_fails_the_check_of_what_was_known(
    store: ConversationStore, monkeypatch: pytest.MonkeyPatch, regenerate: bool, failing: str
) -> None:
    """A careful save writes the turn item (and deletes the one a regenerate replaces) before META's
    count; when that count fails, the turn items are not what they were, though META's `rev` says
    nothing changed. What any container knew before must no longer hold: its history is not the read's."""
    from claude_chat.conversation_store import CarefulSaveFailed

    mine, theirs = Container(store, "s1"), Container(store, "s1")
    for number in range(3):
        mine.turn(NOW + number, f"u{number}")
    theirs.state = mine.state  # another container that knew the same, as after a read
    slot = mine.slot(NOW + 5, replace_last=regenerate)
    store.rename(store.load("s1", NOW), "Renamed")  # the one-call save refuses: the careful way
    _fails(store, monkeypatch, failing)
    text = "u2 again" if regenerate else "u3"
    with pytest.raises(CarefulSaveFailed):
        store.save_turn(slot, Turn(text, "r"), now=NOW + 6)
    monkeypatch.undo()
    for _ in range(100):  # the item's write, sent beside the call that failed, lands
        if text in [turn.user for turn in store.all_turns(store.load("s1", NOW))]:
            break
        time.sleep(0.01)
    assert theirs.state is not None
    guessed = store.known_slot("s1", NOW, theirs.state, NOW + 7, lasting=False, max_history_turns=WINDOW)
    read = store.plan_turn("s1", NOW, WINDOW, NOW + 7)
    assert read is not None
    if apply(store, store.check(guessed, NOW + 7, exact=True)):
        assert [turn.user for turn in guessed.history] == [turn.user for turn in read.history]


def test_the_bound_on_the_warm_conversations_counts_their_turns_citations_and_files(
    store: ConversationStore, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A turn item keeps up to CITATIONS_MAX_BYTES of citations besides its text, and its files'
    references: a short reply that cites forty thousand bytes holds them all in memory while its
    conversation is warm, so they count toward what the warm conversations may keep."""
    import claude_chat.sessions as sessions_module
    from claude_chat.attachments import Attachment

    monkeypatch.setattr(sessions_module, "_WARM_TURN_CHARS", 150_000)  # two such turns
    sessions = Sessions(SessionTokens("k" * 32, MAX_AGE), store, pool)
    cited = tuple(
        {"cited_text": "c" * 400, "url": f"https://example.com/{n}", "title": "t"} for n in range(90)
    )
    files = tuple(Attachment(f"id{n}", "n" * 200, "image/png", 1, 1, 1) for n in range(5))
    turn = Turn("u", "a", attachments=files, citations=cited)
    recent = Recent(1, (NumberedTurn(1, 0, turn),), 2)
    assert 40_000 < recent.chars <= 75_000  # what the turn item holds: its citations and files
    for name in ("a", "b", "c"):
        sessions.remember(name, Known(1, 1, None, 1, "t", recent))
    assert [sessions._warm[name].recent is not None for name in "abc"] == [False, True, True]


def test_a_save_that_failed_after_writing_its_item_leaves_no_billed_context_to_price_on(
    store: ConversationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The item a failed careful save wrote is read as the newest turn, and sent: what Claude billed
    for the turn before it (META's `ctx`) bounds a history without it, so it must bound nothing now."""
    from claude_chat.conversation_store import CarefulSaveFailed

    first = take_slot(store, "s1", NOW, WINDOW, now=NOW)
    assert first is not None
    store.save_turn(first, Turn("short", "r"), now=NOW + 1, billed=(20, "fp"))
    second = take_slot(store, "s1", NOW, WINDOW, now=NOW + 2)
    assert second is not None and second.context is not None  # priced on what Claude billed
    store.rename(store.load("s1", NOW), "Renamed")  # the careful way
    _fails(store, monkeypatch, "_count_turn")
    with pytest.raises(CarefulSaveFailed):
        store.save_turn(second, Turn("long " * 10_000, "r"), now=NOW + 3, billed=(50_000, "fp"))
    monkeypatch.undo()
    read = store.plan_turn("s1", NOW, WINDOW, NOW + 4)
    assert read is not None and "long " in [turn.user[:5] for turn in read.history]  # sent, never billed
    assert read.context is None
