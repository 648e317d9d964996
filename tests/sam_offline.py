"""SAM CLI and samtranslator without an AWS account: one environment and one transform for every test.

The transform is tests/tools/sam_transform.py, run by whichever interpreter has
samtranslator (this one, or .venv-sam's), once per test session.
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
def _transform(template: Path) -> str:
    python = _samtranslator_python()
    if python is None:
        pytest.skip("samtranslator is not importable here and .venv-sam/bin/python is missing")
    result = subprocess.run(
        [python, str(SAM_TRANSFORM), str(template)],
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
