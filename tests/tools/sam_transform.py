"""The deploy-time transforms, offline: print the plain CloudFormation that `sam deploy` would create.

Run it with an interpreter that has samtranslator (the one in .venv-sam):

    .venv-sam/bin/python tests/tools/sam_transform.py template.yaml > transformed.json
    .venv-sam/bin/python tests/tools/sam_transform.py template.yaml '[{}, {"MaxTokens": "2048"}]'
    .venv-sam/bin/python tests/tools/sam_transform.py --sam-only template.yaml

The optional second argument is a JSON list of parameter overrides; the output is then a JSON
list with one transformed template per entry. CloudFormation hands every transform the stack's
parameter values as strings (lists for list types), defaults filled in; so does this.
--sam-only leaves out AWS::LanguageExtensions: parameters stay `Ref`s, for checks (cfn-lint)
that judge the template for every parameter value rather than for one set of values.

Local code locations become the s3:// URIs `sam package` would put there, and the
managed-policy loader is a stub, so nothing asks IAM for policy ARNs and no AWS account is
needed. A template that lists AWS::LanguageExtensions first has its parameter references in
Resources resolved first, as that transform does before the SAM transform runs.
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from samtranslator.intrinsics.resolver import IntrinsicsResolver  # type: ignore[import-not-found]
from samtranslator.translator.transform import transform  # type: ignore[import-not-found]
from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-not-found]

LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
}


class OfflinePolicyLoader:
    """Answers samtranslator's managed-policy lookups without calling IAM."""

    def load(self) -> dict[str, str]:
        return dict(MANAGED_POLICIES)


