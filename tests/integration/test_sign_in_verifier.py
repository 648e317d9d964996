"""Bearer tokens verified against a real (local) OpenID provider's discovery document and keys.

A small HTTP server on 127.0.0.1 publishes the discovery document and a key set
the test can change (rotation) and counts the fetches; tokens are minted with
PyJWT from keys made with `cryptography`. The verifier's clock for refetch
timing is a fake one, so the 30 s bounds are tested without waiting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
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
from claude_chat.sign_in import TokenVerifier, User, bearer_token, group_budget

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


def test_a_valid_rs256_token_is_admitted_as_its_user(verifier: TokenVerifier, provider: Provider) -> None:
    user = verifier.verify(provider.token("rsa-1"))
    assert user == User(provider.issuer, "alice-123", ("pro", "beta"))
    digest = hashlib.sha256(f"{provider.issuer}\nalice-123".encode()).hexdigest()
    assert user.key == "user:" + digest[:32]


def test_a_valid_es256_token_is_admitted(verifier: TokenVerifier, provider: Provider) -> None:
    assert verifier.verify(provider.token("ec-1", sub="bob")).subject == "bob"


@pytest.mark.parametrize(
    ("claim", "groups"),
    [("pro", ("pro",)), ([], ()), (None, ()), (["a", 7, "", "b"], ("a", "b")), ({"pro": True}, ())],
)
def test_groups_come_from_a_list_or_one_string_of_the_claim(
    verifier: TokenVerifier, provider: Provider, claim: Any, groups: tuple[str, ...]
) -> None:
    token = provider.token(**{"cognito:groups": claim})
    assert verifier.verify(token).groups == groups


def test_the_groups_claim_is_configurable(provider: Provider, clock: Clock) -> None:
    verifier = TokenVerifier(provider.issuer, AUDIENCE, groups_claim="groups", clock=clock)
    assert verifier.verify(provider.token(groups=["staff"])).groups == ("staff",)


def test_the_user_key_is_bounded_and_holds_no_personal_data() -> None:
    keys = {
        User("https://a.example", "alice@example.com").key,
        User("https://b.example", "alice@example.com").key,
        User("https://a.example", "bob@example.com").key,
        User("https://a.example", "x" * 10_000).key,
    }
    assert len(keys) == 4
    for key in keys:
        assert re.fullmatch(r"user:[0-9a-f]{32}", key)


def test_a_cognito_access_token_with_client_id_and_no_aud_is_admitted(
    verifier: TokenVerifier, provider: Provider
) -> None:
    assert verifier.verify(provider.token(aud=None, client_id=AUDIENCE, token_use="access"))
    refused(verifier, provider.token(aud=None, client_id="another-client"))
    refused(verifier, provider.token(aud=None))
    # An `aud` that names someone else is not rescued by a matching client_id.
    refused(verifier, provider.token(aud="another-client", client_id=AUDIENCE))


def test_an_aud_list_holding_the_audience_is_admitted(verifier: TokenVerifier, provider: Provider) -> None:
    assert verifier.verify(provider.token(aud=["other", AUDIENCE]))
    refused(verifier, provider.token(aud=["other", "more"]))


# --------------------------------------------------------------------------- time


def test_an_expired_token_is_refused_with_an_invalid_token_challenge(
    verifier: TokenVerifier, provider: Provider
) -> None:
    error = refused(verifier, provider.token(exp=int(time.time()) - 120))
    assert (error.status, error.code, error.token_presented) == (401, "unauthorized", True)
    assert error.headers["WWW-Authenticate"] == 'Bearer realm="claude-chat", error="invalid_token"'


def test_expiry_within_the_leeway_is_admitted(provider: Provider, clock: Clock) -> None:
    token = provider.token(exp=int(time.time()) - 20)
    assert TokenVerifier(provider.issuer, AUDIENCE, clock=clock).verify(token)
    refused(TokenVerifier(provider.issuer, AUDIENCE, leeway_seconds=0, clock=clock), token)


def test_a_token_without_exp_is_refused(verifier: TokenVerifier, provider: Provider) -> None:
    refused(verifier, provider.token(exp=None))


def test_a_token_not_yet_valid_is_refused(verifier: TokenVerifier, provider: Provider) -> None:
    now = int(time.time())
    refused(verifier, provider.token(nbf=now + 120))
    refused(verifier, provider.token(iat=now + 120))
    assert verifier.verify(provider.token(nbf=now + 20, iat=now + 20))


@pytest.mark.parametrize("leeway", [-1, 61, 3600])
def test_more_than_60_seconds_of_leeway_is_refused_at_construction(provider: Provider, leeway: int) -> None:
    with pytest.raises(ValueError, match="leeway"):
        TokenVerifier(provider.issuer, AUDIENCE, leeway_seconds=leeway)


# --------------------------------------------------------------------------- issuer, audience, subject


@pytest.mark.parametrize(
    "issuer",
    ["https://evil.example", "{issuer}/", "{issuer}/other", "{issuer_prefix}", ["{issuer}"], None],
)
def test_a_wrong_issuer_is_refused(verifier: TokenVerifier, provider: Provider, issuer: Any) -> None:
    if isinstance(issuer, str):
        issuer = issuer.format(issuer=provider.issuer, issuer_prefix=provider.issuer[:-1])
    elif isinstance(issuer, list):
        refused(verifier, provider.raw_token(provider.claims(iss=[provider.issuer])))
        return
    refused(verifier, provider.token(iss=issuer))


@pytest.mark.parametrize("audience", ["another-client", "", AUDIENCE.upper(), 42])
def test_a_wrong_audience_is_refused(verifier: TokenVerifier, provider: Provider, audience: Any) -> None:
    refused(verifier, provider.token(aud=audience))


@pytest.mark.parametrize("subject", [None, "", "  ", 42])
def test_a_missing_or_empty_subject_is_refused(
    verifier: TokenVerifier, provider: Provider, subject: Any
) -> None:
    refused(verifier, provider.token(sub=subject))


# --------------------------------------------------------------------------- algorithms and forgeries


def test_alg_none_is_refused(verifier: TokenVerifier, provider: Provider) -> None:
    claims = provider.claims()
    for alg in ("none", "None", "NONE"):
        refused(verifier, forge({"alg": alg, "typ": "JWT", "kid": "rsa-1"}, claims))
    refused(verifier, jwt.encode(claims, None, algorithm="none", headers={"kid": "rsa-1"}))


def test_hs256_signed_with_the_public_key_is_refused(verifier: TokenVerifier, provider: Provider) -> None:
    claims = provider.claims()
    for secret in (provider.public_pem("rsa-1"), provider.public_pem("ec-1")):
        for kid in ("rsa-1", "ec-1"):

            def sign(data: bytes, secret: bytes = secret) -> bytes:
                return hmac.new(secret, data, hashlib.sha256).digest()

            refused(verifier, forge({"alg": "HS256", "typ": "JWT", "kid": kid}, claims, sign))


def test_a_published_symmetric_key_is_never_used(
    verifier: TokenVerifier, provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    secret = b"a-shared-secret-that-was-published-by-mistake"
    provider.extra_keys.append({"kty": "oct", "kid": "oct-1", "k": b64(secret)})
    claims = provider.claims()

    def sign(data: bytes) -> bytes:
        return hmac.new(secret, data, hashlib.sha256).digest()

    refused(verifier, forge({"alg": "HS256", "kid": "oct-1"}, claims, sign))
    with caplog.at_level(logging.INFO, logger="claude_chat.sign_in"):
        refused(verifier, forge({"alg": "RS256", "kid": "oct-1"}, claims, sign))
    assert "unknown key id" in caplog.text  # the symmetric key was never taken into the key set


def test_the_algorithm_must_match_the_keys_type(
    verifier: TokenVerifier, provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    # An EC-signed token that names the RSA key's id, and the other way round.
    ec_signed = jwt.encode(
        provider.claims(), provider.private["ec-1"], algorithm="ES256", headers={"kid": "rsa-1"}
    )
    rsa_signed = jwt.encode(
        provider.claims(), provider.private["rsa-1"], algorithm="RS256", headers={"kid": "ec-1"}
    )
    with caplog.at_level(logging.INFO, logger="claude_chat.sign_in"):
        refused(verifier, ec_signed)
        refused(verifier, rsa_signed)
    # Refused by the verifier's own check, before PyJWT's (which would refuse it too).
    assert caplog.text.count("but its key is for") == 2
    # Other RSA algorithms are refused even with the right key.
    refused(verifier, provider.token("rsa-1", algorithm="RS512"))
    refused(verifier, provider.token("rsa-1", algorithm="PS256"))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # PyJWT's, when minting
def test_a_refused_algorithm_costs_no_key_fetch(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    verifier.verify(provider.token("rsa-1"))
    clock.advance(31)
    claims = provider.claims()
    refused(verifier, forge({"alg": "none", "kid": "forged-1"}, claims))
    refused(
        verifier, forge({"alg": "HS256", "kid": "forged-2"}, claims, lambda d: hmac.digest(b"k", d, "sha256"))
    )
    refused(verifier, provider.token("rsa-1", algorithm="RS384"))
    assert provider.fetches["jwks"] == 1


def test_an_oversized_token_is_refused_even_when_genuine(verifier: TokenVerifier, provider: Provider) -> None:
    assert verifier.verify(provider.token(padding="x" * 10_000))
    refused(verifier, provider.token(padding="x" * 13_000))  # over 16 KB once base64-encoded


def test_an_unexpected_error_is_a_401_not_a_500(
    verifier: TokenVerifier, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a defect")

    monkeypatch.setattr(jwt, "decode", broken)
    refused(verifier, provider.token("rsa-1"))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # PyJWT's, when minting
def test_an_rsa_key_shorter_than_2048_bits_is_ignored(provider: Provider, clock: Clock) -> None:
    provider.add_rsa("rsa-weak", bits=1024)
    verifier = TokenVerifier(provider.issuer, AUDIENCE, clock=clock)
    refused(verifier, provider.token("rsa-weak"))
    assert verifier.verify(provider.token("rsa-1"))


def test_a_tampered_payload_is_refused(verifier: TokenVerifier, provider: Provider) -> None:
    token = provider.token("rsa-1")
    header, _payload, signature = token.split(".")
    for changed in (provider.claims(sub="mallory"), provider.claims(**{"cognito:groups": ["admin"]})):
        refused(verifier, f"{header}.{b64(json.dumps(changed).encode())}.{signature}")
    assert verifier.verify(token)  # the untouched token still passes: the edit is what was refused


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


def test_no_token_is_refused_with_the_bare_challenge(verifier: TokenVerifier) -> None:
    error = refused(verifier, None)
    assert error.token_presented is False
    assert error.headers["WWW-Authenticate"] == 'Bearer realm="claude-chat"'
    assert error.body() == {"error": "Sign in to use this chat.", "code": "unauthorized"}


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ("Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
        ("bearer abc", "abc"),
        ("BEARER  abc==", "abc=="),
        ("  Bearer a+b/c~  ", "a+b/c~"),
    ],
)
def test_the_bearer_token_is_read_from_the_authorization_header(value: str, token: str) -> None:
    assert bearer_token({"authorization": value}) == token


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": ""},
        {"authorization": "Bearer"},
        {"authorization": "Bearer "},
        {"authorization": "Basic dXNlcjpwYXNz"},
        {"authorization": "Bearer a b"},
        {"authorization": "Bearer abc, Bearer def"},
        {"authorization": "Bearerabc"},
        {"authorization": "Bearer ab\u00e9c"},
        {"authorization": "Bearer =abc"},
        {"x-authorization": "Bearer abc"},
    ],
)
def test_a_missing_or_garbled_authorization_header_has_no_token(headers: dict[str, str]) -> None:
    assert bearer_token(headers) is None


# ---------------------------------------------------------------------- keys: caching, unknown kid, rotation


def test_a_warm_verifier_makes_no_network_call(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    token = provider.token("rsa-1")
    for _ in range(20):
        verifier.verify(token)
        clock.advance(10)  # 200 s: still inside the key set's five minutes
    assert provider.fetches == {"discovery": 1, "jwks": 1}


def test_warm_fetches_the_keys_ahead_of_the_first_request(
    verifier: TokenVerifier, provider: Provider
) -> None:
    assert verifier.warm() is True
    verifier.verify(provider.token("rsa-1"))
    assert provider.fetches == {"discovery": 1, "jwks": 1}


def test_an_unknown_kid_is_refused_after_one_refetch(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    verifier.verify(provider.token("rsa-1"))
    clock.advance(31)
    provider.add_rsa("never-published")
    provider.published.remove("never-published")
    refused(verifier, provider.token("never-published"))
    assert provider.fetches == {"discovery": 1, "jwks": 2}


def test_a_flood_of_unknown_kids_costs_one_fetch_per_30_seconds(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    verifier.verify(provider.token("rsa-1"))
    claims = provider.claims()
    for round_ in range(3):
        clock.advance(30)
        for n in range(50):
            forged = jwt.encode(
                claims, provider.private["rsa-1"], algorithm="RS256", headers={"kid": f"f{n}"}
            )
            refused(verifier, forged)
            clock.advance(0.1)  # 5 s of flood in each round
        assert provider.fetches["jwks"] == 2 + round_
    assert provider.fetches["discovery"] == 1


def test_many_threads_naming_unknown_kids_cost_one_fetch(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    verifier.verify(provider.token("rsa-1"))
    clock.advance(31)
    claims = provider.claims()
    tokens = [
        jwt.encode(claims, provider.private["rsa-1"], algorithm="RS256", headers={"kid": f"t{n}"})
        for n in range(16)
    ]
    errors: list[BaseException] = []

    def call(token: str) -> None:
        try:
            verifier.verify(token)
        except Unauthorized as error:
            errors.append(error)

    threads = [threading.Thread(target=call, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 16
    assert provider.fetches["jwks"] == 2


def test_a_rotated_key_is_picked_up_and_the_removed_one_refused(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    old = provider.token("rsa-1")
    verifier.verify(old)
    # The provider publishes a new key and signs with it: its unknown kid triggers a refetch.
    clock.advance(30)
    provider.add_rsa("rsa-2")
    assert verifier.verify(provider.token("rsa-2")).subject == "alice-123"
    assert provider.fetches["jwks"] == 2
    assert verifier.verify(old)  # both published: both good
    # The old key is withdrawn; the next refetch (another new kid) drops it.
    provider.published.remove("rsa-1")
    clock.advance(30)
    provider.add_ec("ec-2")
    assert verifier.verify(provider.token("ec-2"))
    refused(verifier, old)
    assert verifier.verify(provider.token("rsa-2"))


def test_a_removed_key_is_refused_once_the_key_set_is_five_minutes_old(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    old = provider.token("rsa-1")
    verifier.verify(old)
    provider.published.remove("rsa-1")
    clock.advance(KEYS_MAX_AGE_SECONDS - 1)
    assert verifier.verify(old)  # no reason to fetch yet
    clock.advance(1)
    refused(verifier, old)
    assert provider.fetches["jwks"] == 2
    assert verifier.verify(provider.token("ec-1"))


def test_a_clock_that_went_back_refetches_rather_than_trusting_old_keys_forever(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    old = provider.token("rsa-1")
    verifier.verify(old)
    provider.published.remove("rsa-1")
    clock.advance(-3600)  # e.g. a copy restored from a snapshot on another host
    refused(verifier, old)
    assert provider.fetches["jwks"] == 2


def test_the_keys_held_keep_working_while_the_provider_is_down(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    token = provider.token("rsa-1")
    verifier.verify(token)
    provider.jwks_status = 500
    clock.advance(KEYS_MAX_AGE_SECONDS + 1)
    assert verifier.verify(token)  # the failed refresh kept the old keys
    assert verifier.verify(token)  # and the next attempt waits 30 s
    assert provider.fetches["jwks"] == 2
    provider.jwks_status = 200
    clock.advance(30)
    assert verifier.verify(token)
    assert provider.fetches["jwks"] == 3


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


@pytest.mark.parametrize(
    "issuer",
    [
        "http://example.com",
        "http://10.0.0.1",
        "http://[::2]",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
        "ftp://127.0.0.1",
        "https://",
        "https://example.com?tenant=1",
        "https://user@example.com",
        "example.com",
    ],
)
def test_an_issuer_that_is_not_https_or_loopback_is_refused_at_construction(issuer: str) -> None:
    with pytest.raises(ValueError, match="OIDC_ISSUER"):
        TokenVerifier(issuer, AUDIENCE)


@pytest.mark.parametrize(
    "issuer",
    [
        "https://example.com",
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
        "http://localhost:8080",
        "http://127.0.0.5",
        "http://[::1]:9000/realms/x",
    ],
)
def test_https_issuers_and_loopback_http_issuers_are_accepted(issuer: str) -> None:
    assert TokenVerifier(issuer, AUDIENCE).issuer == issuer


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


@pytest.mark.parametrize(
    ("groups", "budget"),
    [
        ((), 200_000),
        (("unmapped",), 200_000),
        (("pro",), 2_000_000),
        (("trial",), 10_000),
        (("trial", "pro", "unmapped"), 2_000_000),
        (("pro", "staff"), 0),  # 0 is no daily budget, which beats any number
    ],
)
def test_a_users_budget_is_the_largest_of_their_groups(groups: tuple[str, ...], budget: int) -> None:
    settings = Settings(
        daily_token_budget=200_000, group_token_budgets={"pro": 2_000_000, "trial": 10_000, "staff": 0}
    )
    assert group_budget(User("https://i.example", "s", groups), settings) == budget
