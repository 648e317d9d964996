"""The SAM transform, offline: print the plain CloudFormation that `sam deploy` would create.

Run it with an interpreter that has samtranslator (the one in .venv-sam):

    .venv-sam/bin/python tests/tools/sam_transform.py template.yaml > transformed.json

The same approach as tests/unit/test_template.py: local code locations become the
s3:// URIs `sam package` would put there, and the managed-policy loader is a stub, so
nothing asks IAM for policy ARNs and no AWS account is needed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from samtranslator.translator.transform import transform  # type: ignore[import-not-found]
from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-not-found]

MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
}


class OfflinePolicyLoader:
    """Answers samtranslator's managed-policy lookups without calling IAM."""

    def load(self) -> dict[str, str]:
        return dict(MANAGED_POLICIES)


def transformed(template_text: str) -> dict[str, Any]:
    sam: dict[str, Any] = yaml_parse(template_text)
    for name, resource in sam.get("Resources", {}).items():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                properties[key] = f"s3://sam-artifacts/{name}.zip"
    document: dict[str, Any] = transform(sam, {}, OfflinePolicyLoader())
    return document


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} TEMPLATE", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as file:
        document = transformed(file.read())
    json.dump(document, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
