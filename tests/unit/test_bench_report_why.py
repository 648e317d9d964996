# ruff: noqa: RUF001 - BENCHMARKS.md prose uses the multiplication sign
"""The goal rows' "why" texts in BENCHMARKS.md state what was measured, not what was assumed."""

from __future__ import annotations

from tests.benchmarks import report


def _stats(median: float) -> dict[str, float]:
    return {"n": 7, "median": median, "p10": median, "p90": median}


def test_the_cold_start_why_gives_the_tracing_off_ratio_it_names_the_x_ray_sdk_for() -> None:
    """Tracing off measured as slow as on: the why must say so, not blame the X-Ray SDK alone."""
    cold_start = {
        "import anthropic": {"ms": _stats(900), "ratio": _stats(1.0)},
        "ChatFunction": {"ms": _stats(1232), "ratio": _stats(1.35)},
        "ChatFunction, tracing off": {"ms": _stats(1236), "ratio": _stats(1.35)},
    }
    note = report._tracing_off_note({"cold_start": cold_start}, "ChatFunction")
    assert note == "; with tracing off (the same init without the X-Ray SDK) it is 1.35×"
    assert report._tracing_off_note({"cold_start": cold_start}, "StreamFunction") == ""
