"""SAM CLI and samtranslator without an AWS account: one environment and one transform for every test.

The transform is tests/tools/sam_transform.py, run by whichever interpreter has
samtranslator (this one, or .venv-sam's), once per test session and template (and once
per list of parameter sets, for tests that compare deploys with different parameters).
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
SAM_VENV_BIN = ROOT / ".venv-sam" / "bin"
SAM_TRANSFORM = ROOT / "tests" / "tools" / "sam_transform.py"


def offline_env() -> dict[str, str]:
    """This environment minus anything that reaches a real account or leaks into another venv."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and key not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    env.update(
        AWS_ACCESS_KEY_ID="dummy",
        AWS_SECRET_ACCESS_KEY="dummy",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        SAM_CLI_TELEMETRY="0",
    )
    return env


def _samtranslator_python() -> str | None:
    if importlib.util.find_spec("samtranslator") is not None:
        return sys.executable
    sam_python = SAM_VENV_BIN / "python"
    return str(sam_python) if sam_python.exists() else None


@functools.cache
def _transform(template: Path, parameter_sets: str | None = None, *, sam_only: bool = False) -> str:
    python = _samtranslator_python()
    if python is None:
        pytest.skip("samtranslator is not importable here and .venv-sam/bin/python is missing")
    flags = ["--sam-only"] if sam_only else []
    extra = [] if parameter_sets is None else [parameter_sets]
    result = subprocess.run(
        [python, str(SAM_TRANSFORM), *flags, str(template), *extra],
        capture_output=True,
        text=True,
        env=offline_env(),
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"SAM transform failed:\n{result.stderr}"
    return result.stdout


def transformed_template(template: Path = TEMPLATE) -> dict[str, Any]:
    """The plain CloudFormation `sam deploy` would create from `template` (a fresh copy each call)."""
    document: dict[str, Any] = json.loads(_transform(template))
    return copy.deepcopy(document)


def sam_only_transformed_template(template: Path = TEMPLATE) -> dict[str, Any]:
    """The SAM transform alone, with every parameter still a `Ref`: the template for any parameter values.

    CloudFormation runs AWS::LanguageExtensions first, which writes one set of parameter values
    into Resources; a lint of that output would judge one deploy, not the template.
    """
    document: dict[str, Any] = json.loads(_transform(template, sam_only=True))
    return copy.deepcopy(document)


def transformed_with_parameters(
    parameter_sets: list[dict[str, Any]], template: Path = TEMPLATE
) -> list[dict[str, Any]]:
    """One transformed template per set of parameter overrides, as CloudFormation would transform each.

    Parameter values reach the transforms as CloudFormation passes them (strings, defaults
    filled in), so comparing the results shows what a deploy with other parameters changes.
    """
    documents: list[dict[str, Any]] = json.loads(
        _transform(template, json.dumps(parameter_sets, sort_keys=True))
    )
    return copy.deepcopy(documents)
