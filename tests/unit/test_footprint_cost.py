"""The footprint benchmark's cost model (tests/benchmarks/footprint.py): the arithmetic that picks each
function's memory size and prices 1,000 turns, on made-up measurements."""

from __future__ import annotations

from typing import Any

import pytest

from tests.benchmarks import footprint


def _summary(cpu_ms: float, wall_ms: float, output_tokens: float = 100, **tokens: float) -> dict[str, Any]:
    return {
        "cpu_ms": cpu_ms,
        "wall_ms": wall_ms,
        "tokens": {
            "input_tokens": 0,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            **tokens,
        },
        "dynamodb": {"read_units": 1.0, "write_units": 8.0},
    }


def test_a_turn_lasts_claudes_time_plus_the_handlers_with_its_cpu_stretched_below_one_vcpu() -> None:
    turn = _summary(cpu_ms=20, wall_ms=50, output_tokens=101)  # 30 ms waiting on DynamoDB
    claude = 0.4 + 0.015 * 100
    assert footprint.turn_seconds(turn, 1769) == pytest.approx(claude + 0.050)
    assert footprint.turn_seconds(turn, 3538) == pytest.approx(claude + 0.050)  # no faster above one vCPU
    assert footprint.turn_seconds(turn, 884.5) == pytest.approx(claude + 0.030 + 0.040)  # half a vCPU
    assert footprint.added_latency_ms(turn, 884.5) == pytest.approx(20)


def test_the_cpu_work_costs_the_same_gb_seconds_at_any_size_below_one_vcpu() -> None:
    cpu_only = _summary(cpu_ms=100, wall_ms=100)
    per_size = [
        size / 1024 * footprint.turn_seconds(cpu_only, size, waits_for_claude=False)
        for size in (256, 512, 1024)
    ]
    assert per_size == pytest.approx([per_size[0]] * 3)


def test_the_chosen_size_is_the_smallest_that_fits_and_stays_within_the_latency_budget() -> None:
    # 6 ms of CPU: 640 MB adds 6.2 ms over 1,024 MB's, 768 MB 3.5 ms.
    assert footprint.choose(required=150, typical=_summary(cpu_ms=6, wall_ms=10)) == 768
    # The same turn in a function that needs 900 MB: the next size up.
    assert footprint.choose(required=900, typical=_summary(cpu_ms=6, wall_ms=10)) == 1024
    # Nearly no CPU: the smallest candidate.
    assert footprint.choose(required=150, typical=_summary(cpu_ms=0.5, wall_ms=10)) == 256


def test_the_required_memory_has_headroom_and_counts_the_web_adapter() -> None:
    assert footprint.required_mb({"peak_mb": 100}) == pytest.approx(150)
    assert footprint.required_mb({"peak_mb": 100, "adapter_allowance_mb": 10}) == pytest.approx(165)


def test_a_thousand_turns_in_dollars() -> None:
    turn = _summary(
        cpu_ms=0,
        wall_ms=0,
        output_tokens=1,
        input_tokens=1000,
        cache_creation_input_tokens=100,
        cache_read_input_tokens=1000,
    )
    row = footprint._thousand_turns("short chat", "ChatFunction", "template", 1024, turn)
    # 1,000 turns of 0.4 s at 1 GB
    assert row["gb_seconds"] == pytest.approx(400)
    assert row["dollars"]["lambda"] == pytest.approx(400 * 0.0000133334 + 1000 * 0.20 / 1e6)
    assert row["dollars"]["dynamodb"] == pytest.approx(1000 * (0.125 + 8 * 0.625) / 1e6)
    # per turn: 1,000 input at $1/MTok, 1 output at $5, 100 cache writes at $1.25, 1,000 reads at $0.10
    assert row["dollars"]["tokens"] == pytest.approx(1000 * (1000 * 1 + 5 + 100 * 1.25 + 1000 * 0.10) / 1e6)
    infrastructure = row["dollars"]["lambda"] + row["dollars"]["dynamodb"]
    assert row["infrastructure_share"] == pytest.approx(infrastructure / row["dollars"]["tokens"])


def test_the_goal_is_met_only_under_five_percent() -> None:
    def results(share: float) -> dict[str, Any]:
        row = {
            "memory": "template",
            "conversation": "short chat",
            "function": "ChatFunction",
            "infrastructure_share": share,
            "dollars": {"lambda": 1.0, "dynamodb": 1.0, "tokens": 1.0},
        }
        return {"footprint": {"model": {"thousand_turns": [row]}}}

    assert footprint.goal(results(0.049))["met"] is True  # type: ignore[index]
    assert footprint.goal(results(0.05))["met"] is False  # type: ignore[index]
    assert footprint.goal({}) is None
