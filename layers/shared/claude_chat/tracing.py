"""X-Ray tracing for the buffered functions (Powertools Tracer), built only when tracing is on.

Kept out of the modules every function imports: the X-Ray SDK takes about
0.25 s to import alone, though only some 20 ms after what the handlers import
anyway (BENCHMARKS.md, the cold-start rows with tracing off). In AWS
(template.yaml: Tracing: Active) tracing is on, and the SnapStart functions
pay that once, at publish time. Where Powertools
would disable the Tracer anyway (POWERTOOLS_TRACE_DISABLED, or outside
Lambda: `make dev`, the tests), a disabled Tracer still imports the SDK (to
switch it off), so `tracer` is then a stand-in that wraps nothing and the SDK
is never imported. DynamoDB calls show as subsegments (botocore is patched);
the Claude call is the rest of the handler's time. The streaming function is
traced by Lambda itself (Tracing: Active) without the SDK, as its app runs
outside the runtime's invocation context.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Tracer


class Untraced:
    """The part of Tracer the handlers use, doing what a disabled Tracer does: nothing."""

    disabled = True

    def capture_lambda_handler(
        self,
        lambda_handler: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Callable[..., Any]:
        if lambda_handler is None:
            return lambda handler: handler
        return lambda_handler


def tracing_on() -> bool:
    """Powertools' own rule (env var, Lambda or not), read without importing the X-Ray SDK."""
    return not Tracer._is_tracer_disabled()


def make_tracer() -> Tracer | Untraced:
    return Tracer(patch_modules=("botocore",)) if tracing_on() else Untraced()


tracer = make_tracer()
