"""The rate-limit key of a caller: IPv4 whole, IPv6 by prefix, IPv4-mapped as IPv4, junk never a key."""

from __future__ import annotations

import copy
import logging

import pytest
from pydantic import ValidationError

from claude_chat.client_key import UNPARSED_KEY, client_key
from claude_chat.settings import Settings


@pytest.mark.parametrize(
    ("source_ip", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("198.51.100.255", "198.51.100.255"),
        ("0.0.0.0", "0.0.0.0"),
        (" 203.0.113.7 ", "203.0.113.7"),
    ],
)
def test_an_ipv4_address_is_its_own_key(source_ip: str, key: str) -> None:
    assert client_key(source_ip, 56) == key


def test_neighbouring_ipv4_addresses_have_different_keys() -> None:
    assert client_key("203.0.113.7", 56) != client_key("203.0.113.8", 56)


@pytest.mark.parametrize(
    ("source_ip", "prefix", "key"),
    [
        ("2001:db8:1234:5678:9abc:def0:1234:5678", 56, "2001:db8:1234:5600::/56"),
        ("2001:db8:1234:56ff:ffff:ffff:ffff:ffff", 56, "2001:db8:1234:5600::/56"),
        ("2001:db8:1234:5678:9abc:def0:1234:5678", 64, "2001:db8:1234:5678::/64"),
        ("2001:db8:1234:5678:9abc:def0:1234:5678", 48, "2001:db8:1234::/48"),
        ("2001:db8:1234:5678:9abc:def0:1234:5678", 60, "2001:db8:1234:5670::/60"),
        ("2001:db8:1234:5678:9abc:def0:1234:5678", 128, "2001:db8:1234:5678:9abc:def0:1234:5678/128"),
        ("2001:db8::1", 1, "::/1"),
        ("8001:db8::1", 1, "8000::/1"),
        ("::1", 56, "::/56"),
        ("::1", 128, "::1/128"),
    ],
)
def test_an_ipv6_address_is_keyed_by_its_prefix(source_ip: str, prefix: int, key: str) -> None:
    assert client_key(source_ip, prefix) == key


def test_every_address_of_one_slash_56_shares_a_key_and_the_next_slash_56_does_not() -> None:
    inside = {client_key(f"2001:db8:1234:56{n:02x}::{n + 1:x}", 56) for n in range(256)}
    assert inside == {"2001:db8:1234:5600::/56"}
    assert client_key("2001:db8:1234:5700::1", 56) == "2001:db8:1234:5700::/56"
    assert client_key("2001:db8:1234:55ff::1", 56) == "2001:db8:1234:5500::/56"


def test_prefix_128_keeps_every_address_apart_and_prefix_1_splits_the_space_in_two() -> None:
    assert client_key("2001:db8::1", 128) != client_key("2001:db8::2", 128)
    assert client_key("2001:db8::1", 1) == client_key("7fff::1", 1) != client_key("8000::", 1)


@pytest.mark.parametrize(
    "spelling",
    [
        "2001:db8:1234:5678::1",
        "2001:DB8:1234:5678::1",
        "2001:0db8:1234:5678:0000:0000:0000:0001",
        "2001:db8:1234:5678:0:0:0:1",
        "2001:db8:1234:5678::1%eth0",
        "2001:db8:1234:5678::1%25",
        "2001:db8:1234:5678::0.0.0.1",
    ],
)
def test_every_spelling_of_an_ipv6_address_gives_the_same_key(spelling: str) -> None:
    assert client_key(spelling, 56) == "2001:db8:1234:5600::/56"
    assert client_key(spelling, 128) == "2001:db8:1234:5678::1/128"


@pytest.mark.parametrize("mapped", ["::ffff:203.0.113.7", "::FFFF:203.0.113.7", "::ffff:cb00:7107"])
def test_an_ipv4_mapped_address_is_the_ipv4_client_it_maps(mapped: str) -> None:
    for prefix in (1, 56, 96, 128):
        assert client_key(mapped, prefix) == "203.0.113.7"


def test_mapped_neighbours_are_two_clients_not_one_ipv6_network() -> None:
    # Keyed as IPv6 they would share ::ffff:0:0/96 (and so one budget) with every IPv4 client.
    assert client_key("::ffff:127.0.0.2", 56) == "127.0.0.2"
    assert client_key("::ffff:127.0.0.3", 56) == "127.0.0.3"


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "   ",
        "unknown",
        "not-an-ip",
        "010.0.0.1",  # leading zeros: ambiguous (octal?), so refused rather than guessed
        "203.0.113.7, 198.51.100.1",  # an X-Forwarded-For-like list
        "203.0.113.7:443",
        "[2001:db8::1]",
        "2001:db8::1/56",
        "256.0.0.1",
        "2001:db8::g",
        "x" * 10_000,
    ],
)
def test_anything_that_is_not_an_ip_shares_one_fixed_key(junk: str) -> None:
    assert client_key(junk, 56) == UNPARSED_KEY


def test_an_unparsed_source_is_logged_with_the_key_it_shares_and_never_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="claude_chat.client_key"):
        assert client_key("client-<script>", 56) == UNPARSED_KEY
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            "claude_chat.client_key",
            logging.WARNING,
            "sourceIp is not an IP address; it shares the key 'unparsed-source-ip'",
        )
    ]


def test_a_malformed_source_never_becomes_its_own_key() -> None:
    keys = {client_key(f"client-{n}", 56) for n in range(50)}
    assert keys == {UNPARSED_KEY}


@pytest.mark.parametrize("prefix", [0, 129, -1])
def test_a_prefix_outside_1_to_128_is_refused(prefix: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.128"):
        client_key("2001:db8::1", prefix)


def test_the_setting_defaults_to_56_and_accepts_only_1_to_128(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RATE_LIMIT_IPV6_PREFIX", raising=False)
    assert Settings().rate_limit_ipv6_prefix == 56
    monkeypatch.setenv("RATE_LIMIT_IPV6_PREFIX", "64")
    assert Settings().rate_limit_ipv6_prefix == 64
    for bad in ("0", "129"):
        monkeypatch.setenv("RATE_LIMIT_IPV6_PREFIX", bad)
        with pytest.raises(ValidationError):
            Settings()


def test_there_is_no_proxy_trust_setting_left() -> None:
    assert "trusted_proxy_hops" not in Settings.model_fields


def test_client_ip_uses_the_source_ip_and_never_a_header(monkeypatch: pytest.MonkeyPatch, events) -> None:
    from claude_chat import caller

    monkeypatch.setattr(caller, "get_settings", lambda: Settings(rate_limit_ipv6_prefix=48))
    event = copy.deepcopy(events["chat"])
    event["requestContext"]["http"]["sourceIp"] = "2001:db8:aaaa:bbbb::7"
    event["headers"].update(
        {"x-forwarded-for": "198.51.100.77", "x-real-ip": "198.51.100.78", "forwarded": "for=198.51.100.79"}
    )
    assert caller.client_ip(event) == "2001:db8:aaaa::/48"
    assert caller.client_ip_of("::ffff:198.51.100.5", event["headers"]) == "198.51.100.5"
    assert caller.client_ip_of("2001:db8:aaaa:bbbb::7") == "2001:db8:aaaa::/48"
