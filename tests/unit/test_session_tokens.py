"""Session tokens: unguessable, tamper-evident, bounded in age."""

from __future__ import annotations

import base64
import time

import pytest

from claude_chat.session_tokens import SessionToken, SessionTokens

# A token made by this code on 2026-01-01T00:00:00Z with this key, written out: changing the salt,
# the digest or the format would fail the tests that read it, as it would log every caller out.
PINNED_KEY = "pinned-signing-key"
PINNED_AT = 1_767_225_600
PINNED_TOKEN = "session-abc.aVW5AA.QBfn8HfiIWGG5LviyVQczzLmG-t4AfaSueomcmEvVN8"


@pytest.fixture
def tokens() -> SessionTokens:
    return SessionTokens("signing-key", max_age_seconds=3600)


def test_a_token_names_256_random_bits(tokens: SessionTokens) -> None:
    issued = [tokens.issue() for _ in range(50)]
    assert len({t.session_id for t in issued}) == 50
    raw = base64.urlsafe_b64decode(issued[0].session_id + "=" * (-len(issued[0].session_id) % 4))
    assert len(raw) == 32


def test_a_genuine_token_verifies_to_its_session(tokens: SessionTokens) -> None:
    issued = tokens.issue()
    verified = tokens.verify(issued.token)
    assert verified is not None
    assert (verified.session_id, verified.is_new) == (issued.session_id, False)


@pytest.mark.parametrize(
    "forge",
    [
        # The last base64 character of the signature carries padding bits, so edit one in the middle.
        lambda t: t[:-5] + ("A" if t[-5] != "A" else "B") + t[-4:],  # signature edited
        lambda t: ("y" if t.startswith("x") else "x") + t[1:],  # session id edited
        lambda t: t.split(".")[0],  # signature dropped
        lambda t: "",
        lambda t: "not-a-token",
        lambda t: t + "." + t,
        lambda t: "é" * 20,
        lambda t: "a" * 5000,
    ],
)
def test_a_forged_or_malformed_token_is_refused(tokens: SessionTokens, forge) -> None:
    assert tokens.verify(forge(tokens.issue().token)) is None


def test_a_token_signed_with_another_key_is_refused(tokens: SessionTokens) -> None:
    other = SessionTokens("another-key", max_age_seconds=3600).issue()
    assert tokens.verify(other.token) is None


def test_a_token_older_than_the_max_age_is_refused(tokens: SessionTokens, monkeypatch) -> None:
    issued = tokens.issue()
    later = time.time() + 3601
    monkeypatch.setattr(time, "time", lambda: later)
    assert tokens.verify(issued.token) is None


def test_resolve_starts_a_new_session_for_a_bad_token(tokens: SessionTokens) -> None:
    fresh = tokens.resolve("garbage")
    assert fresh.is_new
    assert tokens.verify(fresh.token) is not None


def test_a_token_naming_a_users_conversation_never_opens_it_for_an_anonymous_caller(aws) -> None:
    from claude_chat import services
    from claude_chat.sessions import user_session_id
    from claude_chat.sign_in import User

    sessions = services.sessions()
    ada, grace = User("https://id.example", "ada"), User("https://id.example", "grace")
    assert user_session_id(ada) != user_session_id(grace)
    adas = sessions.open(None, user=ada)
    assert adas.token.session_id == user_session_id(ada)
    # Her token, presented without her sign-in, opens a fresh anonymous session instead.
    stranger = sessions.open(adas.token_string)
    assert stranger.token.session_id != adas.token.session_id
    assert stranger.token.is_new
    # Signed in as someone else, the token is not even read.
    assert sessions.open(adas.token_string, user=grace).token.session_id == user_session_id(grace)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """time.time() as the test sets it (the signer's timestamps and the issue times read it)."""
    now = [float(PINNED_AT)]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


def test_a_token_signed_before_a_deploy_still_verifies_after_it(frozen: list[float]) -> None:
    """The signing salt, digest and format are pinned: a change to any would log everyone out."""
    frozen[0] = PINNED_AT + 3599
    verified = SessionTokens(PINNED_KEY, max_age_seconds=3600).verify(PINNED_TOKEN)
    assert verified == SessionToken("session-abc", PINNED_AT, PINNED_TOKEN, is_new=False)


def test_the_signer_still_makes_the_pinned_token(frozen: list[float]) -> None:
    issued = SessionTokens(PINNED_KEY, max_age_seconds=3600).issue_for("session-abc")
    assert issued == SessionToken("session-abc", PINNED_AT, PINNED_TOKEN, is_new=False)


def test_the_pinned_token_is_refused_under_another_key_or_once_too_old(frozen: list[float]) -> None:
    assert SessionTokens("another-key", max_age_seconds=3600).verify(PINNED_TOKEN) is None
    frozen[0] = PINNED_AT + 3601
    assert SessionTokens(PINNED_KEY, max_age_seconds=3600).verify(PINNED_TOKEN) is None


def test_a_new_session_says_when_it_was_issued(tokens: SessionTokens, frozen: list[float]) -> None:
    issued = tokens.issue()
    assert (issued.issued_at, issued.is_new) == (PINNED_AT, True)
    frozen[0] += 10
    assert tokens.verify(issued.token) == SessionToken(
        issued.session_id, PINNED_AT, issued.token, is_new=False
    )


def test_resolve_keeps_the_session_a_genuine_token_names(tokens: SessionTokens) -> None:
    issued = tokens.issue()
    resolved = tokens.resolve(issued.token)
    assert (resolved.session_id, resolved.token, resolved.is_new) == (issued.session_id, issued.token, False)


def test_no_token_is_none_and_resolves_to_a_new_session(tokens: SessionTokens) -> None:
    assert tokens.verify(None) is None
    assert tokens.resolve(None).is_new


def test_a_genuine_token_longer_than_256_characters_is_refused(tokens: SessionTokens) -> None:
    overhead = len(tokens.issue_for("a").token) - 1  # the timestamp, the signature and two dots
    longest = tokens.issue_for("a" * (256 - overhead))
    assert len(longest.token) == 256
    assert tokens.verify(longest.token) is not None
    too_long = tokens.issue_for("a" * (257 - overhead))
    assert len(too_long.token) == 257
    assert tokens.verify(too_long.token) is None
