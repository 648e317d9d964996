"""`make dev` with sign-in: the local OpenID provider, spoken to over real HTTP as the page would.

The whole authorization-code flow with PKCE, by hand (discovery, the login form, the code, the
token endpoint, a refresh), then the tokens checked with PyJWT against the provider's published
keys, as the backend checks them. And the server side: DEV_SIGN_IN=1 gives the page its issuer,
anonymous `make dev` still serves `{}`, and the provider never outlives the server.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from local.dev_sign_in import DevProvider, redirect_uris, start_provider
from tests.dev_server import DevServer, start_dev_server

PAGE = "http://127.0.0.1:3999/"


@pytest.fixture(scope="module")
def provider() -> Iterator[DevProvider]:
    started = start_provider([PAGE, "http://localhost:3999/"])
    yield started
    started.stop()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def discovery(provider: DevProvider) -> dict[str, Any]:
    response = httpx.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=10)
    response.raise_for_status()
    return dict(response.json())


def sign_in(
    provider: DevProvider, login: str, password: str, *, redirect_uri: str = PAGE
) -> tuple[httpx.Response, str]:
    """Runs the browser's side of the flow; returns the token endpoint's answer and the verifier."""
    meta = discovery(provider)
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    with httpx.Client(timeout=10, follow_redirects=False) as browser:
        response = browser.get(
            meta["authorization_endpoint"],
            params={
                "client_id": provider.client_id,
                "response_type": "code",
                "scope": "openid profile",
                "redirect_uri": redirect_uri,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": state,
            },
        )
        assert response.status_code in (302, 303), response.text
        form_url = httpx.URL(provider.issuer).join(response.headers["location"])
        form = browser.get(form_url)
        assert form.status_code == 200
        assert 'name="password"' in form.text
        action = re.search(r'<form method="post" action="([^"]+)"', form.text)
        assert action is not None
        response = browser.post(
            httpx.URL(provider.issuer).join(action[1]), data={"login": login, "password": password}
        )
        # The login is followed through the provider's redirects (its consent step included) to the page.
        for _ in range(6):
            if response.status_code not in (302, 303):
                break
            location = str(httpx.URL(provider.issuer).join(response.headers["location"]))
            if location.startswith(redirect_uri):
                break
            response = browser.get(location)
        if response.status_code not in (302, 303):
            return response, verifier
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert query["state"] == [state]
        assert query["iss"] == [provider.issuer]
        token = httpx.post(
            meta["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": redirect_uri,
                "client_id": provider.client_id,
                "code_verifier": verifier,
            },
            headers={"Origin": PAGE.rstrip("/")},
            timeout=10,
        )
        return token, verifier


def verified(provider: DevProvider, token: str, audience: str) -> dict[str, Any]:
    """The token checked as the backend checks it: the issuer's keys, RS256, iss, aud, exp."""
    keys = jwt.PyJWKClient(discovery(provider)["jwks_uri"])
    return dict(
        jwt.decode(
            token,
            keys.get_signing_key_from_jwt(token).key,
            algorithms=["RS256", "ES256"],
            audience=audience,
            issuer=provider.issuer,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    )


def test_the_provider_says_where_it_is_and_who_can_sign_in(provider: DevProvider) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", provider.issuer)
    meta = discovery(provider)
    assert meta["issuer"] == provider.issuer
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert provider.environment() == {
        "OIDC_ISSUER": provider.issuer,
        "OIDC_AUDIENCE": "claude-chat-api",
        "OIDC_GROUPS_CLAIM": "groups",
    }
    assert {user["login"] for user in provider.users} == {"ada", "grace"}


def test_the_whole_code_flow_gives_an_rs256_access_token_for_the_api(provider: DevProvider) -> None:
    response, _ = sign_in(provider, "ada", "lovelace")
    assert response.status_code == 200, response.text
    # The page calls the token endpoint from its own origin: the browser needs CORS to read the answer.
    assert response.headers["access-control-allow-origin"] == PAGE.rstrip("/")
    tokens = response.json()
    assert tokens["token_type"].lower() == "bearer"
    assert jwt.get_unverified_header(tokens["access_token"])["alg"] == "RS256"
    claims = verified(provider, tokens["access_token"], "claude-chat-api")
    assert claims["sub"] == "ada"
    assert claims["client_id"] == provider.client_id
    assert "groups" not in claims  # ada is in no group
    assert claims["exp"] - claims["iat"] == 3600
    id_claims = verified(provider, tokens["id_token"], provider.client_id)
    assert id_claims["name"] == "Ada Lovelace"
    assert tokens["refresh_token"]


def test_a_user_in_a_group_carries_it_in_the_access_token(provider: DevProvider) -> None:
    response, _ = sign_in(provider, "grace", "hopper")
    claims = verified(provider, response.json()["access_token"], "claude-chat-api")
    assert claims["sub"] == "grace"
    assert claims[provider.groups_claim] == ["pro"]


def test_the_access_token_is_not_accepted_for_another_audience(provider: DevProvider) -> None:
    response, _ = sign_in(provider, "ada", "lovelace")
    with pytest.raises(jwt.InvalidAudienceError):
        verified(provider, response.json()["access_token"], provider.client_id)


@pytest.mark.parametrize(("login", "password"), [("ada", "wrong"), ("ada", ""), ("nobody", "lovelace")])
def test_a_wrong_password_or_unknown_user_gets_the_form_again_and_no_code(
    provider: DevProvider, login: str, password: str
) -> None:
    response, _ = sign_in(provider, login, password)
    assert response.status_code in (400, 401)
    assert "code=" not in response.headers.get("location", "")


def test_a_refresh_token_renews_the_access_token_and_is_rotated(provider: DevProvider) -> None:
    first = sign_in(provider, "grace", "hopper")[0].json()
    token_endpoint = discovery(provider)["token_endpoint"]
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": first["refresh_token"],
        "client_id": provider.client_id,
    }
    renewed = httpx.post(token_endpoint, data=refresh, timeout=10)
    assert renewed.status_code == 200, renewed.text
    again = renewed.json()
    assert again["access_token"] != first["access_token"]
    assert verified(provider, again["access_token"], "claude-chat-api")["groups"] == ["pro"]
    # A public client's refresh token is used once: the old one no longer works.
    reused = httpx.post(token_endpoint, data=refresh, timeout=10)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"


