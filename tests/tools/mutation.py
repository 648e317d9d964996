"""Mutation testing of the core modules: how often their fast unit tests notice a wrong program.

`make mutation` runs every module in CORE_MODULES and rewrites docs/MUTATION.md;
`make mutation MODULE=client_key` runs one and prints its score. mutmut (pinned in
requirements-dev.txt) makes the mutants, one small change each (a flipped comparison, a
string, a dropped argument, a default) and runs the module's unit tests against each.

mutmut names a module after its path, and the layer's modules are imported as
`claude_chat.*` from layers/shared, so each module is staged in a temporary directory
laid out as mutmut expects: the package at its root, the module's unit-test files and
what their fixtures read (local/, events/, template.yaml), and a pyproject.toml that
tells mutmut which module to mutate and which tests to run. mutmut copies that into
mutants/ and runs pytest there in-process, in a forked child per mutant, with only the
tests that reach the mutated function (tests/unit's conftest still refuses sockets and
subprocesses inside every test). The children are forked from the process that ran the
tests once already, so a test must not lean on threads started before the fork: a thread
pool shared by a test module has them only in the parent, and a forked test that waits on
it hangs until mutmut's timeout counts the mutant killed. Pools are made per test (the
`pool` fixture), and the moto tests share one client but get a fresh table each.

The floor: at least FLOOR of each module's mutants that are not equivalent are killed.
A mutant is equivalent when no test could ever tell it from the module as written; each
is listed once, with its reason, in tests/mutation-equivalents.toml. A listed mutant
that no longer exists, or that the tests kill, is an error: the list cannot rot or
hide a real gap. Any error, or a module under the floor, exits non-zero.

What CI runs: each module's row of docs/MUTATION.md carries the fingerprint it was scored
at, a SHA-256 of what its score depends on (the module's source, its unit-test files and
its listed equivalents, by content only: no path, no time, line endings as LF), written
only when the module passed. `--stale` re-scores just the modules whose fingerprint no
longer matches (a change not followed by `make mutation MODULE=...`) and fails if one is
under the floor; when nothing changed it only hashes a few files.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "claude_chat"
PACKAGE_DIR = ROOT / "layers" / "shared" / PACKAGE

# The core modules of layers/shared/claude_chat, each with the unit-test files that cover it.
# Adding a module is one line here (and its row appears in docs/MUTATION.md on the next run).
CORE_MODULES: dict[str, tuple[str, ...]] = {
    "admission": (
        "tests/unit/test_admission.py",
        "tests/unit/test_admission_requests.py",
        "tests/unit/test_rate_limiter.py",
        "tests/unit/test_ticket_settlement.py",
    ),
    "pricing": ("tests/unit/test_pricing.py",),
    "model_choice": ("tests/unit/test_model_choice.py",),
    "rate_limiter": ("tests/unit/test_rate_limiter.py", "tests/unit/test_admission.py"),
    "conversation_store": (
        "tests/unit/test_conversation_store.py",
        "tests/unit/test_conversation_store_requests.py",
        "tests/unit/test_history_pages.py",
        "tests/unit/test_billed_context.py",
        "tests/unit/test_save_at_once.py",
        "tests/unit/test_thinking_search.py",  # a turn's thinking and citations as its item keeps them
        "tests/unit/test_attachments.py",  # a turn's files, and a reset's deletion of them
        "tests/unit/test_warm_history.py",  # the newest turns a container knows: what a read would find
        # (tests/unit/test_warm_turns.py is chat_turn's: its 2 s of set-up would run for every mutant)
    ),
    # The byte checks of uploaded images and PDFs, the presigned POST, the limits.
    "attachments": ("tests/unit/test_attachments.py", "tests/unit/test_attachment_checks.py"),
    "client_key": ("tests/unit/test_client_key.py",),
    "request_body": ("tests/unit/test_request_body.py",),
    "session_tokens": ("tests/unit/test_session_tokens.py",),
    "sign_in": ("tests/unit/test_sign_in.py",),
    "stop_requests": ("tests/unit/test_stop_requests.py",),
}

FLOOR = 0.90
EQUIVALENTS = ROOT / "tests" / "mutation-equivalents.toml"
REPORT = ROOT / "docs" / "MUTATION.md"

# What the tests' fixtures read besides the package: copied beside it into every stage.
FIXTURE_FILES = ("local", "events", "template.yaml")
TEST_SUPPORT = (
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/files.py",  # the test images and PDFs (test_attachments.py)
    "tests/unit/__init__.py",
    "tests/unit/conftest.py",
)

# mutmut's statuses: a timeout or a crash is the tests noticing the mutant; "no tests" (no
# test reaches the function), "suspicious" and "skipped" are not.
KILLED = frozenset({"killed", "timeout", "segfault"})


@dataclass(frozen=True, slots=True)
class Mutant:
    name: str  # mutmut's, e.g. claude_chat.client_key.x_client_key__mutmut_3: for `mutmut show`
    function: str  # `client_key`, or `TokenVerifier.verify` for a method
    original: str  # the changed lines as written (stripped, one per line)
    mutated: str  # the same lines in the mutant
    status: str  # mutmut's: killed, survived, no tests, timeout, ...

    @property
    def killed(self) -> bool:
        return self.status in KILLED

    @property
    def identity(self) -> tuple[str, str, str]:
        """What the equivalents file names a mutant by: its function and its change, not its number."""
        return (self.function, self.original, self.mutated)


@dataclass(frozen=True, slots=True)
class Equivalent:
    function: str
    original: str
    mutated: str
    reason: str

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.function, self.original, self.mutated)


@dataclass
class ModuleResult:
    module: str
    mutants: list[Mutant]
    seconds: float  # wall-clock
    cpu_seconds: (
        float  # of mutmut and the test runs it forked: what the machine's other load does not stretch
    )
    equivalent: list[Mutant] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fingerprint: str = ""  # of the module, its tests and its equivalents as they were scored

    @property
    def killed(self) -> int:
        return sum(mutant.killed for mutant in self.mutants)

    @property
    def survivors(self) -> list[Mutant]:
        listed = {mutant.name for mutant in self.equivalent}
        return [m for m in self.mutants if not m.killed and m.name not in listed]

    @property
    def score(self) -> float:
        """Killed over the mutants that are not equivalent (1.0 when every mutant is equivalent)."""
        counted = len(self.mutants) - len(self.equivalent)
        return self.killed / counted if counted else 1.0

    @property
    def passed(self) -> bool:
        return not self.problems and self.score >= FLOOR


class MutmutFailed(RuntimeError):
    """mutmut itself did not finish (its log says why): no score for the module."""


def fingerprint(module: str, listed: Sequence[Equivalent], root: Path = ROOT) -> str:
    """What a module's score depends on, by content only (no path, no time; CRLF read as LF, so any
    checkout of the same commit agrees): its source, its unit-test files and its listed equivalents."""
    sources = [
        root / "layers" / "shared" / PACKAGE / f"{module}.py",
        *(root / t for t in CORE_MODULES[module]),
    ]
    digests = [hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest() for path in sources]
    # The module first, then its tests in any order (reordering CORE_MODULES changes no score).
    parts = [digests[0], *sorted(digests[1:])]
    parts += sorted(json.dumps(e.identity) for e in listed)  # not their reasons: words change no score
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Row:
    """A module's row of docs/MUTATION.md's table: its last score, and the fingerprint of what was
    scored ("" when it failed: a module under the floor is never taken as scored)."""

    module: str
    mutants: int
    killed: int
    equivalent: int
    survived: int
    score: float
    seconds: float
    cpu_seconds: float
    fingerprint: str

    @staticmethod
    def of(result: ModuleResult) -> Row:
        return Row(
            result.module,
            len(result.mutants),
            result.killed,
            len(result.equivalent),
            len(result.survivors),
            result.score,
            result.seconds,
            result.cpu_seconds,
            result.fingerprint if result.passed else "",
        )

    def line(self) -> str:
        recorded = f"`{self.fingerprint}`" if self.fingerprint else _NOT_RECORDED
        return (
            f"| `{self.module}.py` | {self.mutants} | {self.killed} | {self.equivalent} | {self.survived} "
            f"| {self.score:.1%} | {self.seconds:.0f} s | {self.cpu_seconds:.0f} s | {recorded} |"
        )


_NOT_RECORDED = "none (under the floor)"
_ROW = re.compile(
    r"^\| `(?P<module>\w+)\.py` \| (?P<mutants>\d+) \| (?P<killed>\d+) \| (?P<equivalent>\d+) "
    r"\| (?P<survived>\d+) \| (?P<score>[\d.]+)% \| (?P<seconds>\d+) s \| (?P<cpu>\d+) s "
    r"\| (?:`(?P<fingerprint>[0-9a-f]+)`|[^|]*) \|$"
)


def read_rows(path: Path = REPORT) -> dict[str, Row]:
    """The rows docs/MUTATION.md records, by module (none when it does not exist)."""
    text = path.read_text() if path.exists() else ""
    rows = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if match:
            rows[match["module"]] = Row(
                match["module"],
                int(match["mutants"]),
                int(match["killed"]),
                int(match["equivalent"]),
                int(match["survived"]),
                float(match["score"]) / 100,
                float(match["seconds"]),
                float(match["cpu"]),
                match["fingerprint"] or "",
            )
    return rows


def stale_modules(
    rows: dict[str, Row], listed: dict[str, list[Equivalent]], root: Path = ROOT
) -> dict[str, str]:
    """The core modules whose recorded score does not hold for them as they are, each with why."""
    stale = {}
    for module in CORE_MODULES:
        row = rows.get(module)
        if row is None:
            stale[module] = "not scored yet"
        elif not row.fingerprint:
            stale[module] = "under the floor when last scored"
        elif row.fingerprint != fingerprint(module, listed.get(module, []), root):
            stale[module] = "changed since it was scored (its source, unit tests or listed equivalents)"
    return stale


def stage(module: str, tests: Sequence[str], into: Path) -> None:
    """The layout mutmut expects, for one module: the package at the root, its tests, a config."""
    shutil.copytree(PACKAGE_DIR, into / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    for name in FIXTURE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
        else:
            shutil.copy2(source, into / name)
    for name in (*TEST_SUPPORT, *tests):
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, into / name)
    (into / "pyproject.toml").write_text(_config(module, tests))


def _config(module: str, tests: Sequence[str]) -> str:
    """The stage's pyproject.toml: mutmut's settings and the project's pytest settings."""
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    mutmut = {
        "source_paths": [PACKAGE],
        "only_mutate": [f"{PACKAGE}/{module}.py"],
        "pytest_add_cli_args_test_selection": list(tests),
        # Each mutant's run is a fresh pytest session in a forked child: without the cache, the
        # installed plugins (none of which tests/unit uses), the unraisable-exception hook's
        # gc.collect() calls at exit and the built-in plugins for other kinds of run, one takes a
        # tenth of a second to start instead of half a second.
        "pytest_add_cli_args": [
            argument
            for plugin in (
                "cacheprovider",
                "unraisableexception",
                "doctest",
                "junitxml",
                "pastebin",
                "stepwise",
                "faulthandler",
                "setuponly",
                "setupplan",
                "debugging",
            )
            for argument in ("-p", f"no:{plugin}")
        ],
        "also_copy": list(FIXTURE_FILES),
        "use_git_change_detection": False,
    }
    pytest = {
        # The mutated package is mutants/claude_chat: "." is mutants/, where pytest runs.
        "pythonpath": ["."],
        "addopts": "--strict-markers",
        "markers": pytest_options.get("markers", []),
    }
    return _toml_table("tool.mutmut", mutmut) + "\n" + _toml_table("tool.pytest.ini_options", pytest)


