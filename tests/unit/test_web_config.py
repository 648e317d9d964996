"""`make web-config`: the page's config.json from `sam list stack-outputs --output json`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from local.web_config import page_config

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = [
    {"OutputKey": "ChatUrl", "OutputValue": "https://chat.lambda-url.us-east-1.on.aws/", "Description": "-"},
    {
        "OutputKey": "HistoryUrl",
        "OutputValue": "https://hist.lambda-url.us-east-1.on.aws/",
        "Description": "-",
    },
    {
        "OutputKey": "StreamUrl",
        "OutputValue": "https://strm.lambda-url.us-east-1.on.aws/",
        "Description": "-",
    },
    {"OutputKey": "TableName", "OutputValue": "claude-chat-ChatTable", "Description": "-"},
]


def test_the_config_names_each_function_url_without_its_trailing_slash() -> None:
    assert page_config(OUTPUTS) == {
        "chatUrl": "https://chat.lambda-url.us-east-1.on.aws",
        "historyUrl": "https://hist.lambda-url.us-east-1.on.aws",
        "streamUrl": "https://strm.lambda-url.us-east-1.on.aws",
    }


def test_the_template_has_the_outputs_the_config_reads() -> None:
    from local.template import load_template

    outputs = load_template()["Outputs"]
    assert {"ChatUrl", "HistoryUrl", "StreamUrl"} <= outputs.keys()


def test_a_stack_without_the_url_outputs_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="StreamUrl"):
        page_config([output for output in OUTPUTS if output["OutputKey"] != "StreamUrl"])


def test_the_command_writes_the_file_from_stdin(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    done = subprocess.run(
        [sys.executable, "-m", "local.web_config", "--output", str(target)],
        input=json.dumps(OUTPUTS),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(target.read_text())["streamUrl"] == "https://strm.lambda-url.us-east-1.on.aws"


def test_the_command_fails_clearly_on_output_that_is_not_the_stack(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "local.web_config", "--output", str(tmp_path / "config.json")],
        input="Error: Stack does not exist",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode != 0
    assert "web-config:" in done.stderr
    assert not (tmp_path / "config.json").exists()
