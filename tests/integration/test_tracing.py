"""X-Ray tracing both ways: on (as in AWS) the chat handler is traced; off, the X-Ray SDK is never imported.

Each case runs the chat function's init in a fresh interpreter (subprocess), since whether
the SDK was imported, and botocore patched, is process-wide.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.dev_server import ROOT

_CHILD = """
import json, sys
from local.lambda_runtime import LocalLambdaContext, load_handler_module
from local.template import url_functions
spec = next(s for s in url_functions() if s.logical_id == "ChatFunction")
module = load_handler_module(spec)
from claude_chat.tracing import tracer
facts = {"kind": type(tracer).__name__, "disabled": bool(tracer.disabled),
         "xray_imported": "aws_xray_sdk" in sys.modules}
if not tracer.disabled:
    from aws_xray_sdk.core import patcher, xray_recorder
    facts["patched"] = sorted(patcher._PATCHED_MODULES)
    def handler(event, context):
        return {"traced": xray_recorder.current_subsegment().name}
    context = LocalLambdaContext(function_name="ChatFunction")
    facts["result"] = tracer.capture_lambda_handler(handler)({}, context)
print(json.dumps(facts))
"""


def _init(**env: str) -> dict[str, Any]:
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "LAMBDA_", "POWERTOOLS_", "_X_AMZN", "AWS_SAM"))
    }
    base.update(
        PYTHONPATH=f"{ROOT / 'layers' / 'shared'}{os.pathsep}{ROOT}",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x",
        AWS_DEFAULT_REGION="us-east-1",
        TABLE_NAME="tracing-test",
        SESSION_SECRET="tracing-test",
        ANTHROPIC_API_KEY="tracing-test",
    )
    base.update(env)
    output = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=ROOT, env=base, capture_output=True, text=True, check=False
    )
    assert output.returncode == 0, output.stderr[-3000:]
    facts: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return facts


# In Lambda with Tracing: Active: the task root is set, and each invocation carries a trace id.
_IN_LAMBDA = {
    "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "chat"),
    "_X_AMZN_TRACE_ID": "Root=1-674325a1-3f2b8a0c5d6e7f8091a2b3c4;Parent=53995c3f42cd8ad8;Sampled=1",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",  # UDP: segments sent to nowhere, never an error
}


def test_tracing_on_in_lambda_traces_the_handler_and_patches_botocore() -> None:
    facts = _init(**_IN_LAMBDA)
    assert facts["kind"] == "Tracer"
    assert facts["disabled"] is False
    assert facts["xray_imported"] is True
    assert "botocore" in facts["patched"]
    assert facts["result"] == {"traced": "## handler"}


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="outside-lambda"),
        pytest.param({**_IN_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "true"}, id="disabled-by-env"),
    ],
)
def test_tracing_off_never_imports_the_xray_sdk(env: dict[str, str]) -> None:
    facts = _init(**env)
    assert facts == {"kind": "Untraced", "disabled": True, "xray_imported": False}
