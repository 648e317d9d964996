"""`make dev` with sign-in (`DEV_SIGN_IN=1`): the local OpenID provider in local/oidc/provider.mjs.

The provider is node `oidc-provider` (from package.json, installed by `npm ci`), run as a child
process that exits when this one does: it holds the read end of a pipe whose write end only this
process has, so it sees end-of-file however the server ends, a kill -9 included. The server sets
`OIDC_ISSUER` and friends from what the provider says once it listens, before any function worker
starts, so the workers verify tokens against it like against any deployed issuer.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_SCRIPT = ROOT / "local" / "oidc" / "provider.mjs"
DEFAULT_CLIENT_ID = "claude-chat-local"
DEFAULT_AUDIENCE = "claude-chat-api"


class ProviderError(RuntimeError):
    """The provider could not start; the message says what to do."""


@dataclass
class DevProvider:
    """A running local provider: what the page and the backend need to know about it."""

    issuer: str
    client_id: str
    audience: str
    groups_claim: str
    users: list[dict[str, Any]]
    process: subprocess.Popen[bytes] = field(repr=False)

    def environment(self) -> dict[str, str]:
        """The backend's sign-in settings for this provider."""
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_AUDIENCE": self.audience,
            "OIDC_GROUPS_CLAIM": self.groups_claim,
        }

    def page_config(self) -> dict[str, str]:
        """What `/config.json` adds for the page: where to sign in, and as which client."""
        return {"issuer": self.issuer, "clientId": self.client_id}

    def notes(self) -> list[str]:
        users = ", ".join(
            f"{user['login']} / {user['password']}"
            + (f" (groups: {', '.join(user['groups'])})" if user.get("groups") else "")
            for user in self.users
        )
        return [
            f"Sign-in: required; local OpenID provider (node oidc-provider) at {self.issuer},"
            f" client {self.client_id!r}, audience {self.audience!r}, groups claim {self.groups_claim!r}",
            f"Sign-in: test users {users}",
        ]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def redirect_uris(port: int, allowed_origins: list[str]) -> list[str]:
    """The page's addresses under `make dev`, and those of any other origin allowed to call the API.

    The page's redirect URI is its own URL (`<origin>/`), so an origin whose page may call the
    routes (CORS_ALLOW_ORIGINS) may also sign in; `*` adds nothing.
    """
    uris = [f"http://127.0.0.1:{port}/", f"http://localhost:{port}/"]
    for allowed in allowed_origins:
        origin = allowed.strip().rstrip("/")
        if origin and origin != "*" and f"{origin}/" not in uris:
            uris.append(f"{origin}/")
    return uris


def start_provider(
    uris: list[str],
    *,
    port: int = 0,
    client_id: str = DEFAULT_CLIENT_ID,
    audience: str = DEFAULT_AUDIENCE,
    access_token_ttl: int | None = None,
    timeout: float = 30.0,
) -> DevProvider:
    """Starts local/oidc/provider.mjs and waits for it to say where it listens."""
    node = shutil.which("node")
    if node is None:
        raise ProviderError("DEV_SIGN_IN needs Node.js (`node`) for the local OpenID provider")
    if not (ROOT / "node_modules" / "oidc-provider").is_dir():
        raise ProviderError("DEV_SIGN_IN needs node_modules/oidc-provider: run `npm ci` (make dev does)")
    env = {
        **os.environ,
        "OIDC_HOST": "127.0.0.1",
        "OIDC_PORT": str(port),
        "OIDC_CLIENT_ID": client_id,
        "OIDC_AUDIENCE": audience,
        "OIDC_REDIRECT_URIS": ",".join(uris),
    }
    if access_token_ttl is not None:
        env["OIDC_ACCESS_TOKEN_TTL"] = str(access_token_ttl)
    process = subprocess.Popen(  # noqa: S603 (node and the project's own script, no shell)
        [node, str(PROVIDER_SCRIPT)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,  # closed when this process ends: the provider exits then
        stdout=subprocess.PIPE,
    )
    try:
        ready = _ready_line(process, timeout)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return DevProvider(
        issuer=str(ready["issuer"]),
        client_id=str(ready["clientId"]),
        audience=str(ready["audience"]),
        groups_claim=str(ready["groupsClaim"]),
        users=list(ready["users"]),
        process=process,
    )


def _ready_line(process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                line = process.stdout.readline()
                if not line:
                    break
                ready: dict[str, Any] = json.loads(line)
                return ready
    code = process.poll()
    why = f"exited with status {code}" if code is not None else f"did not start in {timeout:.0f} s"
    raise ProviderError(f"the local OpenID provider {why} (its messages are above)")
