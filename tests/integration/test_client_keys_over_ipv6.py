"""Client keys over real HTTP from many IPv6 and IPv4 source addresses, in a private network namespace.

The host's network is never touched: ipv6_driver.py runs in new user, network and PID namespaces
(`unshare`), where it gives loopback all of 2001:db8::/32 and starts `make dev` with HOST=::.
Being PID 1 of its namespace, its end (or unshare's, through --kill-child) ends every process it
started, the dev server and its workers included.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from tests.dev_server import ROOT

pytestmark = pytest.mark.integration

_NAMESPACES = ["--pid", "--fork", "--kill-child"]


def _unshare_command() -> list[str]:
    """The first `unshare` that works here (unprivileged user namespace first), or a skip saying why."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs util-linux `unshare` and iproute2 `ip` to build a private network namespace")
    candidates = [["unshare", "--user", "--map-root-user", "--net", *_NAMESPACES]]
    if os.geteuid() == 0:
        candidates.append(["unshare", "--net", *_NAMESPACES])
    failures = []
    for command in candidates:
        probe = subprocess.run(
            [*command, "ip", "link", "set", "lo", "up"], check=False, capture_output=True, timeout=10
        )
        if probe.returncode == 0:
            return command
        failures.append(f"{' '.join(command)}: {probe.stderr.decode(errors='replace').strip()}")
    pytest.skip(
        "cannot create a private network namespace here (user namespaces disabled or restricted,"
        " e.g. kernel.apparmor_restrict_unprivileged_userns=1): " + "; ".join(failures)
    )


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    command = [*_unshare_command(), sys.executable, "-m", "tests.integration.ipv6_driver"]
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers' / 'shared'}{os.pathsep}{ROOT}"}
    # On a timeout, run() kills unshare, whose --kill-child takes the driver (PID 1 there) and so the
    # whole namespace with it.
    driver = subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert driver.returncode == 0, driver.stderr.decode(errors="replace")[-4000:]
    return dict(json.loads(driver.stdout))


def statuses(rows: list[dict[str, Any]]) -> list[tuple[int, str | None, str | None]]:
    return [(row["status"], row["code"], row["remaining"]) for row in rows]


def test_host_unspecified_prints_a_bracketed_loopback_url(results) -> None:
    [line] = results["startup"]
    assert line.startswith("Chat page: http://[::1]:")


def test_addresses_of_one_slash_56_share_one_budget(results) -> None:
    limit = results["rate_limit_max"]
    rows = results["same_56"]
    assert len({row["source"] for row in rows}) == len(rows)  # every request from a new address
    assert statuses(rows[:limit]) == [(200, None, str(limit - 1 - n)) for n in range(limit)]
    # The (max+1)th request of the window is refused, whichever address of the /56 sends it.
    assert statuses(rows[limit:]) == [(429, "rate_limited", "0")] * (len(rows) - limit)


def test_the_next_slash_56_has_a_budget_of_its_own(results) -> None:
    limit = results["rate_limit_max"]
    assert statuses(results["next_56"]) == [(200, None, str(limit - 1)), (200, None, str(limit - 2))]


def test_ipv4_clients_of_a_dual_stack_server_each_have_their_own_budget(results) -> None:
    limit = results["rate_limit_max"]
    first, second = results["ipv4_a"], results["ipv4_b"]
    assert {row["source"] for row in first} == {"127.0.0.2"}
    assert statuses(first[:limit]) == [(200, None, str(limit - 1 - n)) for n in range(limit)]
    assert statuses(first[limit:]) == [(429, "rate_limited", "0")] * (len(first) - limit)
    assert statuses(second) == [(200, None, str(limit - 1))]


def test_x_forwarded_for_changes_nothing(results) -> None:
    # A new X-Forwarded-For on every request bought 127.0.0.2 nothing, and 127.0.0.3 naming
    # 127.0.0.2 (already spent) was still counted as itself.
    spoofs = [row["forwarded_for"] for row in results["ipv4_a"]]
    assert len(set(spoofs)) == len(spoofs)
    assert results["ipv4_a"][-1]["status"] == 429
    assert results["ipv4_b"][0]["forwarded_for"] == "127.0.0.2"
    assert results["ipv4_b"][0]["status"] == 200
