"""The invocation's one absolute deadline, and what each step of a turn may spend of it.

Lambda ends an invocation at its timeout without a word: a buffered function
answers the browser a bare 502, a streamed one is cut mid-event, and any
charge or save still to come is lost. So every invocation carries one
deadline, taken from Lambda's context (or the Web Adapter's
`x-amzn-lambda-context` header), and everything that waits (Claude's
connection, each retry, the reply's stream) is bounded by it, keeping back
enough time for the turn to end properly: settle its tokens, save what it
may, and answer in JSON or with a clean SSE error event.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

# What a turn keeps back for its ending: the settle and the save (one DynamoDB round
# trip, with a retry), and the last bytes of the response.
ENDING_SECONDS = 2.0


class HasRemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Deadline:
    """A moment on the monotonic clock; `cutoff` is when a turn must start ending."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    @classmethod
    def of_lambda(cls, context: HasRemainingTime) -> Deadline:
        return cls.after(context.get_remaining_time_in_millis() / 1000)

    @classmethod
    def at_epoch_ms(cls, deadline_ms: float) -> Deadline:
        """From an epoch-milliseconds deadline, as the Web Adapter passes Lambda's."""
        return cls.after(deadline_ms / 1000 - time.time())

    def remaining(self) -> float:
        """Seconds until the invocation ends (negative once it has)."""
        return self.at - time.monotonic()

    @property
    def cutoff(self) -> float:
        return self.at - ENDING_SECONDS

    def until_cutoff(self) -> float:
        """Seconds a step may still wait before the turn must start ending."""
        return self.cutoff - time.monotonic()
