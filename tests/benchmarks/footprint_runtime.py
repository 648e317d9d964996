"""A lean stand-in for Lambda's Python runtime loop, so one buffered function's memory can be read.

Run as a script (never imported by the benchmark's own process): it imports one
function's handler module as Lambda's init does, then invokes the handler on
each event it reads, one JSON line per event on stdin, and answers one JSON
line per event on the original stdout (the handler's own logs go to stderr).
Beside each answer it reports its process's peak resident memory
(VmHWM) and CPU time (user + system, all threads), so the footprint
benchmark measures exactly this process: interpreter, SDKs and handler, and
nothing of the harness, which runs in other processes.

    python footprint_runtime.py CODE_DIR MODULE HANDLER FUNCTION_NAME TIMEOUT_SECONDS
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
import uuid
from typing import Any


def _peak_kb() -> int:
    """This process's peak resident memory. Not ru_maxrss: Linux carries that across exec, so it would
    report the parent's size at fork (the benchmark's own process) whenever that was larger."""
    for line in open("/proc/self/status").read().splitlines():  # noqa: SIM115 - read at once
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def _usage() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "maxrss_kb": _peak_kb(),
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": time.monotonic(),
    }


class _Context:
    """The attributes of Lambda's context object that Powertools reads."""

    def __init__(self, function_name: str, timeout_seconds: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"))
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "footprint"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    code_dir, module_name, handler_name, function_name, timeout = sys.argv[1:6]
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the handler's logs (Powertools writes to stdout) must not mix with the answers
    sys.stdout = sys.stderr
    answers.write(json.dumps({"phase": "start", **_usage()}) + "\n")
    sys.path.insert(0, code_dir)
    handler = getattr(importlib.import_module(module_name), handler_name)
    answers.write(json.dumps({"phase": "init", **_usage()}) + "\n")
    for line in sys.stdin:
        event = json.loads(line)
        before = _usage()
        result: Any = handler(event, _Context(function_name, float(timeout)))
        after = _usage()
        answers.write(
            json.dumps(
                {
                    "phase": "turn",
                    "result": result,
                    "maxrss_kb": after["maxrss_kb"],
                    "cpu_s": after["cpu_s"] - before["cpu_s"],
                    "wall_s": after["wall_s"] - before["wall_s"],
                }
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