def parameter_values(sam: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Every declared parameter's value as CloudFormation passes it to a transform."""
    values: dict[str, Any] = {}
    for name, declared in (sam.get("Parameters") or {}).items():
        if name in overrides:
            value = overrides[name]
        elif "Default" in declared:
            value = declared["Default"]
        else:
            continue
        if str(declared.get("Type", "")).startswith(("CommaDelimitedList", "List<")):
            values[name] = (
                value if isinstance(value, list) else [item.strip() for item in str(value).split(",")]
            )
        else:
            values[name] = value if isinstance(value, str) else json.dumps(value)
    return values


_UNDECIDED = object()


def _as_string(value: Any) -> Any:
    value = _literal(value)
    return value if isinstance(value, (str, dict)) else json.dumps(value)


def _literal(value: Any) -> Any:
    """Fn::Sub (with nothing left to substitute), Fn::Split, Fn::Select and Fn::Join over literal values,
    evaluated as CloudFormation does; the value itself while an intrinsic it cannot evaluate remains."""
    if not isinstance(value, dict) or len(value) != 1:
        return value
    ((function, arguments),) = value.items()
    if function == "Fn::Sub" and isinstance(arguments, str) and "${" not in arguments.replace("${!", ""):
        return arguments.replace("${!", "${")
    if function == "Fn::Split":
        source = _literal(arguments[1])
        return source.split(arguments[0]) if isinstance(source, str) else value
    if function == "Fn::Select":
        items = _literal(arguments[1])
        return items[int(arguments[0])] if isinstance(items, list) else value
    if function == "Fn::Join":
        items = _literal(arguments[1])
        if isinstance(items, list):
            items = [_literal(item) for item in items]
            if all(isinstance(item, str) for item in items):
                return arguments[0].join(items)
    return value


def _condition(expression: Any, conditions: dict[str, Any]) -> Any:
    """A condition's truth from literal values, or _UNDECIDED while an intrinsic remains."""
    if isinstance(expression, dict) and len(expression) == 1:
        ((function, arguments),) = expression.items()
        if function == "Condition":
            return _condition(conditions[arguments], conditions)
        if function == "Fn::Equals":
            left, right = (_as_string(argument) for argument in arguments)
            return _UNDECIDED if isinstance(left, dict) or isinstance(right, dict) else left == right
        if function in {"Fn::Not", "Fn::And", "Fn::Or"}:
            values = [_condition(argument, conditions) for argument in arguments]
            if any(value is _UNDECIDED for value in values):
                return _UNDECIDED
            if function == "Fn::Not":
                return not values[0]
            return all(values) if function == "Fn::And" else any(values)
    return _UNDECIDED


def _decide_ifs(value: Any, conditions: dict[str, Any]) -> Any:
    """Fn::If whose condition the parameter values decide becomes the chosen branch."""
    if isinstance(value, list):
        items = [_decide_ifs(item, conditions) for item in value]
        return [item for item in items if item != {"Ref": "AWS::NoValue"}]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::If"}:
        name, when_true, when_false = value["Fn::If"]
        truth = _condition({"Condition": name}, conditions)
        if truth is not _UNDECIDED:
            return _decide_ifs(when_true if truth else when_false, conditions)
        # Undecided, it stays, with its branches (AWS::NoValue among them) as they are.
        return {"Fn::If": [name, _decide_ifs(when_true, conditions), _decide_ifs(when_false, conditions)]}
    decided = {key: _decide_ifs(item, conditions) for key, item in value.items()}
    decided = {key: item for key, item in decided.items() if item != {"Ref": "AWS::NoValue"}}
    # Fn::Sub, Fn::Split, Fn::Select and Fn::Join of literal values become their value, as the
    # hosted transform writes them.
    literal = _literal(decided)
    return decided if literal is decided else literal


def _language_extensions(sam: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """What AWS::LanguageExtensions does before the SAM transform, as far as versions care.

    The hosted transform resolves intrinsics in Resources (and Conditions and Outputs, never
    Globals) wherever it can: each `Ref` to a parameter becomes the parameter's value, so does
    each ${Parameter} inside Fn::Sub, an Fn::If whose condition the values decide (Fn::Split,
    Fn::Select and Fn::Join of literal values included) becomes its branch, and those functions of
    literal values become their value. samtranslator's own resolver does the first two; the rest (resource
    references, pseudo parameters) is left for CloudFormation, with the same deployed values.
    """
    resolver = IntrinsicsResolver(values)
    conditions = resolver.resolve_parameter_refs(copy.deepcopy(sam.get("Conditions", {})))
    processed = dict(sam)
    resources = resolver.resolve_parameter_refs(copy.deepcopy(sam.get("Resources", {})))
    processed["Resources"] = _decide_ifs(resources, conditions)
    return processed


def transformed(
    template_text: str, overrides: dict[str, Any] | None = None, *, sam_only: bool = False
) -> dict[str, Any]:
    """The template after its transforms; sam_only skips AWS::LanguageExtensions (parameters stay `Ref`s)."""
    sam: dict[str, Any] = yaml_parse(template_text)
    for name, resource in sam.get("Resources", {}).items():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                properties[key] = f"s3://sam-artifacts/{name}.zip"
    values = parameter_values(sam, overrides or {})
    transforms = sam.get("Transform")
    if isinstance(transforms, list) and LANGUAGE_EXTENSIONS in transforms:
        if transforms.index(LANGUAGE_EXTENSIONS) != 0:
            raise SystemExit(f"{LANGUAGE_EXTENSIONS} must come first in Transform")
        if not sam_only:
            sam = _language_extensions(sam, values)
        rest = [name for name in transforms if name != LANGUAGE_EXTENSIONS]
        sam["Transform"] = rest[0] if len(rest) == 1 else rest
    document: dict[str, Any] = transform(sam, values, OfflinePolicyLoader())
    return document


def main(argv: list[str]) -> int:
    arguments = argv[1:]
    sam_only = "--sam-only" in arguments
    arguments = [argument for argument in arguments if argument != "--sam-only"]
    if len(arguments) not in {1, 2}:
        print(f"usage: {argv[0]} [--sam-only] TEMPLATE [JSON list of parameter overrides]", file=sys.stderr)
        return 2
    with open(arguments[0], encoding="utf-8") as file:
        text = file.read()
    result: Any
    if len(arguments) == 2:
        result = [transformed(text, overrides, sam_only=sam_only) for overrides in json.loads(arguments[1])]
    else:
        result = transformed(text, sam_only=sam_only)
    json.dump(result, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
