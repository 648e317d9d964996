"""The sign-in verifier in-process: bearer tokens checked against a provider served by a fake opener.

tests/integration/test_sign_in_verifier.py runs the verifier against a real HTTP provider on
loopback. Here the provider answers through `urllib.request.build_opener`, replaced by the test, so
every rule (the refusals and their logged reasons, the key cache and its refetch bounds, the fetch's
limits) runs in-process and fast enough for `make mutation MODULE=sign_in`. The keys are made once
per process, and the verifier's clock is a fake one.
"""

from __future__ import annotations

import base64
import email.message
import functools
import hashlib
import hmac
import http.client
import json
import logging
import re
import threading
import time
import types
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from claude_chat import sign_in
from claude_chat.errors import Unauthorized
from claude_chat.settings import Settings
from claude_chat.sign_in import (
    TokenVerifier,
    User,
    bearer_token,
    group_budget,
    group_money_budget,
    is_loopback_host,
)

ISSUER = "https://id.example"
AUDIENCE = "chat-client"
LOGGER = "claude_chat.sign_in"
KEYS_MAX_AGE_SECONDS = 300  # the key set is fetched again once five minutes old


@functools.cache
def private_key(kid: str) -> Any:
    """Made once per process (and so shared by the forked runs of `make mutation`)."""
    if kid.startswith("ec"):
        return ec.generate_private_key(ec.SECP256R1())
    bits = {"rsa-weak": 1024, "rsa-2047": 2047}.get(kid, 2048)
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


# Made at import, in the process `make mutation` forks each mutant's run from.
KIDS = ("rsa-1", "rsa-2", "rsa-unpublished", "rsa-weak", "rsa-2047", "ec-1", "ec-2")
for _kid in KIDS:
    private_key(_kid)


def public_jwk(name: str, **changes: Any) -> dict[str, Any]:
    """The published form of a key; `changes` edit or (as None) drop its members, `kid` included."""
    key = private_key(name)
    if isinstance(key, rsa.RSAPrivateKey):
        jwk, alg = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "RS256"
    else:
        jwk, alg = ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "ES256"
    published = {**jwk, "kid": name, "use": "sig", "alg": alg, **changes}
    return {name: value for name, value in published.items() if value is not None}


def private_jwk(name: str) -> dict[str, Any]:
    key = private_key(name)
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    alg = "RS256" if algorithm is RSAAlgorithm else "ES256"
    return {**algorithm.to_jwk(key, as_dict=True), "kid": name, "use": "sig", "alg": alg}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes] | None = None
) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64(signature)}"


class Clock:
    """The verifier's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Response:
    """What the opener returns: the body in chunks of at most `chunk` bytes."""

    def __init__(self, body: bytes, provider: Provider) -> None:
        self.body = body
        self.provider = provider

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def read1(self, size: int) -> bytes:
        self.provider.read_sizes.append(size)
        if self.provider.on_read is not None:
            self.provider.on_read()
        if self.provider.read_error is not None:
            raise self.provider.read_error
        chunk, self.body = (
            self.body[: min(size, self.provider.chunk)],
            self.body[min(size, self.provider.chunk) :],
        )
        return chunk


class Provider:
    """Discovery document and key set as the fake opener serves them; faults and counts are the test's."""

    def __init__(self, issuer: str = ISSUER) -> None:
        self.issuer = issuer
        self.jwks_uri = issuer.rstrip("/") + "/jwks"
        self.published = ["rsa-1", "ec-1"]
        self.extra_keys: list[Any] = []  # raw entries published as they are
        self.fetches = {"discovery": 0, "jwks": 0}
        self.discovery_overrides: dict[str, Any] = {}
        self.discovery_body: bytes | None = None
        self.jwks_body: bytes | None = None
        self.jwks_status = 200
        self.open_error: BaseException | None = None  # raised by open()
        self.read_error: BaseException | None = None  # raised by read1()
        self.on_read: Callable[[], None] | None = None
        self.chunk = 1 << 30
        self.hang: threading.Event | None = None  # open() waits on it, then times out
        self.handlers: list[list[Any]] = []
        self.read_sizes: list[int] = []
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def key_set(self) -> bytes:
        return json.dumps({"keys": [public_jwk(kid) for kid in self.published] + self.extra_keys}).encode()

    def build_opener(self, *handlers: Any) -> Any:
        self.handlers.append(list(handlers))
        return types.SimpleNamespace(open=self.open)

    def open(self, request: urllib.request.Request, timeout: float) -> Response:
        url = request.full_url
        with self._lock:
            self.requests.append(
                {
                    "url": url,
                    "headers": dict(request.header_items()),
                    "timeout": timeout,
                    "thread": threading.current_thread(),
                }
            )
        if self.hang is not None:
            self.hang.wait(1.5)
            raise urllib.error.URLError(TimeoutError("timed out"))
        if self.open_error is not None:
            raise self.open_error
        status = 200
        if url == self.issuer.rstrip("/") + "/.well-known/openid-configuration":
            with self._lock:
                self.fetches["discovery"] += 1
            document = {"issuer": self.issuer, "jwks_uri": self.jwks_uri, **self.discovery_overrides}
            body = self.discovery_body if self.discovery_body is not None else json.dumps(document).encode()
        elif url == self.jwks_uri:
            with self._lock:
                self.fetches["jwks"] += 1
            body = self.jwks_body if self.jwks_body is not None else self.key_set()
            status = self.jwks_status
        else:
            body, status = b"{}", 404
        if status >= 400:
            raise urllib.error.HTTPError(url, status, "error", email.message.Message(), None)
        return Response(body, self)

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

    def token(
        self, kid: str = "rsa-1", algorithm: str | None = None, headers: Any = None, **changes: Any
    ) -> str:
        key = private_key(kid)
        algorithm = algorithm or ("RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256")
        return jwt.encode(
            self.claims(**changes), key, algorithm=algorithm, headers={"kid": kid, **(headers or {})}
        )

    def raw_token(self, claims: dict[str, Any], kid: str = "rsa-1") -> str:
        """An RS256 token signed as PyJWT would, but with claims PyJWT refuses to encode."""
        key = private_key(kid)
        return forge(
            {"alg": "RS256", "typ": "JWT", "kid": kid},
            claims,
            lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
        )


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[Provider]:
    served = Provider()
    monkeypatch.setattr(urllib.request, "build_opener", served.build_opener)
    yield served
    if served.hang is not None:
        served.hang.set()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(provider: Provider, clock: Clock) -> TokenVerifier:
    return TokenVerifier(provider.issuer, AUDIENCE, clock=clock, http_timeout=1.0)


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=LOGGER)
    return caplog


