"""Metrics and log context, with nothing a user typed in them.

Metrics are CloudWatch EMF lines printed to stdout (Powertools), so they cost
no API call and work the same under the Lambda runtime and under the Web
Adapter. Each call emits one line at once, which suits both a Powertools
handler and the streaming ASGI app. Names and dimensions (the README lists
them, and template.yaml's alarms read them):

    InputTokens, OutputTokens, CacheReadInputTokens, CacheCreationInputTokens,
    CostUSD, Turns, TurnLatency      dimensions: service, model; and service alone
    RateLimitedRequests              dimensions: service, limit (requests | tokens | money | global_tokens)
    UpstreamErrors                   dimensions: service, kind (the contract's error code)

Logs carry a hash of the session id, never the token, the id or message text.
"""

from __future__ import annotations

import contextlib
import hashlib
import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.exceptions import OrphanedChildLoggerError
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from claude_chat.models import Usage

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ClaudeChat")
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "claude-chat")

logger = Logger(child=True)


def _metrics(dimension: str, value: str) -> EphemeralMetrics:
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    metrics.add_dimension(dimension, value)
    return metrics


def record_turn(model: str, usage: Usage, seconds: float | None, cost_nanos: int = 0) -> None:
    """The tokens and cost (what the budgets charged, in nano-dollars) of a turn that reached Claude;
    `seconds` when it ended with a reply (whole or partial)."""
    metrics = _metrics("model", model)
    # A second dimension set, the service alone: what the daily spend alarms add up across models.
    metrics.add_dimensions(service=SERVICE)
    metrics.add_metric("CostUSD", MetricUnit.NoUnit, round(cost_nanos / 1_000_000_000, 9))
    metrics.add_metric("InputTokens", MetricUnit.Count, usage.input_tokens)
    metrics.add_metric("OutputTokens", MetricUnit.Count, usage.output_tokens)
    metrics.add_metric("CacheReadInputTokens", MetricUnit.Count, usage.cache_read_input_tokens)
    metrics.add_metric("CacheCreationInputTokens", MetricUnit.Count, usage.cache_creation_input_tokens)
    if seconds is not None:
        metrics.add_metric("Turns", MetricUnit.Count, 1)
        metrics.add_metric("TurnLatency", MetricUnit.Milliseconds, round(seconds * 1000, 1))
    metrics.flush_metrics()


def record_rate_limited(limit: str) -> None:
    metrics = _metrics("limit", limit)
    metrics.add_metric("RateLimitedRequests", MetricUnit.Count, 1)
    metrics.flush_metrics()


def record_upstream_error(kind: str) -> None:
    metrics = _metrics("kind", kind)
    metrics.add_metric("UpstreamErrors", MetricUnit.Count, 1)
    metrics.flush_metrics()


def session_hash(session_id: str) -> str:
    """A stable, non-reversible name for a session in logs: enough to follow one conversation."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:16]


def log_session(session_id: str) -> None:
    """Adds the hashed session to every log line until the request's log state is cleared."""
    # Without a handler's logger in the process (a unit test) there are no log lines to mark.
    with contextlib.suppress(OrphanedChildLoggerError):
        logger.append_keys(session=session_hash(session_id))
