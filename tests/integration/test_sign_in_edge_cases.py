"""Sign-in edge cases an adversarial review found: the verifier's key fetch.

A provider (or anything that answers on its address) that sends its response headers one byte at a
time never trips a per-read socket timeout, so `http_timeout` must bound the whole fetch, headers
included; and while one request fetches keys, another whose key is already held must not wait for it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from claude_chat.errors import Unauthorized
from claude_chat.sign_in import TokenVerifier

AUDIENCE = "chat-client"
BYTE_DELAY = 0.1  # well under the verifier's per-read timeout, so only an overall deadline stops it


class TricklingProvider:
    """Discovery and keys on loopback; `trickle` makes the key set's headers arrive byte by byte."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.trickle = False
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": provider.issuer, "jwks_uri": f"{provider.issuer}/jwks"}
                else:
                    jwk = json.loads(RSAAlgorithm.to_jwk(provider.key.public_key()))
                    body = {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}
                data = json.dumps(body).encode()
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                head += "".join(f"X-Pad-{i}: {'a' * 20}\r\n" for i in range(4)) + "\r\n"
                try:
                    if provider.trickle and self.path == "/jwks":
                        for byte in head.encode():
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(BYTE_DELAY)
                    else:
                        self.wfile.write(head.encode())
                    self.wfile.write(data)
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, kid: str = "k1", key: Any = None) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": AUDIENCE, "sub": "ada", "iat": now, "exp": now + 300}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def provider() -> Iterator[TricklingProvider]:
    provider = TricklingProvider()
    yield provider
    provider.server.shutdown()
    provider.server.server_close()


def _verify_in_thread(verifier: TokenVerifier, token: str) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            outcome["user"] = verifier.verify(token)
        except Unauthorized:
            outcome["refused"] = True
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_key_set_whose_headers_trickle_in_is_a_401_within_the_timeout(provider: TricklingProvider) -> None:
    """~200 header bytes at 0.1 s each is 20 s; the verifier promises `http_timeout` (1 s) overall."""
    provider.trickle = True
    verifier = TokenVerifier(provider.issuer, AUDIENCE, http_timeout=1.0)
    thread, outcome = _verify_in_thread(verifier, provider.token())
    thread.join(timeout=4.0)
    assert not thread.is_alive(), "the key fetch ignored http_timeout while the headers trickled in"
    assert outcome.get("refused") is True


def test_a_held_key_verifies_while_another_request_waits_on_a_key_fetch(provider: TricklingProvider) -> None:
    """A forged kid starts a fetch from a slow provider: a token whose key is held must not wait on it."""
    verifier = TokenVerifier(provider.issuer, AUDIENCE, http_timeout=1.0, refetch_seconds=0)
    assert verifier.verify(provider.token()).subject == "ada"  # warm: key k1 held
    provider.trickle = True
    forged = provider.token(kid="unknown", key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    attacker, _ = _verify_in_thread(verifier, forged)
    time.sleep(0.3)  # the forged token's fetch is under way, holding the verifier's lock
    started = time.monotonic()
    assert verifier.verify(provider.token()).subject == "ada"
    assert time.monotonic() - started < 0.5, (
        "a genuine token with a held key waited for another request's fetch"
    )
    attacker.join(timeout=0.1)
