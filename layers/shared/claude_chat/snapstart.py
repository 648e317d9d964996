"""Lambda SnapStart: what the snapshot holds, and what each restored copy renews.

The chat and history functions publish versions with SnapStart, so their init
phase (imports, settings, the DynamoDB client with its service model) runs
once per version and every cold start resumes from that memory. Two rules keep
this safe:

- Nothing unique is made during init. Session ids and tokens come from
  `secrets` (os.urandom) at request time; no request, secret or connection is
  made before the snapshot. Secrets are read on first use, through Powertools'
  cache, after the restore.
- Each restored copy reseeds `random` (used for retry jitter): otherwise every
  copy of one snapshot would draw the same sequence and retry in lockstep.

`snapshot_restore_py` exists only in Lambda's Python runtime (3.12+); where it
is missing (locally, in tests) there is no snapshot and nothing to renew.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from claude_chat import services
from claude_chat.settings import get_settings

RESTORE_HOOKS: list[Callable[[], Any]] = []


def prepare() -> None:
    """At init: build what every request needs and no request must make, then register the restore hook."""
    get_settings()
    # botocore loads the DynamoDB service model here (~60 ms), once per version. No request is made;
    # credentials are refreshable, so a copy restored hours later fetches fresh ones when needed.
    services.dynamodb()
    _register_after_restore(reseed_random)


def reseed_random() -> None:
    random.seed()


def _register_after_restore(hook: Callable[[], Any]) -> None:
    if hook in RESTORE_HOOKS:
        return
    RESTORE_HOOKS.append(hook)
    try:
        from snapshot_restore_py import register_after_restore  # type: ignore[import-not-found]
    except ImportError:
        return
    register_after_restore(hook)
