"""`make dev`'s Lambda context reports each function's own memory size, as the template sets it."""

from __future__ import annotations

from typing import Any

import pytest

from local import lambda_runtime
from local.template import function_properties, url_functions


def test_each_url_function_carries_its_template_memory_size() -> None:
    properties = function_properties()
    sizes = {spec.logical_id: spec.memory_mb for spec in url_functions()}
    assert sizes == {name: int(properties[name]["MemorySize"]) for name in sizes}
    assert len(set(sizes.values())) > 1, "the template gives its functions different sizes"


def test_a_workers_context_reports_the_functions_memory_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Powertools logs it (function_memory_size): a function at 768 MB must not say 1,024."""

    def handler(_event: dict[str, Any], context: lambda_runtime.LocalLambdaContext) -> int:
        return context.memory_limit_in_mb

    monkeypatch.setitem(lambda_runtime._handlers, "Small", handler)
    monkeypatch.setitem(lambda_runtime._memory_mb, "Small", 768)
    result, _ = lambda_runtime._invoke("Small", {}, 3.0)
    assert result == 768
