"""The README's curl examples, run verbatim (but for the port) against `make dev`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def curl_examples() -> str:
    section = README.read_text().split("## Try it with curl", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S)[1]  # type: ignore[index]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_curl_examples_work_verbatim(dev_server) -> None:
    script = curl_examples().replace("http://127.0.0.1:3000", dev_server.base_url)
    assert script.count("curl ") >= 6
    # Echo a marker after each command so each command's output can be checked on its own.
    lines = [line for line in script.splitlines() if line.strip()]
    commands, current = [], ""
    for line in lines:
        current += line + "\n"
        if not line.rstrip().endswith("\\") and not line.lstrip().startswith("#"):
            commands.append(current)
            current = ""
    program = "set -euo pipefail\n" + "".join(f"{command}echo; echo '<<end>>'\n" for command in commands)
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    outputs = [out.strip() for out in result.stdout.split("<<end>>")[:-1]]
    stateless, name_turn, history, reset, bad, streamed, listed, renamed, exported = [o for o in outputs if o]
    assert json.loads(stateless)["reply"]
    assert json.loads(name_turn)["turns"] == 2
    assert json.loads(history)["messages"][0]["content"] == "My name is Ada."
    assert json.loads(reset) == {"ok": True}
    assert bad.startswith("HTTP/1.1 422")
    assert "ratelimit-remaining:" in bad.lower()
    assert '"code":"invalid_request"' in bad.replace(" ", "")
    events = streamed.split("\n\n")
    assert events[0].startswith('data: {"text": "Stand-in ')
    assert events[-1] == "data: [DONE]"
    assert '"turns": 1' in events[-2] and '"conversation": "story"' in events[-2]
    # The reset default conversation is no longer listed; the story is.
    assert [c["id"] for c in json.loads(listed)["conversations"]] == ["story"]
    assert json.loads(renamed)["title"] == "A story"
    assert exported.startswith("# A story\n") and "Tell me a story." in exported
