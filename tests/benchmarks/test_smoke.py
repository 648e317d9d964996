"""`make bench-smoke` as a test: every benchmark runs at token sizes, so `make bench` cannot rot.

Without the seed comparator (no ../shared/anchors/express-seed, node or npm) it
still passes and the results say the seed was skipped; the full `make bench`
fails instead.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.benchmarks.run import run


def test_every_benchmark_runs_and_reports(tmp_path: Path) -> None:
    # On a thread of its own: the browser tests' sync Playwright leaves an event loop running on
    # this one, and the load test uses asyncio.run().
    with ThreadPoolExecutor(max_workers=1) as thread:
        results = thread.submit(run, smoke=True, output_dir=tmp_path, log=lambda _line: None).result()

    seed_ran = "skipped" not in results["seed"]
    systems = {"ours", "seed"} if seed_ran else {"ours"}
    for kind in ("stateless", "stateful"):
        assert set(results["warm"][kind]) == systems
        ours = results["warm"][kind]["ours"]
        assert ours["errors"] == 0
        assert math.isfinite(ours["added_ms"]["median"])
        assert ours["dynamodb"]["calls"] >= 1
    assert results["streaming"]["ours"]["delta_delay_ms"]["n"] > 0
    assert {"import anthropic", "ChatFunction", "HistoryFunction"} <= set(results["cold_start"])
    cpu = results["handler_cpu"]
    for kind in ("stateless", "stateful"):
        assert 0 < cpu[kind]["cpu_ms"]["median"] < cpu[kind]["wall_ms"]["max"] * 2  # CPU, not nothing
        assert cpu["profile"][kind]["categories"]
    assert {"chat_hook_ms", "chat_first_ms", "history_hook_ms", "stream_hook_ms"} <= set(cpu["restore"])
    assert results["growth"]["ours"]["turns"][-1]["dynamodb"]["write_units"] > 0
    assert results["money"]["ours"]["equivalent_input_tokens"] > 0
    long_chat = next(row for row in results["caching"]["scenarios"] if row["name"] == "long chat")
    assert all(model["ours"]["cache_read_input_tokens"] > 0 for model in long_chat["models"].values())
    functions = results["footprint"]["functions"]
    assert set(functions) == {"ChatFunction", "HistoryFunction", "StreamFunction"}
    assert all(function["peak_mb"] >= function["init_mb"] > 0 for function in functions.values())
    assert results["footprint"]["model"]["thousand_turns"]
    assert results["load"]["ours"]["completed"] > 0
    assert set(results["load"]) == systems
    assert results["goals"]

    report = (tmp_path / "BENCHMARKS.md").read_text()
    assert report.startswith("# Benchmarks")
    assert "docs/bench-growth.png" in report
    assert "## Cost of 1,000 turns" in report
    assert "| one 10-page PDF | bound |" in report  # files and searches, priced from the short chat's turns
    assert "## Handler CPU per warm turn" in report
    assert ("Comparator skipped" in report) != seed_ran
    assert (tmp_path / "docs" / "bench-growth.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "docs" / "bench-results.json").is_file()
