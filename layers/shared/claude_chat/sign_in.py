"""Signed-in callers: OpenID Connect bearer tokens checked against the issuer's published keys.

One `TokenVerifier` per execution environment (see `verifier_for`) keeps the
issuer's discovery document and key set in memory, so a warm function verifies
a token with no network call. The key set is fetched again when it is five
minutes old (a key the provider removed stops working then) or when a token
names a key id it does not hold (a provider's new key is picked up at once),
but never more than once per `refetch_seconds`: a flood of tokens naming
forged key ids costs at most one fetch per 30 s. While the provider is
unreachable the keys already held keep working.

Only RS256 and ES256 are accepted, and the algorithm comes from the key the
provider published, never from the token alone: a token cannot choose `none`,
or HS256 with the public key as its secret. Every refusal, whatever its cause
(the provider's endpoints down or broken included), is one `Unauthorized`, and
its reason is logged without the token.

PyJWT (and with it `cryptography`) is imported only when a verifier is built,
so an anonymous deployment never loads it.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from claude_chat.errors import Unauthorized
from claude_chat.pricing import nanos

if TYPE_CHECKING:
    from claude_chat.settings import Settings

_logger = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")
MAX_LEEWAY_SECONDS = 60
# The key set is fetched again once this old, so a key the provider removed stops working.
KEYS_MAX_AGE_SECONDS = 300.0
# Real ID and access tokens are a few KB; anything far larger is refused before any parsing.
_MAX_TOKEN_CHARS = 16_384
_MAX_KEY_ID_CHARS = 256
_MAX_DOCUMENT_BYTES = 512 * 1024
_MIN_RSA_BITS = 2048
# RFC 6750's b64token after the scheme, which is case-insensitive (RFC 7235).
_BEARER = re.compile(r"bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class User:
    """A verified caller: the issuer and its `sub` name one person; `groups` sets their quota."""

    issuer: str
    subject: str
    groups: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The client key budgets and history are stored under: bounded, and no personal data in it."""
        digest = hashlib.sha256(f"{self.issuer}\n{self.subject}".encode()).hexdigest()
        return "user:" + digest[:32]


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of `Authorization: Bearer <token>` (header names lower-cased), or None."""
    value = headers.get("authorization")
    if not isinstance(value, str):
        return None
    match = _BEARER.fullmatch(value.strip())
    return match.group(1) if match else None


def group_budget(user: User, settings: Settings) -> int:
    """The user's daily token budget: the largest of their groups' in GROUP_TOKEN_BUDGETS.

    A group mapped to 0 means no daily budget (0 turns DAILY_TOKEN_BUDGET off too),
    so it beats every number. A user in no mapped group has DAILY_TOKEN_BUDGET.
    """
    budgets = [settings.group_token_budgets[g] for g in user.groups if g in settings.group_token_budgets]
    if not budgets:
        return settings.daily_token_budget
    return 0 if 0 in budgets else max(budgets)


def group_money_budget(user: User, settings: Settings) -> int | None:
    """The user's daily money budget in nano-dollars: the largest of their groups' in GROUP_BUDGETS_USD
    (a group at 0 means none, and beats every amount); None for a user in no mapped group (the
    default, DAILY_BUDGET_USD, applies)."""
    budgets = [settings.group_budgets_usd[g] for g in user.groups if g in settings.group_budgets_usd]
    if not budgets:
        return None
    return 0 if 0 in budgets else nanos(max(budgets))


def verifier_for(settings: Settings) -> TokenVerifier | None:
    """The environment's one verifier (its key cache lives as long as the process), or None if anonymous."""
    if not settings.oidc_issuer:
        return None
    if not settings.oidc_audience:
        raise ValueError("OIDC_ISSUER is set but OIDC_AUDIENCE is not")
    return _cached_verifier(settings.oidc_issuer, settings.oidc_audience, settings.oidc_groups_claim)


@lru_cache(maxsize=4)
def _cached_verifier(issuer: str, audience: str, groups_claim: str) -> TokenVerifier:
    return TokenVerifier(issuer, audience, groups_claim=groups_claim)


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: the only hosts an issuer may be reached on over plain http."""
    host = host.lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str, what: str) -> None:
    """https anywhere, http on loopback only: over plain http, anyone on the path could swap the keys."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError as error:
        raise ValueError(f"{what} is not a valid URL") from error
    if not host or parts.username is not None or parts.password is not None:
        raise ValueError(f"{what} must be an absolute URL with a host and no user info")
    if parts.query or parts.fragment:
        raise ValueError(f"{what} must have no query or fragment")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and is_loopback_host(host):
        return
    raise ValueError(f"{what} must use https (plain http only on a loopback address), not {url!r}")


class _Refused(Exception):
    """Why a token was refused: logged (INFO, or WARNING when the provider is at fault), never shown."""

    def __init__(self, reason: str, *, provider: bool = False) -> None:
        super().__init__(reason)  # str(refused) is the reason
        self.provider = provider


