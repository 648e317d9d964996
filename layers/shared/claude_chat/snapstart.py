"""Lambda SnapStart: what the snapshot holds, and what each restored copy renews.

Every function publishes versions with SnapStart, so its init phase (imports,
settings, the DynamoDB client with its service model) runs once per version
and every cold start resumes from that memory. Three rules keep this safe:

- Nothing unique is made during init. Session ids, tokens and turn ids come
  from `secrets` (os.urandom) at request time, so restored copies never share
  them. Each restored copy reseeds `random` (the retry jitter of our Claude
  client, botocore and the anthropic SDK): otherwise every copy of one
  snapshot would draw the same sequence and retry in lockstep.
- No secret is read before the snapshot. The API key and the session-signing
  key are read on first use, through Powertools' cache, after the restore;
  `after_restore` also empties that cache, so even a value read by mistake
  during init is never served from the snapshot.
- No connection crosses the snapshot. Clients are built during init (that is
  the point) but hold no socket: `before_checkpoint` and `after_restore` close
  every pooled connection (the clients reconnect on next use) and forget the
  Claude client, which is rebuilt with the key read after the restore.

How the hooks are called differs by function. The chat and history functions
run in Lambda's Python runtime: `prepare()` registers them with
`snapshot_restore_py` (3.12+; missing locally, where there is no snapshot).
The stream function runs under uvicorn behind the Lambda Web Adapter, whose
process the runtime's hooks never reach: the adapter (1.1.0+) POSTs to two
routes of the stream app instead (AWS_LWA_SNAPSTART_*_PATH), which call the
same two functions.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import Any

from claude_chat import services
from claude_chat.settings import get_settings

BEFORE_CHECKPOINT_HOOKS: list[Callable[[], Any]] = []
RESTORE_HOOKS: list[Callable[[], Any]] = []


def warm() -> None:
    """At init: build what every request needs and no request must make; reads no secret, opens no socket."""
    get_settings()
    # botocore loads the DynamoDB service model here (~60 ms), once per version. No request is made;
    # credentials are refreshable, so a copy restored hours later fetches fresh ones when needed.
    services.dynamodb()
    services.catalog()  # a model without a price, or one IAM does not allow, fails the init


def prepare() -> None:
    """At init of a function in Lambda's Python runtime: warm up, then register the runtime hooks."""
    warm()
    _register(before_checkpoint, after_restore)


def before_checkpoint() -> None:
    """Just before the snapshot: nothing connected goes into it."""
    services.close_connections()


def after_restore() -> None:
    """In each restored copy, before its first request: its own randomness, connections and secrets."""
    reseed_random()
    services.close_connections()
    forget_secrets()


def reseed_random() -> None:
    random.seed()


def forget_secrets() -> None:
    """Empties Powertools' secret cache (if Powertools' parameters were ever imported): read again on use."""
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters")
    if parameters is not None:
        parameters.clear_caches()


def _register(before: Callable[[], Any], after: Callable[[], Any]) -> None:
    if after in RESTORE_HOOKS:
        return
    BEFORE_CHECKPOINT_HOOKS.append(before)
    RESTORE_HOOKS.append(after)
    try:
        from snapshot_restore_py import (  # type: ignore[import-not-found]
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:
        return
    register_before_snapshot(before)
    register_after_restore(after)