def refused(verifier: TokenVerifier, token: str | None) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    return caught.value


def reasons(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    """The verifier's log lines, each with its level."""
    return [(record.levelno, record.getMessage()) for record in caplog.records if record.name == LOGGER]


def refusal(verifier: TokenVerifier, token: str | None, caplog: pytest.LogCaptureFixture) -> tuple[int, str]:
    """The one line the verifier logs when it refuses the token."""
    caplog.clear()
    refused(verifier, token)
    refusals = [line for line in reasons(caplog) if line[1].startswith("sign-in refused")]
    assert len(refusals) == 1, reasons(caplog)
    return refusals[0]


def exactly(message: str) -> str:
    """A `match` for pytest.raises that is the whole message, word for word."""
    return f"^{re.escape(message)}$"


def token_of_length(provider: Provider, length: int) -> str:
    """A genuine token exactly `length` characters long (padded with a claim and a header field)."""
    base = len(provider.token(pad="", headers={"x": ""}))
    for extra in range(4):
        for pad in range(max(0, (length - base) * 3 // 4 - 8), (length - base) * 3 // 4 + 8):
            token = provider.token(pad="p" * pad, headers={"x": "h" * extra})
            if len(token) == length:
                return token
    raise AssertionError(f"no token of {length} characters")


# --------------------------------------------------------------------------- admitted


def test_a_valid_rs256_token_is_admitted_as_its_user(verifier: TokenVerifier, provider: Provider) -> None:
    user = verifier.verify(provider.token("rsa-1"))
    assert user == User(ISSUER, "alice-123", ("pro", "beta"))
    digest = hashlib.sha256(f"{ISSUER}\nalice-123".encode()).hexdigest()
    assert user.key == "user:" + digest[:32]


def test_a_valid_es256_token_is_admitted(verifier: TokenVerifier, provider: Provider) -> None:
    assert verifier.verify(provider.token("ec-1", sub="bob")) == User(ISSUER, "bob", ("pro", "beta"))


@pytest.mark.parametrize(
    ("claim", "groups"),
    [
        ("pro", ("pro",)),
        ("", ()),
        ([], ()),
        (None, ()),
        (["a", 7, "", "b", None], ("a", "b")),
        ({"pro": True}, ()),
        (7, ()),
    ],
)
def test_groups_come_from_a_list_or_one_string_of_the_claim(
    verifier: TokenVerifier, provider: Provider, claim: Any, groups: tuple[str, ...]
) -> None:
    token = provider.token(**{"cognito:groups": claim})
    assert verifier.verify(token).groups == groups


def test_the_groups_claim_is_configurable(provider: Provider, clock: Clock) -> None:
    verifier = TokenVerifier(ISSUER, AUDIENCE, groups_claim="groups", clock=clock)
    assert verifier.verify(provider.token(groups=["staff"])).groups == ("staff",)


def test_a_cognito_access_token_with_client_id_and_no_aud_is_admitted(
    verifier: TokenVerifier, provider: Provider, logged: pytest.LogCaptureFixture
) -> None:
    assert verifier.verify(provider.token(aud=None, client_id=AUDIENCE, token_use="access"))
    assert refusal(verifier, provider.token(aud=None, client_id="another-client"), logged) == (
        logging.INFO,
        "sign-in refused: wrong audience",
    )
    refused(verifier, provider.token(aud=None))
    # An `aud` that names someone else is not rescued by a matching client_id.
    refused(verifier, provider.token(aud="another-client", client_id=AUDIENCE))


def test_an_aud_list_holding_the_audience_is_admitted(verifier: TokenVerifier, provider: Provider) -> None:
    assert verifier.verify(provider.token(aud=["other", AUDIENCE]))
    refused(verifier, provider.token(aud=["other", "more"]))


@pytest.mark.parametrize("audience", ["another-client", "", AUDIENCE.upper(), 42, {"aud": AUDIENCE}])
def test_a_wrong_audience_is_refused(
    verifier: TokenVerifier, provider: Provider, audience: Any, logged: pytest.LogCaptureFixture
) -> None:
    assert refusal(verifier, provider.raw_token(provider.claims(aud=audience)), logged) == (
        logging.INFO,
        "sign-in refused: wrong audience",
    )


# --------------------------------------------------------------------------- time


def test_an_expired_token_is_refused_with_an_invalid_token_challenge(
    verifier: TokenVerifier, provider: Provider, logged: pytest.LogCaptureFixture
) -> None:
    token = provider.token(exp=int(time.time()) - 120)
    assert refusal(verifier, token, logged) == (
        logging.INFO,
        "sign-in refused: ExpiredSignatureError: Signature has expired",
    )
    error = refused(verifier, token)
    assert (error.status, error.code, error.token_presented) == (401, "unauthorized", True)
    assert error.headers["WWW-Authenticate"] == 'Bearer realm="claude-chat", error="invalid_token"'
    for part in token.split("."):
        assert part not in logged.text  # the reason is logged, never the token


def test_expiry_within_the_leeway_is_admitted(provider: Provider, clock: Clock) -> None:
    token = provider.token(exp=int(time.time()) - 20)
    assert TokenVerifier(ISSUER, AUDIENCE, clock=clock).verify(token)
    refused(TokenVerifier(ISSUER, AUDIENCE, leeway_seconds=0, clock=clock), token)
    assert TokenVerifier(ISSUER, AUDIENCE, leeway_seconds=30, clock=clock).verify(token)
    refused(TokenVerifier(ISSUER, AUDIENCE, leeway_seconds=10, clock=clock), token)


@pytest.mark.parametrize(("claim", "missing"), [("exp", "exp"), ("iss", "iss"), ("sub", "sub")])
def test_a_token_without_exp_iss_or_sub_is_refused(
    verifier: TokenVerifier, provider: Provider, claim: str, missing: str, logged: pytest.LogCaptureFixture
) -> None:
    assert refusal(verifier, provider.token(**{claim: None}), logged) == (
        logging.INFO,
        f'sign-in refused: MissingRequiredClaimError: Token is missing the "{missing}" claim',
    )


def test_a_token_not_yet_valid_is_refused(verifier: TokenVerifier, provider: Provider) -> None:
    now = int(time.time())
    refused(verifier, provider.token(nbf=now + 120))
    refused(verifier, provider.token(iat=now + 120))
    assert verifier.verify(provider.token(nbf=now + 20, iat=now + 20))


# --------------------------------------------------------------------------- issuer, audience, subject


@pytest.mark.parametrize("issuer", ["https://evil.example", ISSUER + "/", ISSUER + "/other", ISSUER[:-1]])
def test_a_wrong_issuer_is_refused(
    verifier: TokenVerifier, provider: Provider, issuer: str, logged: pytest.LogCaptureFixture
) -> None:
    assert refusal(verifier, provider.token(iss=issuer), logged) == (
        logging.INFO,
        "sign-in refused: InvalidIssuerError: Invalid issuer",
    )


def test_an_issuer_in_a_list_is_refused(verifier: TokenVerifier, provider: Provider) -> None:
    refused(verifier, provider.raw_token(provider.claims(iss=[ISSUER])))


@pytest.mark.parametrize("subject", ["", "  ", "\t\n"])
def test_an_empty_subject_is_refused(
    verifier: TokenVerifier, provider: Provider, subject: Any, logged: pytest.LogCaptureFixture
) -> None:
    assert refusal(verifier, provider.token(sub=subject), logged) == (
        logging.INFO,
        "sign-in refused: empty subject",
    )


def test_what_pyjwt_lets_through_is_checked_again(
    verifier: TokenVerifier,
    provider: Provider,
    monkeypatch: pytest.MonkeyPatch,
    logged: pytest.LogCaptureFixture,
) -> None:
    """Issuer and subject are checked after PyJWT too: a library change cannot admit a wrong one."""
    token = provider.token()
    verifier.verify(token)
    decoded: dict[str, Any] = {}
    monkeypatch.setattr(jwt, "decode", lambda *_args, **_kwargs: dict(decoded))
    for claims, reason in [
        ({"iss": "https://evil.example", "aud": AUDIENCE, "sub": "s"}, "wrong issuer"),
        ({"aud": AUDIENCE, "sub": "s"}, "wrong issuer"),
        ({"iss": ISSUER, "aud": AUDIENCE, "sub": 42}, "empty subject"),
        ({"iss": ISSUER, "aud": AUDIENCE}, "empty subject"),
    ]:
        decoded.clear()
        decoded.update(claims)
        assert refusal(verifier, token, logged) == (logging.INFO, f"sign-in refused: {reason}")
    decoded.clear()
    decoded.update({"iss": ISSUER, "aud": AUDIENCE, "sub": "s", "groups": ["g"]})
    assert verifier.verify(token) == User(ISSUER, "s", ())


def test_the_verifier_asks_pyjwt_for_exactly_these_checks(
    verifier: TokenVerifier, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = provider.token()
    verifier.verify(token)
    calls: list[tuple[Any, ...]] = []
    decode = jwt.decode

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", spy)
    verifier.verify(token)
    ((args, kwargs),) = calls
    assert args[0] == token
    assert args[1] is verifier._keys["rsa-1"][1]
    assert kwargs == {
        "algorithms": ["RS256"],
        "issuer": ISSUER,
        "leeway": 60,
        "options": {"require": ["exp", "iss", "sub"], "verify_aud": False},
    }


def test_a_long_pyjwt_complaint_is_cut_to_80_characters(
    verifier: TokenVerifier,
    provider: Provider,
    monkeypatch: pytest.MonkeyPatch,
    logged: pytest.LogCaptureFixture,
) -> None:
    token = provider.token()
    verifier.verify(token)

    def complain(*_args: Any, **_kwargs: Any) -> Any:
        raise jwt.InvalidTokenError("x" * 79 + "yz")

    monkeypatch.setattr(jwt, "decode", complain)
    assert refusal(verifier, token, logged) == (
        logging.INFO,
        "sign-in refused: InvalidTokenError: " + "x" * 79 + "y",
    )


# --------------------------------------------------------------------------- algorithms and forgeries


def test_alg_none_is_refused(
    verifier: TokenVerifier, provider: Provider, logged: pytest.LogCaptureFixture
) -> None:
    claims = provider.claims()
    for alg in ("none", "None", "NONE"):
        assert refusal(verifier, forge({"alg": alg, "typ": "JWT", "kid": "rsa-1"}, claims), logged) == (
            logging.INFO,
            f"sign-in refused: algorithm {alg!r} is not accepted",
        )
    refused(verifier, jwt.encode(claims, None, algorithm="none", headers={"kid": "rsa-1"}))


def test_the_named_algorithm_is_logged_cut_to_16_characters(
    verifier: TokenVerifier, provider: Provider, logged: pytest.LogCaptureFixture
) -> None:
    claims = provider.claims()
    assert refusal(verifier, forge({"alg": "A" * 16 + "BC", "kid": "rsa-1"}, claims), logged) == (
        logging.INFO,
        "sign-in refused: algorithm 'AAAAAAAAAAAAAAAA' is not accepted",
    )
    assert refusal(verifier, forge({"kid": "rsa-1"}, claims), logged) == (
        logging.INFO,
        "sign-in refused: algorithm 'None' is not accepted",
    )


def test_hs256_signed_with_the_public_key_is_refused(verifier: TokenVerifier, provider: Provider) -> None:
    claims = provider.claims()
    for kid in ("rsa-1", "ec-1"):
        secret = (
            private_key(kid)
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        for named in ("rsa-1", "ec-1"):
            token = forge(
                {"alg": "HS256", "typ": "JWT", "kid": named},
                claims,
                lambda d, s=secret: hmac.digest(s, d, "sha256"),
            )
            refused(verifier, token)


def test_the_algorithm_must_match_the_keys_type(
    verifier: TokenVerifier, provider: Provider, logged: pytest.LogCaptureFixture
) -> None:
    claims = provider.claims()
    ec_signed = jwt.encode(claims, private_key("ec-1"), algorithm="ES256", headers={"kid": "rsa-1"})
    rsa_signed = jwt.encode(claims, private_key("rsa-1"), algorithm="RS256", headers={"kid": "ec-1"})
    assert refusal(verifier, ec_signed, logged) == (
        logging.INFO,
        "sign-in refused: the token says ES256 but its key is for RS256",
    )
    assert refusal(verifier, rsa_signed, logged) == (
        logging.INFO,
        "sign-in refused: the token says RS256 but its key is for ES256",
    )
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


def test_a_token_of_16384_characters_is_read_and_a_longer_one_is_not(
    verifier: TokenVerifier, provider: Provider, logged: pytest.LogCaptureFixture
) -> None:
    assert verifier.verify(token_of_length(provider, 16_384))
    assert refusal(verifier, token_of_length(provider, 16_385), logged) == (
        logging.INFO,
        "sign-in refused: token too long",
    )


def test_an_unexpected_error_is_a_401_not_a_500(
    verifier: TokenVerifier,
    provider: Provider,
    monkeypatch: pytest.MonkeyPatch,
    logged: pytest.LogCaptureFixture,
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a defect")

    monkeypatch.setattr(jwt, "decode", broken)
    assert refusal(verifier, provider.token("rsa-1"), logged) == (
        logging.WARNING,
        "sign-in refused: unexpected RuntimeError",
    )
    assert refused(verifier, provider.token("rsa-1")).token_presented


def test_a_tampered_payload_is_refused(
    verifier: TokenVerifier, provider: Provider, logged: pytest.LogCaptureFixture
) -> None:
    token = provider.token("rsa-1")
    header, _payload, signature = token.split(".")
    for changed in (provider.claims(sub="mallory"), provider.claims(**{"cognito:groups": ["admin"]})):
        assert refusal(verifier, f"{header}.{b64(json.dumps(changed).encode())}.{signature}", logged) == (
            logging.INFO,
            "sign-in refused: InvalidSignatureError: Signature verification failed",
        )
    assert verifier.verify(token)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("abc", "malformed token (DecodeError)"),
        ("a.b.c", "malformed token (DecodeError)"),
        ("é.é.é", "malformed token (DecodeError)"),
        ("null.null.null", "malformed token (DecodeError)"),
        ("eyJhbGciOiJSUzI1NiJ9.e30.", "the token names no usable key id"),
    ],
)
def test_a_garbled_token_is_refused_with_its_reason(
    verifier: TokenVerifier, token: str, reason: str, logged: pytest.LogCaptureFixture
) -> None:
    assert refusal(verifier, token, logged) == (logging.INFO, f"sign-in refused: {reason}")


NO_USABLE_KID = "the token names no usable key id"


@pytest.mark.parametrize(
    ("kid", "reason"),
    [
        (None, NO_USABLE_KID),
        ("", NO_USABLE_KID),
        ("k" * 257, NO_USABLE_KID),
        (7, "malformed token (InvalidTokenError)"),  # PyJWT's own check, before the verifier's
        (["rsa-1"], "malformed token (InvalidTokenError)"),
    ],
)
def test_a_token_without_a_usable_kid_is_refused_before_any_fetch(
    verifier: TokenVerifier, provider: Provider, kid: Any, reason: str, logged: pytest.LogCaptureFixture
) -> None:
    header = {"alg": "RS256"} if kid is None else {"alg": "RS256", "kid": kid}
    assert refusal(verifier, forge(header, provider.claims()), logged) == (
        logging.INFO,
        f"sign-in refused: {reason}",
    )
    assert provider.fetches == {"discovery": 0, "jwks": 0}


def test_a_kid_of_256_characters_is_looked_up(
    verifier: TokenVerifier, provider: Provider, logged: pytest.LogCaptureFixture
) -> None:
    token = provider.token("rsa-1", headers={"kid": "k" * 256})
    assert refusal(verifier, token, logged) == (logging.INFO, "sign-in refused: unknown key id")
    assert provider.fetches["jwks"] == 1


# --------------------------------------------------------------------------- no token, the challenge


def test_no_token_is_refused_with_the_bare_challenge(
    verifier: TokenVerifier, logged: pytest.LogCaptureFixture
) -> None:
    for token in (None, ""):
        logged.clear()
        error = refused(verifier, token)
        assert error.token_presented is False
        assert error.headers["WWW-Authenticate"] == 'Bearer realm="claude-chat"'
        assert reasons(logged) == [(logging.INFO, "sign-in refused: no bearer token")]


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
        {"authorization": ["Bearer abc"]},
        {"x-authorization": "Bearer abc"},
    ],
)
def test_a_missing_or_garbled_authorization_header_has_no_token(headers: Any) -> None:
    assert bearer_token(headers) is None


# ---------------------------------------------------------------------- keys: caching, unknown kid, rotation


def test_a_warm_verifier_makes_no_network_call(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    token = provider.token("rsa-1")
    for _ in range(30):
        verifier.verify(token)
        clock.advance(9.9)  # 297 s: still inside the key set's five minutes
    assert provider.fetches == {"discovery": 1, "jwks": 1}


def test_the_key_set_is_fresh_until_it_is_300_seconds_old(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    token = provider.token("rsa-1")
    verifier.verify(token)
    verifier.verify(token)  # the same instant: fresh
    clock.advance(KEYS_MAX_AGE_SECONDS - 0.5)
    verifier.verify(token)
    assert provider.fetches["jwks"] == 1
    clock.advance(0.5)
    verifier.verify(token)
    assert provider.fetches["jwks"] == 2


def test_warm_fetches_the_keys_ahead_of_the_first_request(
    verifier: TokenVerifier, provider: Provider
) -> None:
    assert verifier.warm() is True
    assert verifier.warm() is True  # held and fresh: no second fetch
    verifier.verify(provider.token("rsa-1"))
    assert provider.fetches == {"discovery": 1, "jwks": 1}


def test_warm_says_false_when_the_provider_fails_and_refetches_stale_keys(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    provider.jwks_status = 503
    assert verifier.warm() is False
    provider.jwks_status = 200
    assert verifier.warm() is False  # within 30 s of the failed attempt: no new attempt
    clock.advance(30)
    assert verifier.warm() is True
    clock.advance(KEYS_MAX_AGE_SECONDS)
    assert verifier.warm() is True  # stale: fetched again
    assert provider.fetches["jwks"] == 3
    provider.jwks_status = 503
    clock.advance(KEYS_MAX_AGE_SECONDS)
    assert verifier.warm() is False  # stale and the refresh failed: the held keys are not fresh


def test_an_unknown_kid_is_refused_after_one_refetch(
    verifier: TokenVerifier, provider: Provider, clock: Clock, logged: pytest.LogCaptureFixture
) -> None:
    verifier.verify(provider.token("rsa-1"))
    clock.advance(31)
    assert refusal(verifier, provider.token("rsa-unpublished"), logged) == (
        logging.INFO,
        "sign-in refused: unknown key id",
    )
    assert provider.fetches == {"discovery": 1, "jwks": 2}


def test_a_flood_of_unknown_kids_costs_one_fetch_per_30_seconds(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    verifier.verify(provider.token("rsa-1"))
    claims = provider.claims()
    for round_ in range(3):
        clock.advance(29.5)
        refused(
            verifier, jwt.encode(claims, private_key("rsa-1"), algorithm="RS256", headers={"kid": "early"})
        )
        assert provider.fetches["jwks"] == 1 + round_  # 29.5 s after the last attempt: none
        clock.advance(0.5)
        for n in range(20):
            forged = jwt.encode(claims, private_key("rsa-1"), algorithm="RS256", headers={"kid": f"f{n}"})
            refused(verifier, forged)
            clock.advance(0.125)
        assert provider.fetches["jwks"] == 2 + round_
        clock.advance(-2.5)  # back to the instant of this round's attempt
    assert provider.fetches["discovery"] == 1


def test_many_threads_naming_unknown_kids_cost_one_fetch(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    verifier.verify(provider.token("rsa-1"))
    clock.advance(31)
    claims = provider.claims()
    tokens = [
        jwt.encode(claims, private_key("rsa-1"), algorithm="RS256", headers={"kid": f"t{n}"})
        for n in range(16)
    ]
    release = threading.Event()
    provider.on_read = lambda: release.wait(1.0)  # the fetch stays in flight until every thread asked
    errors: list[BaseException] = []

    def call(token: str) -> None:
        try:
            verifier.verify(token)
        except Unauthorized as error:
            errors.append(error)

    threads = [threading.Thread(target=call, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    release.set()
    for thread in threads:
        thread.join()
    assert len(errors) == 16
    assert provider.fetches["jwks"] == 2


def test_a_rotated_key_is_picked_up_and_the_removed_one_refused(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    old = provider.token("rsa-1")
    verifier.verify(old)
    clock.advance(30)
    provider.published.append("rsa-2")
    assert verifier.verify(provider.token("rsa-2")).subject == "alice-123"
    assert provider.fetches["jwks"] == 2
    assert verifier.verify(old)
    provider.published.remove("rsa-1")
    clock.advance(30)
    provider.published.append("ec-2")
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
    assert verifier.verify(old)
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
    clock.advance(-1)  # and the attempt's time too: a new one is not held back by it
    provider.published.append("rsa-1")
    assert verifier.verify(old)
    assert provider.fetches["jwks"] == 3


def test_the_keys_held_keep_working_while_the_provider_is_down(
    verifier: TokenVerifier, provider: Provider, clock: Clock, logged: pytest.LogCaptureFixture
) -> None:
    token = provider.token("rsa-1")
    verifier.verify(token)
    provider.jwks_status = 500
    clock.advance(KEYS_MAX_AGE_SECONDS + 1)
    assert verifier.verify(token)  # the failed refresh kept the old keys
    assert verifier.verify(token)  # and the next attempt waits 30 s
    assert provider.fetches["jwks"] == 2
    assert (
        logging.WARNING,
        "sign-in: could not refresh the issuer's keys (the key set could not be read (HTTPError))",
    ) in reasons(logged)
    provider.jwks_status = 200
    clock.advance(30)
    assert verifier.verify(token)
    assert provider.fetches["jwks"] == 3


def test_with_no_keys_at_all_the_refusal_blames_the_provider(
    verifier: TokenVerifier, provider: Provider, logged: pytest.LogCaptureFixture
) -> None:
    provider.jwks_status = 503
    assert refusal(verifier, provider.token("rsa-1"), logged) == (
        logging.WARNING,
        "sign-in refused: the issuer's keys are unavailable",
    )
    # Within 30 s of the failed attempt: refused at once, without asking again.
    assert refusal(verifier, provider.token("rsa-1"), logged) == (
        logging.WARNING,
        "sign-in refused: the issuer's keys are unavailable",
    )
    assert provider.fetches["jwks"] == 1


def test_two_published_keys_with_one_kid_the_first_is_used(
    verifier: TokenVerifier, provider: Provider
) -> None:
    provider.published = ["rsa-1"]
    provider.extra_keys = [public_jwk("ec-1", kid="rsa-1")]
    assert verifier.verify(provider.token("rsa-1"))
    refused(
        verifier,
        jwt.encode(provider.claims(), private_key("ec-1"), algorithm="ES256", headers={"kid": "rsa-1"}),
    )


# --------------------------------------------------------------------------- the fetch itself


def test_the_documents_are_fetched_from_the_named_urls_within_the_timeout(
    provider: Provider, clock: Clock
) -> None:
    verifier = TokenVerifier(ISSUER + "/", AUDIENCE, clock=clock, http_timeout=1.5)
    provider.issuer = ISSUER + "/"
    verifier.verify(provider.token("rsa-1", iss=ISSUER + "/"))
    assert [(r["url"], r["headers"], r["timeout"]) for r in provider.requests] == [
        (ISSUER + "/.well-known/openid-configuration", {"Accept": "application/json"}, 1.5),
        (ISSUER + "/jwks", {"Accept": "application/json"}, 1.5),
    ]
    # Read 64 KiB at a time at most, so the size and time limits are checked at least that often.
    assert provider.read_sizes and set(provider.read_sizes) == {65_536}
    # No redirect is followed, and an https provider is reached through any proxy configured.
    for handlers in provider.handlers:
        assert [type(handler) for handler in handlers] == [sign_in._NoRedirect]
    assert (
        sign_in._NoRedirect().redirect_request(None, None, 302, "Found", {}, "https://evil.example/") is None
    )


def test_the_discovery_document_is_found_under_the_issuers_path(provider: Provider, clock: Clock) -> None:
    provider.issuer = "https://id.example/tenant-X"
    verifier = TokenVerifier(provider.issuer, AUDIENCE, clock=clock)
    assert verifier.verify(provider.token("rsa-1", iss=provider.issuer))
    assert provider.requests[0]["url"] == "https://id.example/tenant-X/.well-known/openid-configuration"


def test_a_loopback_provider_is_never_reached_through_a_proxy(
    provider: Provider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    provider.issuer, provider.jwks_uri = "http://127.0.0.1:8443", "http://localhost:8443/jwks"
    verifier = TokenVerifier(provider.issuer, AUDIENCE, clock=clock)
    verifier.verify(provider.token("rsa-1", iss=provider.issuer))
    assert len(provider.handlers) == 2
    for handlers in provider.handlers:
        assert [type(handler) for handler in handlers] == [sign_in._NoRedirect, urllib.request.ProxyHandler]
        assert handlers[1].proxies == {}


def test_the_fetch_runs_on_its_own_daemon_thread(verifier: TokenVerifier, provider: Provider) -> None:
    verifier.verify(provider.token("rsa-1"))
    for request in provider.requests:
        thread = request["thread"]
        assert (thread.name, thread.daemon) == ("oidc-keys", True)
        assert thread is not threading.current_thread()


def test_a_hanging_provider_is_a_401_within_the_timeout(
    provider: Provider, clock: Clock, logged: pytest.LogCaptureFixture
) -> None:
    provider.hang = threading.Event()
    verifier = TokenVerifier(ISSUER, AUDIENCE, http_timeout=0.1, clock=clock)
    started = time.monotonic()
    assert refusal(verifier, provider.token("rsa-1"), logged) == (
        logging.WARNING,
        "sign-in refused: the issuer's keys are unavailable",
    )
    assert 0.09 < time.monotonic() - started < 1.0
    # A second request while the fetch is still in flight waits on it, again no longer than the timeout.
    clock.advance(60)
    started = time.monotonic()
    refused(verifier, provider.token("rsa-1"))
    assert 0.09 < time.monotonic() - started < 1.0
    assert len(provider.requests) == 1
    started = time.monotonic()
    assert verifier.warm() is False
    assert 0.09 < time.monotonic() - started < 1.0
    provider.hang.set()


def test_warm_waits_no_longer_than_the_timeout(provider: Provider, clock: Clock) -> None:
    provider.hang = threading.Event()
    verifier = TokenVerifier(ISSUER, AUDIENCE, http_timeout=0.1, clock=clock)
    started = time.monotonic()
    assert verifier.warm() is False
    assert 0.09 < time.monotonic() - started < 1.0


def test_a_request_after_a_failed_fetch_waits_for_none(
    provider: Provider, clock: Clock, logged: pytest.LogCaptureFixture
) -> None:
    provider.open_error = urllib.error.URLError(ConnectionRefusedError(111, "refused"))
    verifier = TokenVerifier(ISSUER, AUDIENCE, http_timeout=1.0, clock=clock)
    refused(verifier, provider.token("rsa-1"))
    started = time.monotonic()
    refused(verifier, provider.token("rsa-1"))
    assert time.monotonic() - started < 0.2
    assert len(provider.requests) == 1
    assert (
        logging.WARNING,
        "sign-in: could not refresh the issuer's keys (the discovery document could not be read (URLError))",
    ) in reasons(logged)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"jwks_body": b"<html>not json</html>"}, "the key set could not be read (JSONDecodeError)"),
        ({"jwks_body": b'{"keys": "\xc3("}'}, "the key set could not be read (UnicodeDecodeError)"),
        ({"jwks_body": b"[]"}, "the key set is not a JSON object"),
        ({"jwks_body": b'{"keys": "none"}'}, "the key set has no list of keys"),
        ({"jwks_body": b"{}"}, "the key set has no list of keys"),
        ({"jwks_body": b'{"keys": []}'}, "the key set has no RS256 or ES256 signing key"),
        ({"jwks_status": 503}, "the key set could not be read (HTTPError)"),
        (
            {"read_error": http.client.IncompleteRead(b"")},
            "the discovery document could not be read (IncompleteRead)",
        ),
        (
            {"read_error": TimeoutError("timed out")},
            "the discovery document could not be read (TimeoutError)",
        ),
        ({"discovery_body": b'["issuer"]'}, "the discovery document is not a JSON object"),
        (
            {"discovery_overrides": {"issuer": "https://evil.example"}},
            "the discovery document names the issuer 'https://evil.example', not OIDC_ISSUER",
        ),
        (
            {"discovery_overrides": {"issuer": ISSUER + "/"}},
            f"the discovery document names the issuer '{ISSUER}/', not OIDC_ISSUER",
        ),
        (
            {"discovery_overrides": {"issuer": "https://" + "e" * 300}},
            f"the discovery document names the issuer {('https://' + 'e' * 300)[:200]!r}, not OIDC_ISSUER",
        ),
        ({"discovery_overrides": {"jwks_uri": None}}, "the discovery document has no jwks_uri"),
        ({"discovery_overrides": {"jwks_uri": 7}}, "the discovery document has no jwks_uri"),
        (
            {"discovery_overrides": {"jwks_uri": "http://keys.example/jwks"}},
            "jwks_uri must use https (plain http only on a loopback address), not 'http://keys.example/jwks'",
        ),
        (
            {"discovery_overrides": {"jwks_uri": "file:///etc/jwks.json"}},
            "jwks_uri must be an absolute URL with a host and no user info",
        ),
    ],
)
def test_a_broken_provider_is_a_401_and_a_warning_that_says_why(
    verifier: TokenVerifier,
    provider: Provider,
    fault: dict[str, Any],
    reason: str,
    logged: pytest.LogCaptureFixture,
) -> None:
    for name, value in fault.items():
        setattr(provider, name, value)
    refused(verifier, provider.token("rsa-1"))
    assert reasons(logged) == [
        (logging.WARNING, f"sign-in: could not refresh the issuer's keys ({reason})"),
        (logging.WARNING, "sign-in refused: the issuer's keys are unavailable"),
    ]
    # The warning is the fetching thread's.
    assert next(r.threadName for r in logged.records if r.name == LOGGER) == "oidc-keys"


def test_a_defect_in_the_fetch_is_logged_and_never_leaves_a_request_waiting(
    verifier: TokenVerifier, provider: Provider, logged: pytest.LogCaptureFixture
) -> None:
    provider.open_error = RuntimeError("a defect")
    started = time.monotonic()
    refused(verifier, provider.token("rsa-1"))
    assert time.monotonic() - started < 0.5
    assert reasons(logged)[0] == (logging.WARNING, "sign-in: the key fetch failed (RuntimeError)")


def test_the_discovery_document_is_read_once(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    token = provider.token("rsa-1")
    verifier.verify(token)
    clock.advance(KEYS_MAX_AGE_SECONDS)
    verifier.verify(token)
    assert provider.fetches == {"discovery": 1, "jwks": 2}


def test_a_document_is_read_in_chunks_up_to_512_kib(
    verifier: TokenVerifier, provider: Provider, logged: pytest.LogCaptureFixture
) -> None:
    key_set = json.loads(provider.key_set())
    prefix = json.dumps({**key_set, "padding": ""}).encode()
    provider.chunk = 100_000
    provider.jwks_body = prefix[:-2] + b"x" * (512 * 1024 - len(prefix)) + prefix[-2:]
    assert len(provider.jwks_body) == 512 * 1024
    assert verifier.verify(provider.token("rsa-1"))
    big = Provider()
    big.chunk = 100_000
    big.jwks_body = prefix[:-2] + b"x" * (512 * 1024 + 1 - len(prefix)) + prefix[-2:]
    verifier = TokenVerifier(ISSUER, AUDIENCE, clock=Clock())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(urllib.request, "build_opener", big.build_opener)
        refused(verifier, big.token("rsa-1"))
    assert (
        logging.WARNING,
        "sign-in: could not refresh the issuer's keys (the key set is too large)",
    ) in reasons(logged)


@pytest.mark.parametrize(("elapsed", "admitted"), [(1.0, True), (1.001, False)])
def test_a_document_must_arrive_within_the_timeout_overall(
    provider: Provider,
    monkeypatch: pytest.MonkeyPatch,
    logged: pytest.LogCaptureFixture,
    elapsed: float,
    admitted: bool,
) -> None:
    """Each chunk may come in time, yet a trickle is cut off at `http_timeout` since the fetch began."""
    now = [5000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    verifier = TokenVerifier(ISSUER, AUDIENCE, http_timeout=1.0, clock=Clock())
    provider.chunk = 32
    reads = [0]

    def trickle() -> None:
        reads[0] += 1
        now[0] += elapsed if reads[0] == 2 else 0.0  # the discovery document's second read

    provider.on_read = trickle
    verifier._fetch_keys(threading.Event())  # on this thread: the fake monotonic clock is the fetch's
    if admitted:
        assert verifier._keys
    else:
        assert not verifier._keys
        assert reasons(logged) == [
            (
                logging.WARNING,
                "sign-in: could not refresh the issuer's keys "
                "(the discovery document took longer than 1.0 s)",
            )
        ]


# --------------------------------------------------------------------------- published keys


@pytest.mark.parametrize(
    ("entry", "accepted"),
    [
        (public_jwk("rsa-1"), "RS256"),
        (public_jwk("rsa-1", alg=None), "RS256"),
        (public_jwk("rsa-1", use=None), "RS256"),
        (public_jwk("ec-1"), "ES256"),
        (public_jwk("ec-1", alg=None), "ES256"),
        (public_jwk("rsa-1", alg="RS512"), None),
        (public_jwk("rsa-1", alg="ES256"), None),
        (public_jwk("ec-1", alg="ES384"), None),
        (public_jwk("ec-1", alg="RS256"), None),
        (public_jwk("ec-1", crv="P-384"), None),
        (public_jwk("rsa-1", use="enc"), None),
        (public_jwk("rsa-1", kid=None), None),
        (public_jwk("rsa-1", kid=""), None),
        (public_jwk("rsa-1", kid=7), None),
        (public_jwk("rsa-1", d="c2VjcmV0"), None),  # a private key published by mistake
        (public_jwk("rsa-1", n="!!"), None),
        (public_jwk("rsa-1", e=None), None),
        ({"kty": "oct", "kid": "oct-1", "k": "c2VjcmV0"}, None),
        ({"kty": "oct", "kid": "oct-1", "k": "c2VjcmV0", "alg": "RS256"}, None),
        ({"kid": "rsa-1"}, None),
        (private_jwk("rsa-1"), None),  # a private key published by mistake: never taken
        (private_jwk("ec-1"), None),
        (None, None),
        ("rsa-1", None),
        ([public_jwk("rsa-1")], None),
    ],
)
def test_only_rsa_and_p256_signing_keys_are_taken(entry: Any, accepted: str | None) -> None:
    parsed = sign_in._signing_key(entry, jwt)
    if accepted is None:
        assert parsed is None
    else:
        assert parsed is not None
        assert parsed[:2] == (entry["kid"], accepted)
        assert parsed[2].public_numbers() == private_key(entry["kid"]).public_key().public_numbers()


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # PyJWT's, when minting
def test_an_rsa_key_shorter_than_2048_bits_is_ignored() -> None:
    assert sign_in._signing_key(public_jwk("rsa-weak"), jwt) is None
    assert sign_in._signing_key(public_jwk("rsa-2047"), jwt) is None
    assert sign_in._signing_key(public_jwk("rsa-1"), jwt) is not None  # 2048 bits


def test_a_published_symmetric_key_is_never_used(
    verifier: TokenVerifier, provider: Provider, logged: pytest.LogCaptureFixture
) -> None:
    secret = b"a-shared-secret-that-was-published-by-mistake"
    provider.extra_keys.append({"kty": "oct", "kid": "oct-1", "k": b64(secret)})
    claims = provider.claims()

    def sign(data: bytes) -> bytes:
        return hmac.new(secret, data, hashlib.sha256).digest()

    refused(verifier, forge({"alg": "HS256", "kid": "oct-1"}, claims, sign))
    assert refusal(verifier, forge({"alg": "RS256", "kid": "oct-1"}, claims, sign), logged) == (
        logging.INFO,
        "sign-in refused: unknown key id",
    )


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("issuer", "message"),
    [
        (
            "http://example.com",
            "OIDC_ISSUER must use https (plain http only on a loopback address), not 'http://example.com'",
        ),
        (
            "http://10.0.0.1",
            "OIDC_ISSUER must use https (plain http only on a loopback address), not 'http://10.0.0.1'",
        ),
        (
            "http://[::2]",
            "OIDC_ISSUER must use https (plain http only on a loopback address), not 'http://[::2]'",
        ),
        (
            "ftp://127.0.0.1",
            "OIDC_ISSUER must use https (plain http only on a loopback address), not 'ftp://127.0.0.1'",
        ),
        ("https://", "OIDC_ISSUER must be an absolute URL with a host and no user info"),
        ("example.com", "OIDC_ISSUER must be an absolute URL with a host and no user info"),
        ("https://user@example.com", "OIDC_ISSUER must be an absolute URL with a host and no user info"),
        ("https://:secret@example.com", "OIDC_ISSUER must be an absolute URL with a host and no user info"),
        ("https://example.com?tenant=1", "OIDC_ISSUER must have no query or fragment"),
        ("https://example.com#top", "OIDC_ISSUER must have no query or fragment"),
        ("https://example.com:99999", "OIDC_ISSUER is not a valid URL"),
        ("https://[::1", "OIDC_ISSUER is not a valid URL"),
    ],
)
def test_an_issuer_that_is_not_https_or_loopback_is_refused_at_construction(
    issuer: str, message: str
) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        TokenVerifier(issuer, AUDIENCE)


@pytest.mark.parametrize(
    "issuer",
    [
        "https://example.com",
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
        "http://localhost:8080",
        "http://LOCALHOST.",
        "http://127.0.0.5",
        "http://[::1]:9000/realms/x",
    ],
)
def test_https_issuers_and_loopback_http_issuers_are_accepted(issuer: str) -> None:
    assert TokenVerifier(issuer, AUDIENCE).issuer == issuer


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LocalHost", True),
        ("localhost.", True),
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("LOCALHOST..", True),
        ("localhost.example.com", False),
        ("127.0.0.1.nip.io", False),
        ("10.0.0.1", False),
        ("::2", False),
        ("0.0.0.0", False),
        ("", False),
        (".localhost", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_the_verifiers_settings_and_their_bounds() -> None:
    verifier = TokenVerifier(ISSUER, AUDIENCE)
    assert (
        verifier.issuer,
        verifier.audience,
        verifier.groups_claim,
        verifier.leeway_seconds,
        verifier.refetch_seconds,
        verifier.http_timeout,
    ) == (ISSUER, AUDIENCE, "cognito:groups", 60, 30.0, 2.0)
    for leeway in (0, 60):
        assert TokenVerifier(ISSUER, AUDIENCE, leeway_seconds=leeway).leeway_seconds == leeway
    assert TokenVerifier(ISSUER, AUDIENCE, refetch_seconds=0).refetch_seconds == 0
    assert TokenVerifier(ISSUER, AUDIENCE, http_timeout=0.01).http_timeout == 0.01
    with pytest.raises(ValueError, match=exactly("OIDC_AUDIENCE must not be empty")):
        TokenVerifier(ISSUER, "")
    for leeway in (-1, 61, 3600):
        with pytest.raises(ValueError, match=exactly("the clock leeway must be 0..60 seconds")):
            TokenVerifier(ISSUER, AUDIENCE, leeway_seconds=leeway)
    for bad in ({"refetch_seconds": -0.1}, {"http_timeout": 0}, {"http_timeout": -1}):
        with pytest.raises(ValueError, match=exactly("refetch_seconds must be >= 0 and http_timeout > 0")):
            TokenVerifier(ISSUER, AUDIENCE, **bad)


def test_a_refetch_interval_of_zero_fetches_for_every_unknown_kid(provider: Provider, clock: Clock) -> None:
    verifier = TokenVerifier(ISSUER, AUDIENCE, refetch_seconds=0, clock=clock)
    verifier.verify(provider.token("rsa-1"))
    for n in range(3):
        refused(
            verifier,
            jwt.encode(provider.claims(), private_key("rsa-1"), algorithm="RS256", headers={"kid": f"u{n}"}),
        )
    assert provider.fetches["jwks"] == 4


def test_the_verifier_for_the_settings_is_one_per_environment() -> None:
    anonymous = types.SimpleNamespace(oidc_issuer=None, oidc_audience=None, oidc_groups_claim="groups")
    assert sign_in.verifier_for(anonymous) is None  # type: ignore[arg-type]
    settings = types.SimpleNamespace(
        oidc_issuer="https://one.example", oidc_audience="api", oidc_groups_claim="roles"
    )
    verifier = sign_in.verifier_for(settings)  # type: ignore[arg-type]
    assert verifier is not None
    assert (verifier.issuer, verifier.audience, verifier.groups_claim) == (
        "https://one.example",
        "api",
        "roles",
    )
    assert sign_in.verifier_for(settings) is verifier  # type: ignore[arg-type]
    unfinished = types.SimpleNamespace(
        oidc_issuer="https://one.example", oidc_audience="", oidc_groups_claim="g"
    )
    with pytest.raises(ValueError, match=exactly("OIDC_ISSUER is set but OIDC_AUDIENCE is not")):
        sign_in.verifier_for(unfinished)  # type: ignore[arg-type]


def test_the_user_key_is_bounded_and_holds_no_personal_data() -> None:
    keys = {
        User("https://a.example", "alice@example.com").key,
        User("https://b.example", "alice@example.com").key,
        User("https://a.example", "bob@example.com").key,
        User("https://a.example", "x" * 10_000).key,
    }
    assert len(keys) == 4
    for key in keys:
        assert key.startswith("user:") and len(key) == 37


@pytest.mark.parametrize(
    ("groups", "budget"),
    [
        ((), 200_000),
        (("unmapped",), 200_000),
        (("pro",), 2_000_000),
        (("trial",), 10_000),
        (("trial", "pro", "unmapped"), 2_000_000),
        (("pro", "staff"), 0),  # 0 is no daily budget, which beats any number
        (("staff",), 0),
    ],
)
def test_a_users_budget_is_the_largest_of_their_groups(groups: tuple[str, ...], budget: int) -> None:
    settings = Settings(
        daily_token_budget=200_000, group_token_budgets={"pro": 2_000_000, "trial": 10_000, "staff": 0}
    )
    assert group_budget(User("https://i.example", "s", groups), settings) == budget


@pytest.mark.parametrize(
    ("groups", "budget"),
    [
        ((), None),  # DAILY_BUDGET_USD applies
        (("unmapped",), None),
        (("pro",), 5_000_000_000),
        (("trial",), 100_000_000),
        (("trial", "pro", "unmapped"), 5_000_000_000),
        (("pro", "staff"), 0),  # 0 is no daily budget, which beats any amount
        (("staff",), 0),
        (("tiny",), 1),  # a positive amount is at least one nano-dollar, never "no budget"
    ],
)
def test_a_users_money_budget_is_the_largest_of_their_groups(
    groups: tuple[str, ...], budget: int | None
) -> None:
    settings = Settings(
        group_budgets_usd={
            "pro": Decimal("5.00"),
            "trial": Decimal("0.10"),
            "staff": Decimal("0"),
            "tiny": Decimal("0.0000000001"),
        }
    )
    assert group_money_budget(User("https://i.example", "s", groups), settings) == budget
