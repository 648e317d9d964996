"""Session tokens: unguessable, tamper-evident, bounded in age."""

from __future__ import annotations

import base64
import time

import pytest

from claude_chat.session_tokens import SessionTokens


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
