"""template.yaml as data, so local runs take their shape from the deployed one.

The local table, the function routing and the CORS emulation are all read
from the template, so `make dev` cannot drift from what `sam deploy` creates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) as {"Ref": ...} / {"Fn::Sub": ...}."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


@cache
def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as file:
        document: dict[str, Any] = yaml.load(file, Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
    return document


@dataclass(frozen=True)
class FunctionSpec:
    """A function with a URL: where its handler is and how its URL answers CORS."""

    logical_id: str
    code_dir: Path
    handler: str
    cors: dict[str, Any]
    invoke_mode: str
    environment: dict[str, Any]
    timeout_seconds: float = 3.0  # Lambda's own default
    memory_mb: int = 128  # Lambda's own default

    @property
    def module_name(self) -> str:
        """The module with the function's entry point: from Handler, or from run.sh's uvicorn line."""
        if not self.handler.endswith(".sh"):
            return self.handler.rsplit(".", 1)[0]
        script = (self.code_dir / self.handler).read_text()
        match = re.search(r"uvicorn\s+([\w.]+):(\w+)", script)
        if match is None:
            raise ValueError(f"{self.logical_id}: no `uvicorn module:app` line in {self.handler}")
        return match[1]


def resources_of_type(
    resource_type: str, template: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    template = template or load_template()
    return {
        name: resource
        for name, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


# Globals.Function properties that SAM replaces rather than merges (samtranslator's CUSTOM_STRATEGIES).
_REPLACED_BY_FUNCTION = {"Architectures"}


def _merge_globals(global_value: Any, local_value: Any, path: str = "") -> Any:
    """SAM's Globals rule: maps merge key by key, lists are the Globals' items then the function's,
    anything else (or a type mismatch, such as an intrinsic against a list) is the function's own."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        merged = dict(global_value)
        for key, value in local_value.items():
            child = f"{path}.{key}".lstrip(".")
            merged[key] = _merge_globals(global_value[key], value, child) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list) and path not in _REPLACED_BY_FUNCTION:
        return global_value + local_value
    return local_value


def function_properties(template: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Each AWS::Serverless::Function's Properties with Globals.Function merged in, as SAM merges them."""
    template = template or load_template()
    globals_ = template.get("Globals", {}).get("Function", {})
    return {
        name: _merge_globals(globals_, resource.get("Properties", {}))
        for name, resource in resources_of_type("AWS::Serverless::Function", template).items()
    }


def url_functions(template: dict[str, Any] | None = None) -> list[FunctionSpec]:
    template = template or load_template()
    specs = []
    for name, properties in function_properties(template).items():
        url = properties.get("FunctionUrlConfig")
        if not url:  # with one in Globals, SAM gives every function a URL
            continue
        specs.append(
            FunctionSpec(
                logical_id=name,
                code_dir=ROOT / properties["CodeUri"],
                handler=properties.get("Handler", ""),
                cors=url.get("Cors", {}),
                invoke_mode=url.get("InvokeMode", "BUFFERED"),
                environment=properties.get("Environment", {}).get("Variables", {}),
                timeout_seconds=_timeout(properties.get("Timeout", 3), template),
                memory_mb=int(properties.get("MemorySize", 128)),
            )
        )
    return specs


def _timeout(value: Any, template: dict[str, Any]) -> float:
    """A function's Timeout: a number, or a !Ref to a parameter (its Default)."""
    if isinstance(value, dict) and "Ref" in value:
        value = template.get("Parameters", {}).get(value["Ref"], {}).get("Default", 3)
    return float(value)


def table_properties(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one DynamoDB table's Properties, exactly as template.yaml declares them."""
    tables = resources_of_type("AWS::DynamoDB::Table", template)
    if len(tables) != 1:
        raise ValueError(f"expected one AWS::DynamoDB::Table in template.yaml, found {len(tables)}")
    properties: dict[str, Any] = next(iter(tables.values()))["Properties"]
    return properties
