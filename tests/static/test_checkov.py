"""checkov on the CloudFormation this project deploys: template.yaml as written, template.yaml
after the SAM transform (what CloudFormation really creates), and deploy/github-deploy-role.yaml.

Offline: checkov runs with --skip-download (no calls to its vendor's API), and the transform is
samtranslator's (tests/tools/sam_transform.py, run by .venv-sam's interpreter). checkov lives in
.venv-checkov (`make install`), apart from .venv, whose boto3 pin it does not accept.

A finding fails its test. A finding that is accepted on purpose is suppressed in the template
itself, on the resource, with its reason:

    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_117
            comment: Reaches only public endpoints; a VPC would add a NAT gateway and nothing else.

SAM copies a function's Metadata onto the AWS::Lambda::Function it generates, but not onto the
URL, permissions, version and alias it generates with it; the transformed-template test hands
the function's suppressions on to those, so one reason, on the function, covers them all.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from local.template import load_template
from tests.sam_offline import offline_env, transformed_template, transformed_with_parameters

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
DEPLOY_ROLE_TEMPLATE = ROOT / "deploy" / "github-deploy-role.yaml"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_FLAGS = ["--framework", "cloudformation", "--quiet", "--compact", "--skip-download"]
# Resources SAM generates from a function, pointing back at it (or at its alias).
FUNCTION_CHILDREN = {
    "AWS::Lambda::Url",
    "AWS::Lambda::Permission",
    "AWS::Lambda::Version",
    "AWS::Lambda::Alias",
}


# --------------------------------------------------------------------------- helpers


def _clean_env() -> dict[str, str]:
    """Offline, and without checkov's vendor settings (BC_, CKV_, PRISMA_) from the caller's shell."""
    return {
        key: value for key, value in offline_env().items() if not key.startswith(("BC_", "CKV_", "PRISMA_"))
    }


def _checkov(files: dict[str, str], directory: Path) -> dict[str, dict[str, Any]]:
    """checkov's findings for each of several files, from one run (checkov takes ~10 s to start).

    Fails the test if checkov itself broke, could not parse a file, or checked nothing in one.
    """
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    # Without --quiet: the JSON then lists passed checks too, which show a file was checked at all.
    flags = [flag for flag in CHECKOV_FLAGS if flag != "--quiet"]
    result = subprocess.run(
        [str(CHECKOV), *flags, "--output", "json", "--directory", str(directory)],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd=directory,
        timeout=300,
        check=False,
    )
    assert result.returncode in {0, 1}, f"checkov broke ({result.returncode}):\n{result.stderr[-4000:]}"
    loaded = json.loads(result.stdout)
    reports = loaded if isinstance(loaded, list) else [loaded]
    assert len(reports) == 1, f"expected one cloudformation report, got {len(reports)}"
    report: dict[str, Any] = reports[0]
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, f"checkov could not parse a file: {summary}"
    assert (result.returncode == 1) == (summary["failed"] > 0), (result.returncode, summary)
    by_file: dict[str, dict[str, Any]] = {
        name: {"results": {"passed_checks": [], "failed_checks": []}} for name in files
    }
    for outcome in ("passed_checks", "failed_checks"):
        for check in report.get("results", {}).get(outcome, []):
            by_file[Path(check["file_path"]).name]["results"][outcome].append(check)
    for name, found in by_file.items():
        assert found["results"]["passed_checks"] or found["results"]["failed_checks"], (
            f"checkov checked nothing in {name}"
        )
    return by_file


def _failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{check['check_id']} {check['resource']} (lines {check['file_line_range'][0]}-"
        f"{check['file_line_range'][1]}): {check['check_name']}"
        for check in report.get("results", {}).get("failed_checks", [])
    ]


def _assert_clean(report: dict[str, Any], name: str) -> None:
    failures = _failures(report)
    assert not failures, (
        f"checkov findings in {name}; fix each, or suppress it on its resource with "
        "Metadata: {checkov: {skip: [{id: ..., comment: <reason>}]}}:\n  " + "\n  ".join(failures)
    )


def _referenced_name(value: Any) -> str | None:
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            return str(value["Ref"])
        attribute = value.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute:
            return str(attribute[0])
    return None


def _hand_on_function_suppressions(document: dict[str, Any]) -> dict[str, Any]:
    """Give SAM's URL, permissions, version and alias of a function that function's checkov skips."""
    resources: dict[str, Any] = document["Resources"]

    def owning_function(name: str | None, hops: int = 0) -> str | None:
        resource = resources.get(name) if name else None
        if resource is None or hops > 2:
            return None
        if resource["Type"] == "AWS::Lambda::Function":
            return name
        if resource["Type"] in FUNCTION_CHILDREN:
            properties = resource.get("Properties", {})
            target = properties.get("TargetFunctionArn", properties.get("FunctionName"))
            return owning_function(_referenced_name(target), hops + 1)
        return None

    for name, resource in resources.items():
        function = owning_function(name) if resource["Type"] in FUNCTION_CHILDREN else None
        if function is None:
            continue
        skips = resources[function].get("Metadata", {}).get("checkov", {}).get("skip", [])
        if skips:
            own = resource.setdefault("Metadata", {}).setdefault("checkov", {}).setdefault("skip", [])
            own.extend(skip for skip in skips if skip not in own)
    return document


def _suppressions(template: dict[str, Any]) -> list[tuple[str, Any]]:
    found = []
    for name, resource in template.get("Resources", {}).items():
        checkov = (resource.get("Metadata") or {}).get("checkov") or {}
        found += [(name, skip) for skip in checkov.get("skip", [])]
    return found


# --------------------------------------------------------------------------- the harness can fail


KNOWN_BAD = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Admin:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {AWS: "*"}, Action: sts:AssumeRole}
      Policies:
        - PolicyName: everything
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: "*", Resource: "*"}
"""