class _ProviderError(Exception):
    """The discovery document or key set could not be fetched or made sense of."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Discovery and keys are read from exactly the URLs named, never from where a redirect points."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


class TokenVerifier:
    """Verifies bearer tokens of one issuer for one audience; holds that issuer's keys in memory."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        groups_claim: str = "cognito:groups",
        leeway_seconds: int = 60,
        refetch_seconds: float = 30.0,
        http_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_url(issuer, "OIDC_ISSUER")
        if not audience:
            raise ValueError("OIDC_AUDIENCE must not be empty")
        if not 0 <= leeway_seconds <= MAX_LEEWAY_SECONDS:
            raise ValueError(f"the clock leeway must be 0..{MAX_LEEWAY_SECONDS} seconds")
        if refetch_seconds < 0 or http_timeout <= 0:
            raise ValueError("refetch_seconds must be >= 0 and http_timeout > 0")
        import jwt  # noqa: F401 -- loaded here, at init, so the first signed-in request does not pay for it

        self.issuer = issuer
        self.audience = audience
        self.groups_claim = groups_claim
        self.leeway_seconds = leeway_seconds
        self.refetch_seconds = refetch_seconds
        self.http_timeout = http_timeout
        self._clock = clock
        self._discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self._lock = threading.Lock()
        self._jwks_uri: str | None = None
        self._keys: dict[str, tuple[str, Any]] = {}  # kid -> (algorithm, public key)
        self._keys_fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._fetching: threading.Event | None = None  # set when the fetch in flight ends

    def verify(self, token: str | None) -> User:
        """The token's user; `Unauthorized` for a missing token and for any failure at all."""
        if not token:
            _logger.info("sign-in refused: no bearer token")
            raise Unauthorized()
        try:
            return self._verify(token)
        except _Refused as refused:
            level = logging.WARNING if refused.provider else logging.INFO
            _logger.log(level, "sign-in refused: %s", refused)
        except Exception as error:  # never a 500 for a token, whatever went wrong
            _logger.warning("sign-in refused: unexpected %s", type(error).__name__)
        raise Unauthorized(token_presented=True)

    def warm(self) -> bool:
        """Fetch the discovery document and keys now; False if the provider failed.

        Not for a SnapStart init phase, where the project makes no request before the snapshot:
        there, the first signed-in request fetches them.
        """
        with self._lock:
            if self._keys and not self._keys_stale():
                return True
            fetch = self._start_fetch()
        if fetch is not None:
            fetch.wait(self.http_timeout)
        with self._lock:
            return bool(self._keys) and not self._keys_stale()

    def _verify(self, token: str) -> User:
        import jwt

        if len(token) > _MAX_TOKEN_CHARS:
            raise _Refused("token too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise _Refused(f"malformed token ({type(error).__name__})") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise _Refused(f"algorithm {str(algorithm)[:16]!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > _MAX_KEY_ID_CHARS:
            raise _Refused("the token names no usable key id")
        key_algorithm, key = self._key_for(kid)
        if key_algorithm != algorithm:
            raise _Refused(f"the token says {algorithm} but its key is for {key_algorithm}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[key_algorithm],
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise _Refused(f"{type(error).__name__}: {str(error)[:80]}") from None
        if claims.get("iss") != self.issuer:
            raise _Refused("wrong issuer")
        if not self._audience_matches(claims):
            raise _Refused("wrong audience")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise _Refused("empty subject")
        return User(self.issuer, subject, _groups(claims.get(self.groups_claim)))

    def _audience_matches(self, claims: Mapping[str, Any]) -> bool:
        """`aud` holds the audience; or, with no `aud` at all (Cognito access tokens), `client_id` is it."""
        if "aud" not in claims:
            return claims.get("client_id") == self.audience
        audience = claims["aud"]
        if isinstance(audience, str):
            return audience == self.audience
        return isinstance(audience, list) and self.audience in audience

    def _key_for(self, kid: str) -> tuple[str, Any]:
        """The key a token names. The lock guards only the key set, never a fetch: a request whose
        key is held and fresh never waits on the network, and one whose key is unknown or stale
        waits for the fetch at most `http_timeout`, however slowly the provider answers."""
        with self._lock:
            entry = self._keys.get(kid)
            if entry is not None and not self._keys_stale():
                return entry
            # A stale key set or an unknown key id: fetch, unless a fetch was tried too recently.
            fetch = self._start_fetch()
            if entry is not None and fetch is None:
                return entry  # a fetch was tried just now: held keys stay in use until one succeeds
        if fetch is not None:
            fetch.wait(self.http_timeout)
        with self._lock:
            entry = self._keys.get(kid)
            if entry is not None:
                return entry
            if not self._keys:
                raise _Refused("the issuer's keys are unavailable", provider=True)
            raise _Refused("unknown key id")

    def _keys_stale(self) -> bool:
        # A negative age (a clock that went back, as after a snapshot restore) counts as stale too.
        if self._keys_fetched_at is None:
            return True
        return not 0 <= self._clock() - self._keys_fetched_at < KEYS_MAX_AGE_SECONDS

    def _start_fetch(self) -> threading.Event | None:
        """The fetch in flight, or a new one on its own thread if none was tried within
        `refetch_seconds` (failed attempts count too); None when neither. Call with the lock held."""
        if self._fetching is not None and not self._fetching.is_set():
            return self._fetching
        now = self._clock()
        if self._last_attempt is not None and 0 <= now - self._last_attempt < self.refetch_seconds:
            return None
        self._last_attempt = now
        done = self._fetching = threading.Event()
        threading.Thread(target=self._fetch_keys, args=(done,), name="oidc-keys", daemon=True).start()
        return done

    def _fetch_keys(self, done: threading.Event) -> None:
        try:
            self._refresh()
        except _ProviderError as error:
            # The keys already held (if any) stay in use until a fetch succeeds.
            _logger.warning("sign-in: could not refresh the issuer's keys (%s)", error)
        except Exception as error:  # a thread's failure must not go unseen, nor leave waiters waiting
            _logger.warning("sign-in: the key fetch failed (%s)", type(error).__name__)
        finally:
            done.set()

    def _refresh(self) -> None:
        import jwt

        if self._jwks_uri is None:
            document = self._fetch_json(self._discovery_url, "discovery document")
            named = document.get("issuer")
            if named != self.issuer:
                # Public information, and the usual cause is a trailing slash: say what it is.
                raise _ProviderError(
                    f"the discovery document names the issuer {str(named)[:200]!r}, not OIDC_ISSUER"
                )
            jwks_uri = document.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise _ProviderError("the discovery document has no jwks_uri")
            try:
                _check_url(jwks_uri, "jwks_uri")
            except ValueError as error:
                raise _ProviderError(str(error)) from None
            self._jwks_uri = jwks_uri
        key_set = self._fetch_json(self._jwks_uri, "key set")
        entries = key_set.get("keys")
        if not isinstance(entries, list):
            raise _ProviderError("the key set has no list of keys")
        keys: dict[str, tuple[str, Any]] = {}
        for entry in entries:
            parsed = _signing_key(entry, jwt)
            if parsed is not None:
                keys.setdefault(parsed[0], (parsed[1], parsed[2]))
        if not keys:
            raise _ProviderError("the key set has no RS256 or ES256 signing key")
        with self._lock:
            self._keys = keys
            self._keys_fetched_at = self._clock()

    def _fetch_json(self, url: str, what: str) -> dict[str, Any]:
        """A JSON object from `url`, within `http_timeout` overall, or `_ProviderError`."""
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if is_loopback_host(urlsplit(url).hostname or ""):
            handlers.append(urllib.request.ProxyHandler({}))  # a loopback issuer is never behind a proxy
        opener = urllib.request.build_opener(*handlers)
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 -- https or loopback http, checked
        deadline = time.monotonic() + self.http_timeout
        try:
            with opener.open(request, timeout=self.http_timeout) as response:
                body = bytearray()
                while chunk := response.read1(65_536):
                    body += chunk
                    if len(body) > _MAX_DOCUMENT_BYTES:
                        raise _ProviderError(f"the {what} is too large")
                    if time.monotonic() > deadline:
                        raise _ProviderError(f"the {what} took longer than {self.http_timeout} s")
            document = json.loads(bytes(body))
        except (OSError, ValueError, http.client.HTTPException) as error:
            raise _ProviderError(f"the {what} could not be read ({type(error).__name__})") from None
        if not isinstance(document, dict):
            raise _ProviderError(f"the {what} is not a JSON object")
        return document


def _signing_key(entry: object, jwt: Any) -> tuple[str, str, Any] | None:
    """(kid, algorithm, public key) of a published key we accept, else None.

    The algorithm is decided here, from the key's type and curve: RSA -> RS256,
    EC P-256 -> ES256; a key that declares any other `alg`, or is symmetric, is skipped.
    """
    if not isinstance(entry, dict):
        return None
    kid, kty, declared = entry.get("kid"), entry.get("kty"), entry.get("alg")
    if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig" or "d" in entry:
        return None
    if kty == "RSA" and declared in (None, "RS256"):
        algorithm = "RS256"
    elif kty == "EC" and entry.get("crv") == "P-256" and declared in (None, "ES256"):
        algorithm = "ES256"
    else:
        return None
    try:
        key = jwt.PyJWK(entry, algorithm=algorithm).key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    if algorithm == "RS256" and key.key_size < _MIN_RSA_BITS:
        return None
    return kid, algorithm, key


def _groups(value: object) -> tuple[str, ...]:
    """The groups claim as a tuple: a list of strings, or one string, else none."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str) and item)
    return ()
