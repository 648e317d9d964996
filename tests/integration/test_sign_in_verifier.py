"""Bearer tokens verified against a real (local) OpenID provider's discovery document and keys.

A small HTTP server on 127.0.0.1 publishes the discovery document and a key set
the test can change (rotation) and counts the fetches; tokens are minted with
PyJWT from keys made with `cryptography`. The verifier's clock for refetch
timing is a fake one, so the 30 s bounds are tested without waiting.

What the verifier decides about a token is tested fast in tests/unit/test_sign_in.py
(against a fake fetch); here is what needs a provider over HTTP.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import ValidationError

from claude_chat import sign_in
from claude_chat.errors import Unauthorized
from claude_chat.settings import Settings
from claude_chat.sign_in import TokenVerifier

AUDIENCE = "chat-client"
KEYS_MAX_AGE_SECONDS = 300  # the key set is fetched again once five minutes old


class Clock:
    """The verifier's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Provider:
    """Discovery document and JWKS on 127.0.0.1:<free port>; keys, faults and fetch counts are the test's."""

    def __init__(self) -> None:
        self.private: dict[str, Any] = {}
        self.published: list[str] = []
        self.extra_keys: list[dict[str, Any]] = []  # raw JWKs published as they are
        self.fetches = {"discovery": 0, "jwks": 0}
        self.jwks_body: bytes | None = None  # when set, served instead of the key set
        self.jwks_status = 200
        self.discovery_overrides: dict[str, Any] = {}
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    provider.fetches["discovery"] += 1
                    body = json.dumps(
                        {
                            "issuer": provider.issuer,
                            "jwks_uri": provider.issuer + "/jwks",
                            **provider.discovery_overrides,
                        }
                    ).encode()
                    status = 200
                elif self.path == "/jwks":
                    provider.fetches["jwks"] += 1
                    body = provider.jwks_body if provider.jwks_body is not None else provider.key_set()
                    status = provider.jwks_status
                else:
                    body, status = b"{}", 404
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def add_rsa(self, kid: str, bits: int = 2048) -> None:
        self.private[kid] = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        self.published.append(kid)

    def add_ec(self, kid: str) -> None:
        self.private[kid] = ec.generate_private_key(ec.SECP256R1())
        self.published.append(kid)

    def key_set(self) -> bytes:
        keys = []
        for kid in self.published:
            key = self.private[kid]
            if isinstance(key, rsa.RSAPrivateKey):
                jwk, alg = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "RS256"
            else:
                jwk, alg = ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "ES256"
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        return json.dumps({"keys": keys + self.extra_keys}).encode()

    def public_pem(self, kid: str) -> bytes:
        return (
            self.private[kid]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "alice-123",
            "iat": now,
            "exp": now + 300,
            "cognito:groups": ["pro", "beta"],
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def token(self, kid: str = "rsa-1", algorithm: str | None = None, **changes: Any) -> str:
        key = self.private[kid]
        algorithm = algorithm or ("RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256")
        return jwt.encode(self.claims(**changes), key, algorithm=algorithm, headers={"kid": kid})

    def raw_token(self, claims: dict[str, Any], kid: str = "rsa-1") -> str:
        """An RS256 token signed as PyJWT would, but with claims PyJWT refuses to encode."""
        key = self.private[kid]
        return forge(
            {"alg": "RS256", "typ": "JWT", "kid": kid},
            claims,
            lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def provider_keys() -> dict[str, Any]:
    """Key generation is the slow part: one RSA and one EC key for the whole module."""
    return {
        "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec-1": ec.generate_private_key(ec.SECP256R1()),
    }


@pytest.fixture
def provider(provider_keys: dict[str, Any]) -> Iterator[Provider]:
    served = Provider()
    served.private.update(provider_keys)
    served.published += ["rsa-1", "ec-1"]
    yield served
    served.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(provider: Provider, clock: Clock) -> TokenVerifier:
    return TokenVerifier(provider.issuer, AUDIENCE, clock=clock, http_timeout=1.0)


def refused(verifier: TokenVerifier, token: str | None) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    return caught.value


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64(signature)}"


# --------------------------------------------------------------------------- admitted


# --------------------------------------------------------------------------- time


def test_a_token_without_exp_is_refused(verifier: TokenVerifier, provider: Provider) -> None:
    refused(verifier, provider.token(exp=None))


@pytest.mark.parametrize("leeway", [-1, 61, 3600])
def test_more_than_60_seconds_of_leeway_is_refused_at_construction(provider: Provider, leeway: int) -> None:
    with pytest.raises(ValueError, match="leeway"):
        TokenVerifier(provider.issuer, AUDIENCE, leeway_seconds=leeway)


# --------------------------------------------------------------------------- issuer, audience, subject


@pytest.mark.parametrize("subject", [None, "", "  ", 42])
def test_a_missing_or_empty_subject_is_refused(
    verifier: TokenVerifier, provider: Provider, subject: Any
) -> None:
    refused(verifier, provider.token(sub=subject))


# --------------------------------------------------------------------------- algorithms and forgeries


def test_an_oversized_token_is_refused_even_when_genuine(verifier: TokenVerifier, provider: Provider) -> None:
    assert verifier.verify(provider.token(padding="x" * 10_000))
    refused(verifier, provider.token(padding="x" * 13_000))  # over 16 KB once base64-encoded


def test_a_signature_from_another_key_with_the_same_kid_is_refused(
    verifier: TokenVerifier, provider: Provider
) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(verifier, jwt.encode(provider.claims(), impostor, algorithm="RS256", headers={"kid": "rsa-1"}))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b.c",
        "a.b",
        "....",
        pytest.param("x" * 20_000, id="20000-chars"),
        "é.é.é",
        "eyJhbGciOiJSUzI1NiJ9.e30.",
        "null.null.null",
    ],
)
def test_a_garbled_token_is_refused(verifier: TokenVerifier, token: str) -> None:
    refused(verifier, token)


