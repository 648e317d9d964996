"""tests/tools/mutation.py's bookkeeping, without running mutmut: the list of equivalents, the floor, and
the fingerprints by which CI (`make mutation-stale`) re-scores only the modules that changed."""

from __future__ import annotations

import ast
import os
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.tools import mutation
from tests.tools.mutation import (
    CORE_MODULES,
    ROOT,
    Equivalent,
    ModuleResult,
    Mutant,
    Row,
    fingerprint,
    judge,
    load_equivalents,
    read_rows,
    record,
    report,
    stale_modules,
)


def mutant(number: int, status: str, mutated: str = "return b") -> Mutant:
    return Mutant(f"claude_chat.m.x_f__mutmut_{number}", "f", "return a", mutated, status)


def test_every_core_module_and_its_tests_exist() -> None:
    for module, tests in CORE_MODULES.items():
        assert (mutation.PACKAGE_DIR / f"{module}.py").is_file()
        assert tests
        for test in tests:
            assert (ROOT / test).is_file(), test


def test_the_checked_in_list_of_equivalents_reads_cleanly() -> None:
    listed, problems = load_equivalents()
    assert problems == []
    for entries in listed.values():
        for entry in entries:
            assert entry.reason and entry.original != entry.mutated


def test_an_entry_without_a_reason_twice_or_for_another_module_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "equivalents.toml"
    path.write_text(
        "[[client_key]]\nfunction = 'f'\noriginal = 'a'\nmutated = 'b'\nreason = ' '\n"
        "[[client_key]]\nfunction = 'f'\noriginal = 'a'\nmutated = 'b'\nreason = 'why'\n"
        "[[client_key]]\nfunction = 'f'\noriginal = 'a'\n"
        "[[rate_limits]]\nfunction = 'f'\noriginal = 'a'\nmutated = 'b'\nreason = 'why'\n"
    )
    listed, problems = load_equivalents(path)
    assert problems == [
        "equivalents.toml: entry 1 of [client_key] gives no reason",
        "equivalents.toml: entry 2 of [client_key] is listed twice",
        "equivalents.toml: entry 3 of [client_key] needs function, original, mutated and reason",
        "equivalents.toml: [rate_limits] is not a core module",
    ]
    assert len(listed["client_key"]) == 2


def test_the_score_counts_killed_over_the_mutants_not_listed_as_equivalent() -> None:
    result = ModuleResult(
        "m", [mutant(n, "killed", f"return k{n}") for n in range(9)] + [mutant(9, "survived")], 1.0, 1.0
    )
    assert (result.killed, len(result.survivors), result.score, result.passed) == (9, 1, 0.9, True)
    judge(result, [Equivalent("f", "return a", "return b", "no test can tell")])
    assert result.problems == []
    assert (len(result.equivalent), result.survivors, result.score) == (1, [], 1.0)


@pytest.mark.parametrize("status", ["survived", "no tests", "suspicious"])
def test_a_module_under_the_floor_fails(status: str) -> None:
    result = ModuleResult(
        "m",
        [mutant(n, "killed", f"return k{n}") for n in range(8)] + [mutant(8, status), mutant(9, status)],
        1,
        1,
    )
    assert (result.score, result.passed) == (0.8, False)


def test_timeouts_and_crashes_count_as_killed() -> None:
    result = ModuleResult("m", [mutant(1, "timeout"), mutant(2, "segfault")], 1.0, 1.0)
    assert (result.killed, result.score) == (2, 1.0)


def test_a_listed_mutant_that_is_killed_or_gone_is_refused() -> None:
    result = ModuleResult("m", [mutant(1, "killed"), mutant(2, "survived", mutated="return c")], 1.0, 1.0)
    judge(
        result,
        [
            Equivalent("f", "return a", "return b", "said to be equivalent"),
            Equivalent("f", "return a", "return z", "a mutant that is no more"),
        ],
    )
    assert result.equivalent == []
    assert result.problems == [
        "m: the equivalent listed for f ('return b') is killed by the tests (claude_chat.m.x_f__mutmut_1): "
        "it is not equivalent, remove it",
        "m: the equivalent listed for f ('return z') is no longer a mutant: remove it from "
        "mutation-equivalents.toml",
    ]
    assert not result.passed
    assert [m.name for m in result.survivors] == ["claude_chat.m.x_f__mutmut_2"]


