"""`make bench`: run every measurement, write the results JSON, BENCHMARKS.md and its plot.

    python -m tests.benchmarks.run            the full benchmark (several minutes); rewrites
                                              BENCHMARKS.md, docs/bench-growth.png, docs/bench-results.json
    python -m tests.benchmarks.run --smoke    every measurement at token sizes (seconds), written to
                                              --output-dir (a temporary directory by default)
    python -m tests.benchmarks.run --render docs/bench-results.json
                                              re-render BENCHMARKS.md and the plot, measuring nothing
    python -m tests.benchmarks.run --only caching,money
                                              re-measure only those sections (`caching` needs no
                                              backend, `money` starts ours and the seed; `cold_start`,
                                              `handler_cpu` and `footprint` start what they need),
                                              merge them into docs/bench-results.json and re-render

The full run fails when the seed comparator cannot run; the smoke run reports it skipped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from tests.benchmarks import caching, footprint, handler_cpu, measure, report
from tests.benchmarks.harness import ComparatorUnavailable, Ours, Seed, Standin
from tests.dev_server import ROOT


def _machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown",
    ) if Path("/proc/cpuinfo").exists() else platform.processor()  # fmt: skip
    memory = ""
    if Path("/proc/meminfo").exists():
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "commit": commit.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else ""),
    }


def run(smoke: bool, output_dir: Path, log: Any = print) -> dict[str, Any]:
    sizes = measure.SMOKE if smoke else measure.FULL
    if not smoke:
        Seed.locate()  # the full benchmark is a comparison: fail before measuring anything
    started = time.perf_counter()
    results: dict[str, Any] = {
        "smoke": smoke,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": _machine(),
        "sizes": asdict(sizes),
        "command": "make bench-smoke" if smoke else "make bench",
    }
    # Cold starts first, while nothing else competes for the CPU.
    results["cold_start"] = measure.timed(
        "cold starts", lambda: measure.cold_starts(sizes.cold_rounds, variants=not smoke), log
    )
    results["handler_cpu"] = measure.timed("handler CPU", lambda: handler_cpu.measure_sized(smoke), log)
    standin = Standin.start(sizes.first_token_ms, sizes.token_interval_ms)
    systems: dict[str, measure.System] = {}
    try:
        systems["ours"] = Ours.start(standin)
        try:
            systems["seed"] = Seed.start(standin)
            results["seed"] = {"node": Seed.node_version(), "dir": str(Seed.locate())}
        except ComparatorUnavailable as unavailable:
            if not smoke:
                raise
            results["seed"] = {"skipped": str(unavailable)}
            log(f"seed comparator skipped: {unavailable}")
        results["warm"] = measure.timed(
            "warm turns", lambda: measure.warm_turns(systems, standin, sizes.warm_rounds), log
        )
        results["streaming"] = measure.timed(
            "streaming",
            lambda: measure.streaming(systems, standin, sizes.stream_rounds, sizes.stream_words),
            log,
        )
        results["growth"] = measure.timed(
            "growth", lambda: measure.growth(systems, standin, sizes.growth_turns), log
        )
        results["money"] = measure.timed(
            "money",
            lambda: measure.money(systems, standin, sizes.money_turns, sizes.money_message_chars),
            log,
        )
        results["caching"] = measure.timed("caching", lambda: caching.measure(smoke), log)
        results["footprint"] = measure.timed("footprint", lambda: footprint.measure(smoke, log), log)
        results["load"] = {}
        for name, system in systems.items():
            results["load"][name] = measure.timed(
                f"load {name}",
                partial(measure.load, system.base_url, sizes.load_clients, sizes.load_seconds),
                log,
            )
    finally:
        for system in systems.values():
            system.stop()
        standin.stop()
    results["seconds"] = time.perf_counter() - started
    write_report(results, output_dir)
    log(f"wrote {output_dir / 'BENCHMARKS.md'} in {results['seconds']:.0f} s")
    return results


ONLY_SECTIONS = ("caching", "money", "cold_start", "handler_cpu", "footprint", "warm", "streaming")
# Sections measured against both systems, started once for all of them.
_BOTH_SYSTEMS = ("warm", "streaming", "money")


def run_only(sections: list[str], results_path: Path, output_dir: Path, log: Any = print) -> dict[str, Any]:
    """Re-measures some sections of a saved full run (at its sizes), merges them in, and re-renders."""
    results: dict[str, Any] = json.loads(results_path.read_text())
    sizes = measure.Sizes(**results["sizes"])
    if "caching" in sections:
        results["caching"] = measure.timed("caching", lambda: caching.measure(results["smoke"]), log)
    if "cold_start" in sections:
        results["cold_start"] = measure.timed(
            "cold starts", lambda: measure.cold_starts(sizes.cold_rounds), log
        )
    if "handler_cpu" in sections:
        results["handler_cpu"] = measure.timed(
            "handler CPU", lambda: handler_cpu.measure_sized(results["smoke"]), log
        )
    if "footprint" in sections:  # starts its own stand-in, DynamoDB and functions
        results["footprint"] = measure.timed(
            "footprint", lambda: footprint.measure(results["smoke"], log), log
        )
    if any(section in sections for section in _BOTH_SYSTEMS):
        standin = Standin.start(sizes.first_token_ms, sizes.token_interval_ms)
        systems: dict[str, measure.System] = {}
        try:
            systems["ours"] = Ours.start(standin)
            systems["seed"] = Seed.start(standin)
            if "warm" in sections:
                results["warm"] = measure.timed(
                    "warm turns", lambda: measure.warm_turns(systems, standin, sizes.warm_rounds), log
                )
            if "streaming" in sections:
                results["streaming"] = measure.timed(
                    "streaming",
                    lambda: measure.streaming(systems, standin, sizes.stream_rounds, sizes.stream_words),
                    log,
                )
            if "money" in sections:
                results["money"] = measure.timed(
                    "money",
                    lambda: measure.money(systems, standin, sizes.money_turns, sizes.money_message_chars),
                    log,
                )
        finally:
            for system in systems.values():
                system.stop()
            standin.stop()
    machine = _machine()
    results.setdefault("remeasured", {}).update(
        {
            section: {
                "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "commit": machine["commit"],
            }
            for section in sections
        }
    )
    write_report(results, output_dir)
    return results


def write_report(results: dict[str, Any], output_dir: Path) -> None:
    """Goals, results JSON, plot and BENCHMARKS.md; also re-renders a saved run after a template change."""
    results["goals"] = report.goals(results)
    (output_dir / "docs").mkdir(parents=True, exist_ok=True)
    (output_dir / "docs" / "bench-results.json").write_text(json.dumps(results, indent=1) + "\n")
    report.plot(results, output_dir / "docs" / "bench-growth.png")
    (output_dir / "BENCHMARKS.md").write_text(report.markdown(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; seed optional")
    parser.add_argument("--output-dir", type=Path, help="where BENCHMARKS.md and docs/ go")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="only rewrite BENCHMARKS.md and the plot from results",
    )
    parser.add_argument(
        "--only",
        metavar="SECTIONS",
        help=f"re-measure only these comma-separated sections ({', '.join(ONLY_SECTIONS)}) of "
        "docs/bench-results.json (or --render's file) and re-render",
    )
    arguments = parser.parse_args(argv)
    if arguments.only:
        sections = [section.strip() for section in arguments.only.split(",") if section.strip()]
        unknown = sorted(set(sections) - set(ONLY_SECTIONS))
        if unknown or not sections:
            parser.error(f"--only takes {', '.join(ONLY_SECTIONS)}; not {', '.join(unknown) or 'nothing'}")
        source = arguments.render or ROOT / "docs" / "bench-results.json"
        run_only(
            sections, source, arguments.output_dir or ROOT, log=lambda line: print(line, file=sys.stderr)
        )
        return 0
    if arguments.render:
        write_report(json.loads(arguments.render.read_text()), arguments.output_dir or ROOT)
        return 0
    output_dir = arguments.output_dir or (
        Path(tempfile.mkdtemp(prefix="bench-smoke-")) if arguments.smoke else ROOT
    )
    results = run(arguments.smoke, output_dir, log=lambda line: print(line, file=sys.stderr, flush=True))
    unmet = [goal["name"] for goal in results["goals"] if goal["met"] is False]
    if unmet:
        print(f"goals not met: {', '.join(unmet)} (see BENCHMARKS.md)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
