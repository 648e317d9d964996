"""Runs inside a private network namespace: `make dev` with HOST=::, and clients from chosen addresses.

test_client_keys_over_ipv6.py starts it as `unshare -rn --pid --fork --kill-child python -m
tests.integration.ipv6_driver`. The namespace's loopback gets a local route for all of
2001:db8::/32 (the documentation prefix) and non-local binds, so a client can send from any
2001:db8:... address without touching the host's network. It prints one JSON object: the
server's start-up lines and, for each request, where it came from and what it got.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.dev_server import start_dev_server

RATE_LIMIT_MAX = 3
DOC_PREFIX = "2001:db8::/32"


def prepare_namespace() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
    subprocess.run(
        ["ip", "-6", "route", "add", "local", DOC_PREFIX, "dev", "lo"], check=True, capture_output=True
    )
    Path("/proc/sys/net/ipv6/ip_nonlocal_bind").write_text("1\n")


def post_chat(base_url: str, source: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=base_url, transport=transport, timeout=15) as client:
        response = client.post("/api/chat", json={"message": "hi"}, headers=headers or {})
    body = response.json()
    return {
        "source": source,
        "status": response.status_code,
        "code": body.get("code"),
        "remaining": response.headers.get("ratelimit-remaining"),
        "forwarded_for": (headers or {}).get("X-Forwarded-For"),
    }


def main() -> None:
    prepare_namespace()
    server = start_dev_server(HOST="::", RATE_LIMIT_MAX=str(RATE_LIMIT_MAX), DEV_WORKERS="2")
    try:
        port = server.base_url.rsplit(":", 1)[1]
        ipv6, ipv4 = f"http://[::1]:{port}", f"http://127.0.0.1:{port}"
        same_56 = [
            "2001:db8:aa:bb00::1",
            "2001:db8:aa:bb12:3456::2",
            "2001:db8:aa:bbff:ffff:ffff:ffff:ffff",
            "2001:db8:aa:bb42::99",  # the (max+1)th request of the /56, from an address not seen yet
            "2001:db8:aa:bb80::7",
        ]
        results: dict[str, Any] = {
            "rate_limit_max": RATE_LIMIT_MAX,
            "startup": [line for line in server.log().splitlines() if line.startswith("Chat page:")],
            "same_56": [post_chat(ipv6, source) for source in same_56],
            "next_56": [post_chat(ipv6, source) for source in ("2001:db8:aa:bc00::1", "2001:db8:aa:bcff::2")],
            "ipv4_a": [
                post_chat(ipv4, "127.0.0.2", {"X-Forwarded-For": f"198.51.100.{n}"})
                for n in range(RATE_LIMIT_MAX + 2)
            ],
            "ipv4_b": [post_chat(ipv4, "127.0.0.3", {"X-Forwarded-For": "127.0.0.2"})],
        }
        results["server_log"] = server.log()[-4000:]
    finally:
        server.stop()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