def test_the_stage_config_names_the_module_and_its_tests() -> None:
    config = tomllib.loads(mutation._config("client_key", ("tests/unit/test_client_key.py",)))
    assert config["tool"]["mutmut"]["only_mutate"] == ["claude_chat/client_key.py"]
    assert config["tool"]["mutmut"]["pytest_add_cli_args_test_selection"] == ["tests/unit/test_client_key.py"]
    assert config["tool"]["pytest"]["ini_options"]["pythonpath"] == ["."]


@pytest.mark.parametrize("module", sorted(CORE_MODULES))
def test_every_test_module_a_staged_test_imports_is_staged_with_it(module: str) -> None:
    """A stage holds the package, TEST_SUPPORT and the module's test files only: a helper they import
    from tests/ (tests.files, another test file) that is not among them fails every mutant's run."""
    staged = {*mutation.TEST_SUPPORT, *CORE_MODULES[module]}
    for test_file in CORE_MODULES[module]:
        tree = ast.parse((ROOT / test_file).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests."):
                path = node.module.replace(".", "/") + ".py"
                assert path in staged, f"{test_file} imports {node.module}, which the stage lacks"


# -- fingerprints and what CI re-scores -------------------------------------------------------------

MODULE = "client_key"  # a small core module with one unit-test file
LISTED = [Equivalent("f", "return a", "return b", "no test can tell")]


def checkout(into: Path, line_ending: bytes = b"\n") -> Path:
    """The module's and its tests' files under another root, with these line endings."""
    for name in (f"layers/shared/claude_chat/{MODULE}.py", *CORE_MODULES[MODULE]):
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        (into / name).write_bytes((ROOT / name).read_bytes().replace(b"\n", line_ending))
    return into


def test_a_fingerprint_is_of_the_files_contents_wherever_and_whenever_they_were_checked_out(
    tmp_path: Path,
) -> None:
    here = fingerprint(MODULE, LISTED)
    elsewhere = checkout(tmp_path / "a")
    for path in elsewhere.rglob("*.py"):
        os.utime(path, (0, 0))
    assert fingerprint(MODULE, LISTED, elsewhere) == here
    assert fingerprint(MODULE, LISTED, checkout(tmp_path / "b", b"\r\n")) == here  # a Windows checkout
    assert len(here) == 16 and int(here, 16) >= 0


def test_a_fingerprint_changes_with_the_module_its_tests_or_its_equivalents_and_nothing_else(
    tmp_path: Path,
) -> None:
    root = checkout(tmp_path)
    before = fingerprint(MODULE, LISTED, root)
    reworded = [Equivalent("f", "return a", "return b", "said otherwise")]
    assert fingerprint(MODULE, reworded, root) == before  # the reason's words change no score
    assert fingerprint(MODULE, [*LISTED, Equivalent("g", "x", "y", "why")], root) != before
    assert fingerprint(MODULE, [], root) != before
    test = root / CORE_MODULES[MODULE][0]
    test.write_text(test.read_text() + "\n# one more line\n")
    assert fingerprint(MODULE, LISTED, root) != before
    shutil.copy(ROOT / CORE_MODULES[MODULE][0], test)
    assert fingerprint(MODULE, LISTED, root) == before
    source = root / f"layers/shared/claude_chat/{MODULE}.py"
    source.write_text(source.read_text().replace("return", "return  ", 1))
    assert fingerprint(MODULE, LISTED, root) != before


def row(module: str, fingerprint: str = "", score: float = 1.0) -> Row:
    return Row(module, 10, round(10 * score), 0, 10 - round(10 * score), score, 12.0, 20.0, fingerprint)


def test_the_report_records_each_row_and_its_fingerprint_and_reads_them_back(tmp_path: Path) -> None:
    listed, _ = load_equivalents()
    rows = [row(module, fingerprint(module, listed.get(module, []))) for module in CORE_MODULES]
    path = tmp_path / "MUTATION.md"
    path.write_text(report(rows, listed))
    assert read_rows(path) == {r.module: r for r in rows}
    assert stale_modules(read_rows(path), listed) == {}
    assert "12 s | 20 s | `" in path.read_text()


def test_a_module_under_the_floor_records_no_fingerprint_so_ci_scores_it_again(tmp_path: Path) -> None:
    failing = ModuleResult(
        MODULE,
        [mutant(n, "survived", f"return {n}") for n in range(5)],
        3.0,
        4.0,
        fingerprint="0123456789abcdef",
    )
    assert not failing.passed and Row.of(failing).fingerprint == ""
    path = tmp_path / "MUTATION.md"
    path.write_text(report([Row.of(failing)], {}))
    assert "| 0.0% | 3 s | 4 s | none (under the floor) |" in path.read_text()
    assert read_rows(path)[MODULE].fingerprint == ""
    assert stale_modules(read_rows(path), {})[MODULE] == "under the floor when last scored"


def test_stale_modules_are_those_changed_under_the_floor_or_never_scored() -> None:
    listed, _ = load_equivalents()
    modules = list(CORE_MODULES)
    rows = {module: row(module, fingerprint(module, listed.get(module, []))) for module in modules}
    rows[modules[0]] = row(modules[0], "0" * 16)
    rows[modules[1]] = row(modules[1], "", score=0.5)
    del rows[modules[2]]
    assert stale_modules(rows, listed) == {
        modules[0]: "changed since it was scored (its source, unit tests or listed equivalents)",
        modules[1]: "under the floor when last scored",
        modules[2]: "not scored yet",
    }


def test_a_run_rewrites_its_modules_rows_and_keeps_the_others(tmp_path: Path) -> None:
    modules = list(CORE_MODULES)
    path = tmp_path / "MUTATION.md"
    path.write_text(report([row(modules[1], "1" * 16), row(modules[0], "0" * 16)], {}))
    result = ModuleResult(modules[1], [mutant(1, "killed")], 5.0, 6.0, fingerprint="2" * 16)
    assert record([result], path) == [row(modules[0], "0" * 16), Row.of(result)]  # CORE_MODULES' order
    text = report(record([result], path), {})
    assert f"Not scored yet: {', '.join(f'`{m}.py`' for m in modules[2:])}." in text


def fresh_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changed: str = "") -> Path:
    """A docs/MUTATION.md whose every row holds for the modules as they are (but `changed`'s), in place
    of the real one."""
    listed, _ = load_equivalents()
    rows = [row(m, "0" * 16 if m == changed else fingerprint(m, listed.get(m, []))) for m in CORE_MODULES]
    path = tmp_path / "MUTATION.md"
    path.write_text(report(rows, listed))
    monkeypatch.setattr(mutation, "REPORT", path)
    return path


