"""tests/tools/mutation.py's bookkeeping, without running mutmut: the list of equivalents and the floor."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from tests.tools import mutation
from tests.tools.mutation import CORE_MODULES, ROOT, Equivalent, ModuleResult, Mutant, judge, load_equivalents


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
