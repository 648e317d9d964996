"""The local workers' stdout: each line leaves in one write, so workers sharing a log never mix lines."""

from __future__ import annotations

import io
import json

from local.lambda_runtime import whole_lines


class Recorder(io.RawIOBase):
    """A raw stream that keeps each write() it is given."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes.append(bytes(data))
        return len(data)


def test_print_leaves_as_one_write_per_line() -> None:
    raw = Recorder()
    stream = whole_lines(raw)
    metrics = {"_aws": {"CloudWatchMetrics": [{"Namespace": "ClaudeChat"}]}, "InputTokens": [12.0]}
    print(json.dumps(metrics), file=stream)  # what Powertools' metrics do: the text, then "\n"
    stream.write("a log record\n")
    stream.write("two lines\nat once\n")
    big = "x" * 200_000
    print(big, file=stream)
    assert raw.writes == [
        json.dumps(metrics).encode() + b"\n",
        b"a log record\n",
        b"two lines\nat once\n",
        big.encode() + b"\n",
    ]


def test_a_line_without_its_end_waits_for_it() -> None:
    raw = Recorder()
    stream = whole_lines(raw)
    stream.write('{"level": "INFO"')
    assert raw.writes == []
    stream.write("}\n")
    assert raw.writes == [b'{"level": "INFO"}\n']
