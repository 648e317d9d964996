"""`make dev`'s HOST: the socket it listens on and the URL it prints."""

from __future__ import annotations

import socket

import pytest

from local.server import display_url, listening_socket


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:3000/"),
        ("0.0.0.0", "http://127.0.0.1:3000/"),
        ("::", "http://[::1]:3000/"),
        ("::1", "http://[::1]:3000/"),
        ("2001:db8::7", "http://[2001:db8::7]:3000/"),
        ("0:0:0:0:0:0:0:0", "http://[::1]:3000/"),
        ("localhost", "http://localhost:3000/"),
    ],
)
def test_the_printed_url_is_one_a_browser_here_can_open(host: str, url: str) -> None:
    assert display_url(host, 3000) == url


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::1", "localhost"])
def test_other_hosts_are_left_to_uvicorn(host: str) -> None:
    assert listening_socket(host) is None


@pytest.mark.skipif(not socket.has_ipv6, reason="this Python has no IPv6 support")
def test_host_unspecified_ipv6_listens_on_both_families_and_sees_ipv4_as_mapped() -> None:
    sock = listening_socket("::")
    assert sock is not None
    with sock:
        assert sock.family == socket.AF_INET6
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        sock.bind(("::", 0))
        sock.listen()
        port = sock.getsockname()[1]
        peers = []
        for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family) as client:
                client.connect((address, port))
                accepted, peer = sock.accept()
                accepted.close()
                peers.append(peer[0])
    assert peers == ["::ffff:127.0.0.1", "::1"]