@pytest.fixture(scope="module")
def checkov_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """One checkov run over everything this module checks, each file's findings apart.

    What CloudFormation creates is checked too: the transformed template (SAM's roles, URLs,
    permissions, versions and aliases) in both provider modes (on Bedrock with BedrockModel alone and
    with a list of profiles), with the function's skips handed on to what SAM generates from it.
    """
    if not CHECKOV.exists():
        pytest.skip(f"checkov not installed at {CHECKOV} (make install creates .venv-checkov)")
    transformed = _hand_on_function_suppressions(transformed_template(TEMPLATE))
    assert "Transform" not in transformed and transformed["Resources"], "the transform left a SAM template"
    profiles = "us.anthropic.claude-haiku-4-5-20251001-v1:0,global.anthropic.claude-sonnet-4-5-20250929-v1:0"
    bedrock, profiles_bedrock = transformed_with_parameters(
        [{"ClaudeProvider": "bedrock"}, {"ClaudeProvider": "bedrock", "BedrockModels": profiles}]
    )
    files = {
        "template.yaml": TEMPLATE.read_text(encoding="utf-8"),
        "github-deploy-role.yaml": DEPLOY_ROLE_TEMPLATE.read_text(encoding="utf-8"),
        "transformed-template.json": json.dumps(transformed, indent=1),
        "transformed-bedrock.json": json.dumps(_hand_on_function_suppressions(bedrock), indent=1),
        "transformed-bedrock-profiles.json": json.dumps(
            _hand_on_function_suppressions(profiles_bedrock), indent=1
        ),
        "known-bad.yaml": KNOWN_BAD,
    }
    return _checkov(files, tmp_path_factory.mktemp("checkov"))


def test_checkov_reports_a_known_bad_template(checkov_reports: dict[str, dict[str, Any]]) -> None:
    """The harness sees findings: an admin role must not pass."""
    failed = {check.split()[0] for check in _failures(checkov_reports["known-bad.yaml"])}
    assert {"CKV_AWS_60", "CKV_AWS_62", "CKV_AWS_63"} <= failed, failed


# --------------------------------------------------------------------------- the templates


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("github-deploy-role.yaml", DEPLOY_ROLE_TEMPLATE.name),
        ("template.yaml", TEMPLATE.name),
        ("transformed-template.json", f"{TEMPLATE.name} after the SAM transform"),
        ("transformed-bedrock.json", f"{TEMPLATE.name} with ClaudeProvider=bedrock, transformed"),
        (
            "transformed-bedrock-profiles.json",
            f"{TEMPLATE.name} on Bedrock with two BedrockModels, transformed",
        ),
    ],
)
def test_what_we_deploy_passes_checkov(
    checkov_reports: dict[str, dict[str, Any]], name: str, what: str
) -> None:
    _assert_clean(checkov_reports[name], what)


@pytest.mark.parametrize("path", [TEMPLATE, DEPLOY_ROLE_TEMPLATE], ids=lambda path: path.name)
def test_every_checkov_suppression_gives_its_reason(path: Path) -> None:
    for resource, skip in _suppressions(load_template(path)):
        assert isinstance(skip, dict), f"{resource}: a checkov skip without id and comment: {skip!r}"
        assert str(skip.get("id", "")).startswith(("CKV_", "CKV2_")), f"{resource}: skip id {skip!r}"
        comment = str(skip.get("comment") or "").strip()
        assert len(comment) >= 15, f"{resource}: {skip.get('id')} is suppressed without a reason"


def test_suppressions_reach_the_resources_sam_generates() -> None:
    """A skip on a function reaches the URL that points at its alias, and nothing else."""
    skip = {"id": "CKV_AWS_258", "comment": "public by design"}
    document: dict[str, Any] = {
        "Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Metadata": {"checkov": {"skip": [skip]}}},
            "FnAliaslive": {"Type": "AWS::Lambda::Alias", "Properties": {"FunctionName": {"Ref": "Fn"}}},
            "FnUrl": {
                "Type": "AWS::Lambda::Url",
                "Properties": {"TargetFunctionArn": {"Ref": "FnAliaslive"}},
            },
            "Other": {"Type": "AWS::Lambda::Function"},
            "OtherUrl": {"Type": "AWS::Lambda::Url", "Properties": {"TargetFunctionArn": {"Ref": "Other"}}},
        }
    }
    resources = _hand_on_function_suppressions(document)["Resources"]
    assert resources["FnUrl"]["Metadata"]["checkov"]["skip"] == [skip]
    assert resources["FnAliaslive"]["Metadata"]["checkov"]["skip"] == [skip]
    assert "Metadata" not in resources["OtherUrl"]