def test_the_raw_signer_makes_tokens_the_verifier_accepts(
    verifier: TokenVerifier, provider: Provider
) -> None:
    assert verifier.verify(provider.raw_token(provider.claims()))


def test_a_token_without_a_kid_is_refused(verifier: TokenVerifier, provider: Provider) -> None:
    refused(verifier, jwt.encode(provider.claims(), provider.private["rsa-1"], algorithm="RS256"))


# --------------------------------------------------------------------------- the Authorization header


# ---------------------------------------------------------------------- keys: caching, unknown kid, rotation


# --------------------------------------------------------------------------- a broken or unreachable provider


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_discovery_endpoint_is_a_quick_401(provider: Provider, clock: Clock) -> None:
    verifier = TokenVerifier(f"http://127.0.0.1:{closed_port()}", AUDIENCE, clock=clock)
    token = provider.token("rsa-1")
    started = time.monotonic()
    error = refused(verifier, token)
    assert error.token_presented
    assert time.monotonic() - started < 1.0
    assert verifier.warm() is False  # within 30 s of the failed attempt: no new attempt


def test_a_hanging_discovery_endpoint_is_a_401_within_the_timeout(provider: Provider, clock: Clock) -> None:
    with socket.socket() as hanging:  # accepts connections (backlog) and never answers
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(8)
        verifier = TokenVerifier(
            f"http://127.0.0.1:{hanging.getsockname()[1]}", AUDIENCE, http_timeout=0.3, clock=clock
        )
        started = time.monotonic()
        refused(verifier, provider.token("rsa-1"))
        elapsed = time.monotonic() - started
    assert 0.25 < elapsed < 1.5
    # Requests inside the next 30 s do not wait on the provider again.
    started = time.monotonic()
    refused(verifier, provider.token("rsa-1"))
    assert time.monotonic() - started < 0.2


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json</html>",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'{"keys": "none"}',
        b'{"keys": []}',
        b'{"keys": [{"kty": "RSA", "kid": "rsa-1", "n": "!!", "e": "AQAB"}]}',
        b'{"keys": [null, 3, "x", {"kid": "rsa-1"}]}',
    ],
)
def test_a_broken_key_set_is_a_401(
    verifier: TokenVerifier, provider: Provider, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    provider.jwks_body = body
    with caplog.at_level(logging.INFO, logger="claude_chat.sign_in"):
        refused(verifier, provider.token("rsa-1"))
    assert any(record.levelno == logging.WARNING for record in caplog.records)


def test_a_key_set_endpoint_that_errors_is_a_401(verifier: TokenVerifier, provider: Provider) -> None:
    provider.jwks_status = 503
    refused(verifier, provider.token("rsa-1"))


def test_a_discovery_document_for_another_issuer_is_refused(
    verifier: TokenVerifier, provider: Provider
) -> None:
    provider.discovery_overrides["issuer"] = "https://evil.example"
    refused(verifier, provider.token("rsa-1"))
    assert provider.fetches["jwks"] == 0


@pytest.mark.parametrize(
    ("jwks_uri", "reason"),
    [
        ("http://keys.example/jwks", "jwks_uri must use https"),
        ("http://10.0.0.1/jwks", "jwks_uri must use https"),
        ("file://{key_set_file}", "jwks_uri must"),  # a file holding the genuine key set
        (None, "no jwks_uri"),
        (7, "no jwks_uri"),
    ],
)
def test_a_jwks_uri_that_is_not_https_or_loopback_is_refused(
    verifier: TokenVerifier,
    provider: Provider,
    jwks_uri: Any,
    reason: str,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key_set_file = tmp_path / "jwks.json"
    key_set_file.write_bytes(provider.key_set())
    if isinstance(jwks_uri, str):
        jwks_uri = jwks_uri.format(key_set_file=key_set_file)
    provider.discovery_overrides["jwks_uri"] = jwks_uri
    with caplog.at_level(logging.INFO, logger="claude_chat.sign_in"):
        refused(verifier, provider.token("rsa-1"))
    assert reason in caplog.text
    assert provider.fetches["jwks"] == 0


def test_the_log_says_why_and_never_holds_the_token(
    verifier: TokenVerifier, provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    token = provider.token("rsa-1", exp=int(time.time()) - 600)
    with caplog.at_level(logging.INFO, logger="claude_chat.sign_in"):
        refused(verifier, token)
    assert "expired" in caplog.text.lower()
    for part in token.split("."):
        assert part not in caplog.text


# --------------------------------------------------------------------------- configuration


def test_importing_the_module_does_not_load_pyjwt() -> None:
    code = (
        "import sys, claude_chat.sign_in, claude_chat.errors, claude_chat.settings;"
        "assert 'jwt' not in sys.modules and 'cryptography' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_settings_turn_sign_in_on_with_issuer_and_audience(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OIDC_ISSUER", "")  # a template parameter left empty: anonymous
    assert Settings().oidc_issuer is None
    assert sign_in.verifier_for(Settings()) is None
    monkeypatch.setenv("OIDC_ISSUER", "https://issuer.example")
    with pytest.raises(ValidationError, match="OIDC_AUDIENCE"):
        Settings()
    monkeypatch.setenv("OIDC_AUDIENCE", AUDIENCE)
    settings = Settings()
    assert (settings.oidc_issuer, settings.oidc_audience, settings.oidc_groups_claim) == (
        "https://issuer.example",
        AUDIENCE,
        "cognito:groups",
    )
    verifier = sign_in.verifier_for(settings)
    assert verifier is not None
    assert sign_in.verifier_for(Settings()) is verifier  # one per environment: its key cache is kept


@pytest.mark.parametrize(
    ("value", "parsed"),
    [(None, {}), ("", {}), ('{"pro": 2000000, "free": 0}', {"pro": 2_000_000, "free": 0})],
)
def test_group_token_budgets_are_json(
    monkeypatch: pytest.MonkeyPatch, value: str | None, parsed: dict
) -> None:
    if value is None:
        monkeypatch.delenv("GROUP_TOKEN_BUDGETS", raising=False)
    else:
        monkeypatch.setenv("GROUP_TOKEN_BUDGETS", value)
    assert Settings().group_token_budgets == parsed


@pytest.mark.parametrize(
    "value", ['{"pro": -1}', '{"pro": "5"}', '{"pro": true}', "[1]", "pro=5", '{"pro": 1.5}']
)
def test_bad_group_token_budgets_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("GROUP_TOKEN_BUDGETS", value)
    with pytest.raises(ValidationError):
        Settings()