def test_a_code_without_its_pkce_verifier_is_refused(provider: DevProvider) -> None:
    meta = discovery(provider)
    response = httpx.get(
        meta["authorization_endpoint"],
        params={
            "client_id": provider.client_id,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": PAGE,
        },
        timeout=10,
    )
    # No code_challenge at all: the provider refuses before any login (PKCE is required).
    assert response.status_code in (302, 303)
    assert "error=invalid_request" in response.headers["location"]


def test_a_redirect_uri_that_is_not_the_page_is_refused(provider: DevProvider) -> None:
    _, challenge = pkce_pair()
    response = httpx.get(
        discovery(provider)["authorization_endpoint"],
        params={
            "client_id": provider.client_id,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": "http://127.0.0.1:4000/",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        timeout=10,
    )
    assert response.status_code == 400
    assert "redirect_uri did not match" in response.text


def test_redirect_uris_are_the_page_and_the_origins_allowed_to_call_the_api() -> None:
    assert redirect_uris(3000, ["*"]) == ["http://127.0.0.1:3000/", "http://localhost:3000/"]
    assert redirect_uris(3000, ["https://chat.example.com/", " http://localhost:3000"]) == [
        "http://127.0.0.1:3000/",
        "http://localhost:3000/",
        "https://chat.example.com/",
    ]


def test_the_provider_exits_when_its_parent_lets_go() -> None:
    started = start_provider([PAGE])
    assert started.process.stdin is not None
    started.process.stdin.close()  # what the kernel does when the server dies, however it dies
    assert started.process.wait(timeout=10) == 0
    started.stop()


# --------------------------------------------------------------------------- the server side


@pytest.fixture(scope="module")
def signed_in_server() -> Iterator[DevServer]:
    server = start_dev_server(DEV_SIGN_IN="1")
    yield server
    server.stop()


def test_dev_sign_in_gives_the_page_the_issuer_and_prints_the_test_users(signed_in_server: DevServer) -> None:
    config = httpx.get(f"{signed_in_server.base_url}/config.json", timeout=10).json()
    assert config["clientId"] == "claude-chat-local"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", config["issuer"])
    meta = httpx.get(f"{config['issuer']}/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == config["issuer"]
    log = signed_in_server.log()
    assert f"local OpenID provider (node oidc-provider) at {config['issuer']}" in log
    assert "ada / lovelace" in log
    assert "grace / hopper (groups: pro)" in log


def test_the_local_page_is_a_redirect_uri_of_the_provider(signed_in_server: DevServer) -> None:
    config = httpx.get(f"{signed_in_server.base_url}/config.json", timeout=10).json()
    _, challenge = pkce_pair()
    response = httpx.get(
        f"{config['issuer']}/auth",
        params={
            "client_id": config["clientId"],
            "response_type": "code",
            "scope": "openid profile",
            "redirect_uri": f"{signed_in_server.base_url}/",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        timeout=10,
    )
    assert response.status_code in (302, 303)
    assert response.headers["location"].startswith("/interaction/")


def test_anonymous_make_dev_serves_an_empty_config_and_starts_no_provider(dev_server: DevServer) -> None:
    assert httpx.get(f"{dev_server.base_url}/config.json", timeout=10).json() == {}
    assert "Sign-in" not in dev_server.log()


def _group(pgid: int) -> list[str]:
    """The command lines of the live processes of a process group (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[2]) == pgid and stat[0] not in ("Z", "X"):
                found.append((entry / "cmdline").read_text().replace("\0", " ")[:100])
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_everything_the_server_started_dies_with_it(tmp_path: Path) -> None:
    """A crashed `make dev` leaves no process behind: the provider, the workers, the fork server.

    (Only its fork server's socket directory, which no code of a SIGKILLed process can remove: in
    pytest's temporary directory here, not in /tmp.)
    """
    server = start_dev_server(DEV_SIGN_IN="1", TMPDIR=str(tmp_path))
    try:
        issuer = httpx.get(f"{server.base_url}/config.json", timeout=10).json()["issuer"]
        assert httpx.get(f"{issuer}/jwks", timeout=5).status_code == 200
        assert len(_group(server.process.pid)) >= 6, _group(server.process.pid)  # workers and all
        # SIGKILL the server alone (not its process group): no cleanup code of ours runs.
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _group(server.process.pid):
            time.sleep(0.2)
        assert _group(server.process.pid) == [], "processes outlived the server"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{issuer}/jwks", timeout=1)
    finally:
        server.stop()


@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_a_stopped_server_leaves_nothing(tmp_path: Path, how: str) -> None:
    """`kill <pid>` (SIGTERM to the server, as the tests stop servers) or Ctrl-C (SIGINT to the whole
    process group) ends every process at once, with the exit status a shell reports for the signal,
    the fork server's socket directory (multiprocessing's pymp-*, under TMPDIR) removed, and no
    traceback from a worker cut short."""
    server = start_dev_server(TMPDIR=str(tmp_path))
    try:
        assert server.client().post("/api/chat", json={"message": "hi"}).status_code == 200
        assert list(tmp_path.glob("pymp-*")), "the fork server's directory is not where this test looks"
        if how == "kill":
            os.kill(server.process.pid, signal.SIGTERM)
        else:
            os.killpg(server.process.pid, signal.SIGINT)
        assert server.process.wait(timeout=20) == 128 + (signal.SIGTERM if how == "kill" else signal.SIGINT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _group(server.process.pid):
            time.sleep(0.2)
        assert _group(server.process.pid) == []
        assert list(tmp_path.glob("pymp-*")) == []
        assert "Traceback" not in server.log(), server.log()[-3000:]
    finally:
        server.stop()