def _toml_table(name: str, values: dict[str, Any]) -> str:
    # JSON's strings, lists and booleans are TOML's too (non-ASCII kept as it is).
    lines = [f"[{name}]"]
    lines += [f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def run_mutmut(stage_dir: Path, jobs: int) -> None:
    """`mutmut run` in the stage, on this interpreter, with the original layer off the path."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    command = [
        sys.executable,
        "-c",
        "import sys; from mutmut.__main__ import cli; sys.exit(cli())",
        "run",
        "--max-children",
        str(jobs),
    ]
    log = stage_dir / "mutmut.log"
    with log.open("w") as output:
        finished = subprocess.run(
            command, check=False, cwd=stage_dir, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    if finished.returncode != 0:
        tail = log.read_text(errors="replace").replace("\r", "\n").splitlines()[-30:]
        raise MutmutFailed("\n".join(["mutmut run failed; the end of its log:", *tail]))


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def read_mutants(stage_dir: Path, module: str) -> list[Mutant]:
    """Every mutant mutmut made of the module, with its change and its status."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.format_utils import orig_function_and_class_names_from_key

    source = Path(PACKAGE) / f"{module}.py"
    meta = json.loads((stage_dir / "mutants" / f"{source}.meta").read_text())
    mutants = []
    with _working_directory(stage_dir):
        for name, exit_code in sorted(meta["exit_code_by_key"].items(), key=lambda item: _natural(item[0])):
            function, class_name = orig_function_and_class_names_from_key(name)
            diff = get_diff_for_mutant(name, path=source).splitlines()
            removed = [line[1:].strip() for line in diff if line[:1] == "-" and line[:3] != "---"]
            added = [line[1:].strip() for line in diff if line[:1] == "+" and line[:3] != "+++"]
            mutants.append(
                Mutant(
                    name=name,
                    function=f"{class_name}.{function}" if class_name else function,
                    original="\n".join(removed),
                    mutated="\n".join(added),
                    status=status_by_exit_code[exit_code],
                )
            )
    return mutants


def _natural(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("__mutmut_")
    return (stem, int(number) if number.isdigit() else 0)


def load_equivalents(path: Path = EQUIVALENTS) -> tuple[dict[str, list[Equivalent]], list[str]]:
    """The listed equivalent mutants by module, and what is wrong with the list itself."""
    data = tomllib.loads(path.read_text()) if path.exists() else {}
    listed: dict[str, list[Equivalent]] = {}
    problems: list[str] = []
    for module, entries in data.items():
        if module not in CORE_MODULES:
            problems.append(f"{path.name}: [{module}] is not a core module")
            continue
        seen: set[tuple[str, str, str]] = set()
        for number, entry in enumerate(entries, start=1):
            try:
                equivalent = Equivalent(
                    function=entry["function"],
                    original=entry["original"],
                    mutated=entry["mutated"],
                    reason=entry["reason"].strip(),
                )
            except (KeyError, TypeError, AttributeError):
                problems.append(
                    f"{path.name}: entry {number} of [{module}] needs function, original, mutated and reason"
                )
                continue
            if not equivalent.reason:
                problems.append(f"{path.name}: entry {number} of [{module}] gives no reason")
            if equivalent.identity in seen:
                problems.append(f"{path.name}: entry {number} of [{module}] is listed twice")
            seen.add(equivalent.identity)
            listed.setdefault(module, []).append(equivalent)
    return listed, problems


def judge(result: ModuleResult, listed: Sequence[Equivalent]) -> None:
    """Match the listed equivalents to this run's mutants: each must exist and survive."""
    by_identity: dict[tuple[str, str, str], list[Mutant]] = {}
    for mutant in result.mutants:
        by_identity.setdefault(mutant.identity, []).append(mutant)
    for equivalent in listed:
        matches = by_identity.get(equivalent.identity, [])
        where = f"{result.module}: the equivalent listed for {equivalent.function} ({equivalent.mutated!r})"
        if not matches:
            result.problems.append(f"{where} is no longer a mutant: remove it from {EQUIVALENTS.name}")
            continue
        killed = [mutant.name for mutant in matches if mutant.killed]
        if killed:
            result.problems.append(
                f"{where} is killed by the tests ({', '.join(killed)}): it is not equivalent, remove it"
            )
            continue
        # Mutants with the same function and change are one program, so one entry covers them all.
        result.equivalent.extend(matches)


def mutate(module: str, listed: Sequence[Equivalent], *, jobs: int, keep: bool) -> ModuleResult:
    started, cpu_started = time.monotonic(), _children_cpu()
    scored = fingerprint(module, listed)  # before the files are copied: what the stage holds
    stage_dir = Path(tempfile.mkdtemp(prefix=f"mutation-{module}-"))
    try:
        stage(module, CORE_MODULES[module], stage_dir)
        run_mutmut(stage_dir, jobs)
        mutants = read_mutants(stage_dir, module)
    finally:
        if keep:
            print(f"{module}: the stage is kept in {stage_dir} (`mutmut show NAME` there)")
        else:
            shutil.rmtree(stage_dir, ignore_errors=True)
    seconds, cpu_seconds = time.monotonic() - started, _children_cpu() - cpu_started
    return ModuleResult(module, mutants, seconds, cpu_seconds, fingerprint=scored)


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (mutmut and, through it, every run it forked)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def summary(result: ModuleResult) -> str:
    return (
        f"{result.module}: {len(result.mutants)} mutants, {result.killed} killed, "
        f"{len(result.equivalent)} equivalent, {len(result.survivors)} survived: "
        f"score {result.score:.1%} (floor {FLOOR:.0%}); "
        f"{result.seconds:.0f} s ({result.cpu_seconds:.0f} s of CPU)"
    )


def print_result(result: ModuleResult) -> None:
    print(summary(result) + ("" if result.passed else "  << FAILS"))
    for mutant in result.survivors:
        print(f"  {mutant.status}: {mutant.name}  (in {mutant.function})")
        for line in mutant.original.splitlines():
            print(f"    - {line}")
        for line in mutant.mutated.splitlines():
            print(f"    + {line}")
    if result.survivors:
        print(
            "  Write a test that tells each survivor from the module. Only a mutant no test could ever "
            f"tell apart is equivalent: list it in {EQUIVALENTS.relative_to(ROOT)} with its reason "
            "(function, original and mutated as printed here)."
        )
    for problem in result.problems:
        print(f"  ERROR: {problem}")


def report(rows: Sequence[Row], listed: dict[str, list[Equivalent]]) -> str:
    """docs/MUTATION.md: how to run it, the routine and CI, the scores, and the listed equivalents."""
    today = datetime.datetime.now(tz=datetime.UTC).date().isoformat()
    python = f"Python {platform.python_version()}"
    total, total_cpu = sum(r.seconds for r in rows), sum(r.cpu_seconds for r in rows)
    scored = {r.module for r in rows}
    unscored = [f"`{module}.py`" for module in CORE_MODULES if module not in scored]
    hashed = sum(1 + len(tests) for tests in CORE_MODULES.values())
    equivalents = []
    for module in CORE_MODULES:
        for entry in listed.get(module, []):
            change = entry.mutated.replace("\n", " ")
            equivalents.append(f"- `{module}` `{entry.function}`: `{change}`: {entry.reason}")
    tests = [
        f"- `{module}.py`: {', '.join(f'`{test}`' for test in files)}"
        for module, files in CORE_MODULES.items()
    ]
    return "\n".join(
        [
            "# Mutation testing",
            "",
            "<!-- Written by `make mutation` (tests/tools/mutation.py); edit the tool, not this file. -->",
            "",
            "How often the fast unit tests of the core modules notice a wrong program. mutmut makes",
            "mutants of a module, each one small change (a flipped comparison, a changed string, a",
            "dropped argument, a flipped default), and runs the module's unit tests against each;",
            "a mutant the tests pass is a bug nobody would notice.",
            "",
            "```sh",
            "make mutation                      # every core module; rewrites this file",
            "make mutation MODULE=client_key    # one module: its score, its survivors; rewrites its row",
            "make mutation-stale                # the modules changed since their rows (what CI runs)",
            "```",
            "",
            "## The routine",
            "",
            "Before a change to a core module is merged, run `make mutation MODULE=<module>` for each",
            "core module it touches, and kill every new survivor with a test (or, only if no test could",
            "ever tell it apart, list it as equivalent). The run rewrites that module's row below: commit",
            "it with the change.",
            "",
            "**In CI.** `bash .ci/run` runs `make mutation-stale` after `make test`. Each row below carries",
            "the fingerprint of what it scored: a SHA-256 of the module's source, its unit-test files and",
            "its listed equivalents, by content only (no path, no time, CRLF read as LF), so every checkout",
            "of a commit agrees; it is recorded only when the module passed. `make mutation-stale`",
            "re-scores just the core modules whose fingerprint does not match (changed without their run,",
            "under the floor, or not scored yet) and fails if one is under the floor. When nothing changed",
            f"it hashes {hashed} files and takes about a second; a stale module adds its time from the",
            f"table. All {len(CORE_MODULES)} modules at every run would add {total / 60:.0f} minutes to",
            "`make test`'s eight or so: too long for every push, so CI scores only what changed.",
            "",
            "Each module's time is the wall-clock time of the run that wrote its row, which grows with",
            "whatever else the machine runs, and the CPU time it used, which does not. All the modules",
            f"together took {total:.0f} s ({total_cpu:.0f} s of CPU) on a 2-core machine.",
            "",
            "A survivor is printed with its diff; `tests/tools/mutation.py --keep MODULE` keeps the",
            "mutated tree, where `mutmut show <name>` and `mutmut browse` work.",
            "",
            "Each mutant's tests run in a process forked from one that ran them all once, so a test must",
            "not wait on threads started before the fork: a thread pool shared across tests has them",
            "in the parent only, and the test would hang until mutmut counts the mutant killed by its",
            "timeout. Tests take a pool of their own (the `pool` fixture in `tests/conftest.py`).",
            "",
            f"**The floor**: at least {FLOOR:.0%} of each module's mutants that are not equivalent are",
            "killed; `make mutation` exits non-zero when a module is under it. A mutant is equivalent",
            "only when no test could ever tell it from the module as written (the same observable",
            "behaviour); each is listed once, with its reason, in `tests/mutation-equivalents.toml`,",
            "by its function and its change. A listed mutant that no longer exists, or that the tests",
            "kill, is an error, so the list cannot rot or hide a gap.",
            "",
            "## Scores",
            "",
            f"mutmut {version('mutmut')}, {python}; last written {today}.",
            "Score = killed / (mutants - equivalent).",
            "",
            "| module | mutants | killed | equivalent | survived | score | time | CPU time | fingerprint |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
            *(row.line() for row in rows),
            *(["", f"Not scored yet: {', '.join(unscored)}."] if unscored else []),
            "",
            "## The tests each module is run against",
            "",
            *tests,
            "",
            "Only what mutmut mutates is measured: the code inside functions and methods. Module-level",
            "constants, decorated functions (a `@property`, an `lru_cache`) and class bodies are not",
            "mutated.",
            "",
            "## Equivalent mutants",
            "",
            *(equivalents or ["None listed."]),
            "",
        ]
    )


def record(results: Sequence[ModuleResult], path: Path = REPORT) -> list[Row]:
    """The table's rows with these results in place of their modules' (in CORE_MODULES' order)."""
    rows = read_rows(path)
    rows.update({result.module: Row.of(result) for result in results})
    return [rows[module] for module in CORE_MODULES if module in rows]


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"any of: {', '.join(CORE_MODULES)}")
    parser.add_argument(
        "--stale",
        action="store_true",
        help="only the modules whose fingerprint does not match their row (CI)",
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    parser.add_argument("--keep", action="store_true", help="keep each module's stage (for `mutmut show`)")
    parser.add_argument("--no-report", action="store_true", help=f"do not rewrite {_shown(REPORT)}")
    args = parser.parse_args(argv)
    unknown = [module for module in args.modules if module not in CORE_MODULES]
    if unknown:
        parser.error(f"not a core module: {', '.join(unknown)} (core modules: {', '.join(CORE_MODULES)})")
    if args.stale and args.modules:
        parser.error("--stale chooses the modules itself")

    listed, list_problems = load_equivalents()
    for problem in list_problems:
        print(f"ERROR: {problem}")
    modules = args.modules or list(CORE_MODULES)
    if args.stale:
        stale = stale_modules(read_rows(REPORT), listed)
        for module, why in stale.items():
            print(f"{module}: {why}: scoring it")
        if not stale:
            print(f"Every core module's row in {_shown(REPORT)} holds: nothing to score.")
        modules = list(stale)
    started, cpu_started = time.monotonic(), _children_cpu()
    results = []
    for module in modules:
        tests = ", ".join(CORE_MODULES[module])
        print(f"{module}: mutating layers/shared/{PACKAGE}/{module}.py against {tests}")
        try:
            result = mutate(module, listed.get(module, []), jobs=args.jobs, keep=args.keep)
        except MutmutFailed as failure:
            print(f"{module}: {failure}")
            return 2
        judge(result, listed.get(module, []))
        print_result(result)
        results.append(result)
    total, total_cpu = time.monotonic() - started, _children_cpu() - cpu_started

    if results:
        print()
        for result in results:
            print(summary(result) + ("" if result.passed else "  << FAILS"))
        print(f"{len(results)} module(s) in {total:.0f} s ({total_cpu:.0f} s of CPU)")
    if results and not args.no_report:
        REPORT.write_text(report(record(results, REPORT), listed))
        print(f"Wrote {_shown(REPORT)} ({', '.join(r.module for r in results)})")
    return 0 if not list_problems and all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