def test_ci_scores_nothing_when_every_row_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_report(tmp_path, monkeypatch)

    def never(*_: Any, **__: Any) -> ModuleResult:
        raise AssertionError("no module is stale")

    monkeypatch.setattr(mutation, "mutate", never)
    assert mutation.main(["--stale", "--no-report"]) == 0


@pytest.mark.parametrize(("status", "exit_code"), [("killed", 0), ("survived", 1)])
def test_ci_scores_a_changed_module_alone_and_fails_when_it_is_under_the_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: str, exit_code: int
) -> None:
    path = fresh_report(tmp_path, monkeypatch, changed=MODULE)
    before = path.read_text()
    scored: list[str] = []

    def mutate(module: str, listed: Any, **_: Any) -> ModuleResult:
        scored.append(module)
        return ModuleResult(module, [mutant(n, status, f"return {n}") for n in range(3)], 1.0, 1.0)

    monkeypatch.setattr(mutation, "mutate", mutate)
    monkeypatch.setattr(mutation, "judge", lambda result, entries: None)  # client_key's are not in it
    assert mutation.main(["--stale", "--no-report"]) == exit_code
    assert scored == [MODULE]
    assert path.read_text() == before  # --no-report (what CI passes): the file is left as committed


def test_a_stale_run_records_the_rows_it_scored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = fresh_report(tmp_path, monkeypatch, changed=MODULE)
    listed, _ = load_equivalents()
    monkeypatch.setattr(
        mutation,
        "mutate",
        lambda module, entries, **_: ModuleResult(
            module, [mutant(1, "killed")], 2.0, 3.0, fingerprint=fingerprint(module, entries)
        ),
    )
    monkeypatch.setattr(mutation, "judge", lambda result, entries: None)
    assert mutation.main(["--stale"]) == 0
    assert stale_modules(read_rows(path), listed) == {}
