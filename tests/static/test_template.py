"""template.yaml: it validates, it lints after the SAM transform, and its shape holds.

Three layers of checks, all offline (no AWS account, no Docker):

1. `sam validate --lint`, as an operator would run it.
2. The SAM transform done here with samtranslator (the same library SAM CLI uses),
   then cfn-lint on the plain CloudFormation that comes out. cfn-lint 1.x no longer
   transforms SAM templates itself: it checks the SAM resources against SAM schemas,
   which misses what only shows after the transform (an unknown Runtime set in
   Globals passes `sam validate --lint` but not this).
3. Structural checks of the things that matter here: runtime and architecture,
   the layer, public URLs and their CORS, the table keys, least-privilege IAM.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from local.template import function_properties, load_template
from tests.sam_offline import (
    offline_env,
    sam_only_transformed_template,
    transformed_template,
    transformed_with_parameters,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
LAYER_MAKEFILE = ROOT / "layers" / "shared" / "Makefile"
SAM_VENV_BIN = ROOT / ".venv-sam" / "bin"
SAM = SAM_VENV_BIN / "sam"

FUNCTION = "AWS::Serverless::Function"
URL_FUNCTIONS = {
    "ChatFunction": ["POST"],
    "HistoryFunction": ["GET", "PATCH", "DELETE"],
    "StreamFunction": ["POST"],
}
BUFFERED_FUNCTIONS = ["ChatFunction", "HistoryFunction"]
# Set for the Lambda Web Adapter, which reads them; the app's settings never do.
ADAPTER_VARIABLES = {
    "AWS_LAMBDA_EXEC_WRAPPER",
    "AWS_LWA_INVOKE_MODE",
    "AWS_LWA_PORT",
    "AWS_LWA_READINESS_CHECK_PATH",
    "AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH",
    "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH",
}


# --------------------------------------------------------------------------- helpers


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _actions_of(statement: dict[str, Any], service: str) -> list[str]:
    return [str(a) for a in _as_list(statement.get("Action", [])) if str(a).startswith(f"{service}:")]


def _has_intrinsic(value: Any) -> bool:
    if isinstance(value, dict):
        if any(key == "Ref" or key.startswith("Fn::") for key in value):
            return True
        return any(_has_intrinsic(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_intrinsic(item) for item in value)
    return False


def _same_setting(parameter_default: Any, field_default: Any) -> bool:
    """A parameter default (YAML scalar) equals a Settings default once both are read as that field's type."""
    if isinstance(field_default, (int, float)) and not isinstance(field_default, bool):
        try:
            return float(parameter_default) == float(field_default)
        except ValueError:
            return False
    if isinstance(field_default, bool):
        return str(parameter_default).lower() == str(field_default).lower()
    return str(parameter_default) == str(field_default)


# Pseudo parameters as CloudFormation passes them, to evaluate a deploy offline.
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "claude-chat",
    "AWS::URLSuffix": "amazonaws.com",
}
_NO_VALUE = {"Ref": "AWS::NoValue"}


def _parameter_values(overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """Each parameter's value as CloudFormation passes it: a string (a list for a list type), defaults in."""
    values: dict[str, Any] = {}
    for name, declared in load_template(TEMPLATE)["Parameters"].items():
        value = str((overrides or {}).get(name, declared.get("Default", "")))
        values[name] = (
            [v.strip() for v in value.split(",")] if declared["Type"] == "CommaDelimitedList" else value
        )
    return values


def _evaluate(value: Any, conditions: dict[str, Any], values: dict[str, Any]) -> Any:
    """A template value as CloudFormation evaluates it for `values` (and PSEUDO): conditions decided;
    Fn::If, Fn::Sub, Fn::Join, Fn::Split, Fn::Select and each Ref to a parameter resolved; AWS::NoValue
    dropped. A Ref or Fn::GetAtt to a resource stays as it is (so does ${Resource} in a Fn::Sub)."""

    def evaluate(item: Any) -> Any:
        return _evaluate(item, conditions, values)

    if isinstance(value, list):
        return [item for item in map(evaluate, value) if item != _NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((function, arguments),) = value.items()
        if function == "Ref":
            return values.get(arguments, PSEUDO.get(arguments, value))
        if function == "Condition":
            return evaluate(conditions[arguments])
        if function == "Fn::If":
            name, when_true, when_false = arguments
            return evaluate(when_true if evaluate({"Condition": name}) else when_false)
        if function == "Fn::Equals":
            left, right = (v if isinstance(v, str) else json.dumps(v) for v in map(evaluate, arguments))
            return left == right
        if function in {"Fn::Not", "Fn::And", "Fn::Or"}:
            truths = [evaluate(argument) for argument in arguments]
            return {"Fn::Not": not truths[0], "Fn::And": all(truths), "Fn::Or": any(truths)}[function]
        if function == "Fn::Sub":
            text, names = (arguments, {}) if isinstance(arguments, str) else arguments
            names = {name: evaluate(item) for name, item in names.items()}

            def substitute(match: re.Match[str]) -> str:
                if match[1].startswith("!"):
                    return "${" + match[1][1:] + "}"
                found = names.get(match[1], values.get(match[1], PSEUDO.get(match[1])))
                return found if isinstance(found, str) else match[0]

            return re.sub(r"\$\{([^}]+)\}", substitute, text)
        if function == "Fn::Join":
            return arguments[0].join(evaluate(arguments[1]))
        if function == "Fn::Split":
            return evaluate(arguments[1]).split(arguments[0])
        if function == "Fn::Select":
            return evaluate(arguments[1])[int(arguments[0])]
    return {key: item for key, item in ((k, evaluate(v)) for k, v in value.items()) if item != _NO_VALUE}


def _created(document: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """What CloudFormation creates from a transformed template: the resources and outputs whose
    condition holds for `values`, without their Condition."""
    created = copy.deepcopy(document)
    conditions = document.get("Conditions", {})
    for section in ("Resources", "Outputs"):
        for name, entry in list(created.get(section, {}).items()):
            if "Condition" in entry:
                if _evaluate({"Condition": entry.pop("Condition")}, conditions, values):
                    continue
                del created[section][name]
    return created


# The API key secret's ARN: none on Bedrock; else the stack's own secret, or the operator's.
_API_KEY_SECRET = {
    "Fn::If": [
        "OnBedrock",
        {"Ref": "AWS::NoValue"},
        {
            "Fn::If": [
                "NoApiKeySecretArn",
                {"Ref": "AnthropicApiKeySecret"},
                {"Ref": "AnthropicApiKeySecretArn"},
            ]
        },
    ]
}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return copy.deepcopy(load_template(TEMPLATE))


@pytest.fixture(scope="module")
def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each AWS::Serverless::Function's Properties with Globals.Function merged in, as SAM does
    (local/template.py, which `make dev` reads too; test_globals_merge_as_sam_merges_them checks it)."""
    return function_properties(template)


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    return transformed_template(TEMPLATE)


# --------------------------------------------------------------------------- 1. sam validate --lint


def _with_provider_default(provider: str, directory: Path) -> Path:
    """template.yaml with ClaudeProvider defaulting to `provider` (sam validate takes no parameter values)."""
    if provider == "anthropic":
        return TEMPLATE
    text = TEMPLATE.read_text(encoding="utf-8")
    declared = "  ClaudeProvider:\n    Type: String\n    Default: anthropic\n"
    assert text.count(declared) == 1
    copy_ = directory / "template.yaml"
    copy_.write_text(text.replace(declared, declared.replace("anthropic", provider)), encoding="utf-8")
    return copy_


@pytest.mark.parametrize("provider", ["anthropic", "bedrock"])
def test_sam_validate_lint_passes(provider: str, tmp_path: Path) -> None:
    if not SAM.exists() and shutil.which("sam") is None:
        pytest.skip(f"SAM CLI not installed at {SAM} (the Makefile installs it into .venv-sam)")
    sam = str(SAM) if SAM.exists() else "sam"
    template = _with_provider_default(provider, tmp_path)
    result = subprocess.run(
        [sam, "validate", "--lint", "--region", "us-east-1", "--template-file", str(template)],
        capture_output=True,
        text=True,
        env=offline_env(),
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"sam validate --lint failed:\n{result.stdout}\n{result.stderr}"


# --------------------------------------------------------------------------- 2. transform + cfn-lint


def test_transformed_template_passes_cfn_lint() -> None:
    """cfn-lint on what the SAM transform makes of template.yaml, parameters still `Ref`s.

    AWS::LanguageExtensions, which runs first on deploy, only writes the values of parameters
    (which their own constraints check) into Resources; leaving it out lints the template for
    every parameter value, not for one deploy's.
    """
    from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]

    transformed = sam_only_transformed_template(TEMPLATE)
    matches = lint(json.dumps(transformed), config=ManualArgs(regions=["us-east-1"]))
    findings = [match for match in matches if match.rule.id[0] in {"E", "W"}]
    assert not findings, "cfn-lint on the transformed template:\n" + "\n".join(
        f"{match.rule.id} {match.message} at {'/'.join(map(str, match.path))}" for match in findings
    )


@pytest.mark.parametrize("profiles", [None, "two"])
def test_bedrock_deploy_passes_cfn_lint(profiles: str | None) -> None:
    """cfn-lint on what CloudFormation creates for ClaudeProvider=bedrock, its values written in:
    with BedrockModel alone (the default), and with BedrockModels listing two profiles."""
    from cfnlint.api import ManualArgs, lint

    overrides = {**BEDROCK, **({"BedrockModels": ",".join(TWO_PROFILES)} if profiles else {})}
    (bedrock,) = transformed_with_parameters([overrides])
    created = _created(bedrock, _parameter_values(overrides))
    matches = lint(json.dumps(created), config=ManualArgs(regions=["us-east-1"]))
    # With the values written in, parameters and conditions are left unused (W2001, W8001): by design.
    findings = [m for m in matches if m.rule.id[0] in {"E", "W"} and m.rule.id not in {"W2001", "W8001"}]
    assert not findings, "cfn-lint on the Bedrock deploy:\n" + "\n".join(
        f"{match.rule.id} {match.message} at {'/'.join(map(str, match.path))}" for match in findings
    )


def test_transform_grants_public_url_both_invoke_permissions(transformed: dict[str, Any]) -> None:
    """Since October 2025 a public URL needs lambda:InvokeFunctionUrl AND lambda:InvokeFunction.

    With AutoPublishAlias the URL, and both grants, belong to the `live` alias (the SnapStart
    version), not to $LATEST.
    """
    resources = transformed["Resources"]
    urls = {
        url["Properties"]["TargetFunctionArn"]["Ref"]: url["Properties"]
        for url in resources.values()
        if url["Type"] == "AWS::Lambda::Url"
    }
    aliases = {f"{function}Aliaslive": function for function in URL_FUNCTIONS}
    assert set(urls) == set(aliases)
    for alias, function in aliases.items():
        assert resources[alias]["Type"] == "AWS::Lambda::Alias"
        assert resources[alias]["Properties"]["FunctionName"] == {"Ref": function}
    permissions = [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::Permission"
    ]
    for alias in aliases:
        assert urls[alias]["AuthType"] == "NONE"
        granted = [p for p in permissions if p["FunctionName"] == {"Ref": alias} and p["Principal"] == "*"]
        assert any(
            p["Action"] == "lambda:InvokeFunctionUrl" and p.get("FunctionUrlAuthType") == "NONE"
            for p in granted
        ), f"{alias}: no public lambda:InvokeFunctionUrl permission"
        assert any(
            p["Action"] == "lambda:InvokeFunction" and p.get("InvokedViaFunctionUrl") is True for p in granted
        ), f"{alias}: no lambda:InvokeFunction permission limited to function URL calls"
    # Nothing grants the public a plain lambda:InvokeFunction usable outside the URL.
    assert not any(
        p["Principal"] == "*"
        and p["Action"] == "lambda:InvokeFunction"
        and p.get("InvokedViaFunctionUrl") is not True
        for p in permissions
    )


# X-Ray's write actions have no resource-level permissions: "*" is the only Resource they take.
_RESOURCE_WILDCARD_ONLY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
BEDROCK = {"ClaudeProvider": "bedrock"}
_BEDROCK_INVOKE = {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}
# The functions that call Claude; HistoryFunction never does.
CLAUDE_CALLERS = ["ChatFunction", "StreamFunction"]
HAIKU_US = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
TWO_PROFILES = [HAIKU_US, "global.anthropic.claude-sonnet-4-5-20250929-v1:0"]
# As many profiles as BedrockModels takes, of several geographies (a real list would name real ones).
EIGHT_PROFILES = [
    f"{geography}.anthropic.claude-{model}-v1:0"
    for geography, model in [
        ("us", "haiku-4-5-20251001"),
        ("us", "sonnet-4-5-20250929"),
        ("us", "opus-4-5-20251101"),
        ("global", "sonnet-4-5-20250929"),
        ("global", "opus-4-5-20251101"),
        ("eu", "haiku-4-5-20251001"),
        ("apac", "sonnet-4-20250514"),
        ("us-gov", "sonnet-4-5-20250929"),
    ]
]


def _profile_arn(profile: str) -> str:
    return f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{profile}"


def _model_arn(profile: str) -> str:
    """The profile's foundation model in any region: its id less the geography prefix."""
    return f"arn:aws:bedrock:*::foundation-model/{profile.split('.', 1)[1]}"


def _granted(document: dict[str, Any], values: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each role's statements in a deploy, evaluated (inline policies only: no managed policy)."""
    created = _created(document, values)
    resources = created["Resources"]
    conditions = document.get("Conditions", {})
    granted = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        role = _evaluate(resource["Properties"], conditions, values)
        assert not role.get("ManagedPolicyArns"), (
            f"{name} attaches managed policies {role['ManagedPolicyArns']}"
        )
        documents = [policy["PolicyDocument"] for policy in role["Policies"]]
        granted[name] = [statement for d in documents for statement in _as_list(d["Statement"])]
    return granted


def _through_listed_profiles(statement: dict[str, Any], resource: str) -> bool:
    """The one wildcard allowed: a foundation model in any region, reached only through listed profiles."""
    profiles = _as_list(
        statement.get("Condition", {}).get("StringEquals", {}).get("bedrock:InferenceProfileArn")
    )
    return (
        set(_as_list(statement["Action"])) <= _BEDROCK_INVOKE
        and re.fullmatch(
            r"arn:aws:bedrock:\*::foundation-model/anthropic\.claude-[a-z0-9-]+(:[0-9]+)?", resource
        )
        is not None
        and set(statement["Condition"]) == {"StringEquals"}
        and bool(profiles)
        and not any("*" in profile for profile in profiles)
    )


# The attachments bucket's object actions, each function's exactly (claude_chat.attachments): the
# upload route presigns POSTs (PutObject, and PutObjectTagging for their tag), turns read and tag
# files, the AI SDK route stores the files its body carried (PutObject with a tag), the history
# function presigns GETs and deletes a conversation's files.
_UPLOADS = "${AttachmentsBucket.Arn}/uploads/*"
S3_GRANTS = {
    "ChatFunction": {"s3:PutObject", "s3:PutObjectTagging", "s3:GetObject"},
    "StreamFunction": {"s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"},
    "HistoryFunction": {"s3:GetObject", "s3:DeleteObject"},
}


def _in_the_uploads_prefix(statement: dict[str, Any], resource: Any) -> bool:
    """An object action on the attachments bucket's uploads/ prefix: the one wildcard an object ARN
    needs (each caller's own prefix within it is the code's: attachments.object_key)."""
    actions = {str(action) for action in _as_list(statement["Action"])}
    return resource in (_UPLOADS, {"Fn::Sub": _UPLOADS}) and all(a.startswith("s3:") for a in actions)


@pytest.mark.parametrize("function", URL_FUNCTIONS)
def test_each_function_reaches_the_attachments_bucket_as_little_as_it_needs(
    template: dict[str, Any], function: str
) -> None:
    statements = _role_statements(template, function)
    s3 = [s for s in statements if _actions_of(s, "s3")]
    assert {a for s in s3 for a in _as_list(s["Action"])} == S3_GRANTS[function]
    assert all(_as_list(s["Resource"]) == [{"Fn::Sub": _UPLOADS}] for s in s3), s3
    assert not [s for s in s3 if "Condition" in s]


def test_attachments_bucket_is_private_encrypted_tls_only_and_expires_unused_uploads(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    bucket = resources["AttachmentsBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["UnusedUploads"]["TagFilters"] == [{"Key": "state", "Value": "pending"}]
    assert rules["UnusedUploads"]["ExpirationInDays"] == 1
    assert rules["KeptAttachments"]["ExpirationInDays"] == {"Ref": "AttachmentRetentionDays"}
    assert all(rule["Status"] == "Enabled" and rule["Prefix"] == "uploads/" for rule in rules.values())
    (cors,) = bucket["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedOrigins"] == {"Ref": "CorsAllowOrigins"}
    assert set(cors["AllowedMethods"]) == {"POST", "GET"}
    (deny,) = resources["AttachmentsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": False}}
    for name in URL_FUNCTIONS:
        variables = resources[name]["Properties"]["Environment"]["Variables"]
        assert variables["ATTACHMENTS_BUCKET"] == {"Ref": "AttachmentsBucket"}, name


@pytest.mark.parametrize("deploy", ["anthropic", "bedrock", "bedrock-two-profiles"])
def test_rendered_roles_are_least_privilege(deploy: str) -> None:
    """Every role of the deployed stack: no wildcard action, no wildcard resource, no AWS managed policy."""
    overrides = {
        "anthropic": {},
        "bedrock": BEDROCK,
        "bedrock-two-profiles": {**BEDROCK, "BedrockModels": ",".join(TWO_PROFILES)},
    }[deploy]
    (document,) = transformed_with_parameters([overrides])
    values = _parameter_values(overrides)
    roles = {n: r["Properties"] for n, r in document["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert set(roles) == {f"{function}Role" for function in URL_FUNCTIONS}
    for role in roles.values():
        trust = _as_list(role["AssumeRolePolicyDocument"]["Statement"])
        assert trust == [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    for name, statements in _granted(document, values).items():
        for statement in statements:
            assert statement["Effect"] == "Allow"
            assert "NotAction" not in statement and "NotResource" not in statement
            actions = [str(action) for action in _as_list(statement["Action"])]
            assert not [a for a in actions if "*" in a], f"{name} grants wildcard actions {actions}"
            resources = _as_list(statement["Resource"])
            if "*" in resources:
                assert set(actions) <= _RESOURCE_WILDCARD_ONLY, f"{name}: {actions} on every resource"
                continue
            for resource in resources:
                if isinstance(resource, str) and _through_listed_profiles(statement, resource):
                    continue
                if _in_the_uploads_prefix(statement, resource):
                    continue
                assert "*" not in json.dumps(resource), f"{name}: a wildcard in {resource}"


def test_each_role_writes_logs_only_to_its_own_group(transformed: dict[str, Any]) -> None:
    resources = transformed["Resources"]
    for function in URL_FUNCTIONS:
        role = resources[f"{function}Role"]["Properties"]
        statements = [s for p in role["Policies"] for s in _as_list(p["PolicyDocument"]["Statement"])]
        logs = [s for s in statements if _actions_of(s, "logs")]
        assert [set(_as_list(s["Action"])) for s in logs] == [{"logs:CreateLogStream", "logs:PutLogEvents"}]
        assert logs[0]["Resource"] == {"Fn::GetAtt": [f"{function}LogGroup", "Arn"]}
        function_properties = resources[function]["Properties"]
        assert function_properties["Role"] == {"Fn::GetAtt": [f"{function}Role", "Arn"]}
        assert function_properties["TracingConfig"] == {"Mode": "Active"}


# --------------------------------------------------------------------------- 3. structure


@pytest.mark.parametrize(
    ("parameter", "default"),
    [
        ("ClaudeProvider", "anthropic"),
        ("ClaudeModel", "claude-haiku-4-5"),
        ("BedrockModel", "us.anthropic.claude-haiku-4-5-20251001-v1:0"),
        ("MaxTokens", 1024),
        ("SystemPrompt", ""),
        ("HistoryMaxMessages", 20),
        ("MaxMessageChars", 16000),
        ("SessionTtlSeconds", 3600),
        ("SessionMaxAgeSeconds", 604800),
        ("RateLimitMax", 20),
        ("RateLimitWindowSeconds", 60),
        ("RateLimitIpv6Prefix", 56),
        ("CorsAllowOrigins", "*"),
        ("ClaudeTimeoutSeconds", 25),
        ("LogRetentionDays", 14),
        ("LogLevel", "INFO"),
        ("AnthropicApiKeySecretArn", ""),
        ("DailyTokenBudget", 200000),
        ("GlobalDailyTokenBudget", 10000000),
        ("ReservedConcurrency", 0),
        ("AlarmEmail", ""),
        ("SignIn", "none"),
        ("OidcIssuer", ""),
        ("OidcAudience", ""),
        ("OidcGroupsClaim", "cognito:groups"),
        ("GroupTokenBudgets", "{}"),
        ("ClaudeModels", ""),
        ("GroupModels", ""),
        ("BedrockModels", ""),
        ("ModelPrices", ""),
        ("DailyBudgetUsd", "1.00"),
        ("GroupBudgetsUsd", "{}"),
        ("GlobalDailyBudgetUsd", "50.00"),
        ("DailySpendAlarmUsd", "40.00"),
        ("DailyTokenAlarmThreshold", 0),
        ("PageCallbackUrls", "http://localhost:8080/"),
        ("HostedUiDomainPrefix", ""),
    ],
)
def test_parameter_defaults(template: dict[str, Any], parameter: str, default: Any) -> None:
    declared = template["Parameters"][parameter]
    assert declared["Default"] == default
    assert declared.get("Description")


def test_api_key_secret_is_an_existing_arn_or_one_the_stack_creates_empty(template: dict[str, Any]) -> None:
    declared = template["Parameters"]["AnthropicApiKeySecretArn"]
    pattern = re.compile(declared["AllowedPattern"])
    assert pattern.match("arn:aws:secretsmanager:us-east-1:123456789012:secret:claude-chat/anthropic-AbC123")
    assert pattern.match("")
    assert not pattern.match("sk-ant-api03-not-an-arn")
    assert template["Conditions"]["NoApiKeySecretArn"] == {
        "Fn::Equals": [{"Ref": "AnthropicApiKeySecretArn"}, ""]
    }
    # On Bedrock there is no key, so no secret either.
    assert template["Conditions"]["CreateApiKeySecret"] == {
        "Fn::And": [{"Condition": "NoApiKeySecretArn"}, {"Fn::Not": [{"Condition": "OnBedrock"}]}]
    }
    created = template["Resources"]["AnthropicApiKeySecret"]
    assert created["Condition"] == "CreateApiKeySecret"
    # No value in the template: the key is stored by the operator, never in a file or a parameter.
    assert not {"SecretString", "GenerateSecretString"} & set(created["Properties"])
    command = template["Outputs"]["AnthropicApiKeySecret"]["Value"]["Fn::Sub"]
    assert command.startswith("aws secretsmanager put-secret-value --secret-id ${AnthropicApiKeySecret} ")
    assert template["Parameters"]["CorsAllowOrigins"]["Type"] == "CommaDelimitedList"


def test_functions_are_python313_on_arm64_with_the_shared_layer(functions: dict[str, dict[str, Any]]) -> None:
    assert set(functions) == set(URL_FUNCTIONS)
    for name, properties in functions.items():
        assert properties["Runtime"] == "python3.13", name
        assert properties["Architectures"] == ["arm64"], name
        assert {"Ref": "SharedLayer"} in properties["Layers"], name
        assert (ROOT / properties["CodeUri"] / "app.py").exists(), name
        if name in BUFFERED_FUNCTIONS:
            assert properties["Handler"] == "app.lambda_handler", name
            assert properties["Timeout"] <= 30, name


def test_stream_function_streams_through_the_pinned_web_adapter(
    template: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    stream = functions["StreamFunction"]
    assert stream["FunctionUrlConfig"]["InvokeMode"] == "RESPONSE_STREAM"
    assert stream["Handler"] == "run.sh"
    run_sh = ROOT / stream["CodeUri"] / "run.sh"
    assert os.access(run_sh, os.X_OK)
    variables = stream["Environment"]["Variables"]
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert variables["AWS_LWA_PORT"] != "8080"
    assert f'--port "${{AWS_LWA_PORT:-{variables["AWS_LWA_PORT"]}}}"' in run_sh.read_text()
    assert variables["AWS_LWA_READINESS_CHECK_PATH"] == "/healthz"
    assert "AWS_LWA_ENABLE_COMPRESSION" not in variables  # compression would buffer
    adapter = [layer for layer in stream["Layers"] if layer != {"Ref": "SharedLayer"}]
    layer_arn = "arn:aws:lambda:${AWS::Region}:753240598075:layer:LambdaAdapterLayerArm64:"
    assert adapter == [{"Fn::Sub": layer_arn + "${WebAdapterLayerVersion}"}]
    # Layer 30 is Web Adapter 1.1.0, the first with SnapStart hooks (29 was a release it withdrew).
    assert template["Parameters"]["WebAdapterLayerVersion"]["Default"] == 30
    assert template["Parameters"]["WebAdapterLayerVersion"]["MinValue"] == 30
    assert stream["Timeout"] == {"Ref": "StreamTimeoutSeconds"}
    assert template["Parameters"]["StreamTimeoutSeconds"]["Default"] <= 60
    assert template["Parameters"]["MaxTokens"]["Default"] <= 4096


def test_shared_layer_is_built_for_python313_arm64_by_its_makefile(template: dict[str, Any]) -> None:
    layer = template["Resources"]["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["ContentUri"] == "layers/shared"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    makefile = LAYER_MAKEFILE.read_text(encoding="utf-8")
    assert re.search(r"^build-SharedLayer:", makefile, re.MULTILINE)
    for flag in (
        "--platform manylinux2014_aarch64",
        "--python-version 3.13",
        "--only-binary=:all:",
        "--no-compile",
    ):
        assert flag in makefile


@pytest.mark.parametrize("function", sorted(URL_FUNCTIONS))
def test_function_url_is_public_with_cors_from_the_parameter(
    functions: dict[str, dict[str, Any]], function: str
) -> None:
    url = functions[function]["FunctionUrlConfig"]
    assert url["AuthType"] == "NONE"
    assert url.get("InvokeMode", "BUFFERED") == (
        "RESPONSE_STREAM" if function == "StreamFunction" else "BUFFERED"
    )
    cors = url["Cors"]
    assert cors["AllowOrigins"] == {"Ref": "CorsAllowOrigins"}
    assert cors["AllowMethods"] == URL_FUNCTIONS[function]
    # authorization: a signed-in caller's Bearer token (SignIn); a preflight without it fails.
    assert {"content-type", "x-session-id", "authorization"} <= set(cors["AllowHeaders"])
    assert "x-session-id" in cors["ExposeHeaders"]
    assert {"ratelimit", "ratelimit-policy", "retry-after"} <= set(cors["ExposeHeaders"])
    # The stream names its turn in x-turn-id; the page needs it to ask for a stop.
    assert ("x-turn-id" in cors["ExposeHeaders"]) is (function == "StreamFunction")
    assert ("content-disposition" in cors["ExposeHeaders"]) is (function == "HistoryFunction")
    assert not cors.get("AllowCredentials"), "credentials with a wildcard origin are refused by browsers"


def test_environment_wires_settings_and_secrets(functions: dict[str, dict[str, Any]]) -> None:
    for name, properties in functions.items():
        variables = properties["Environment"]["Variables"]
        assert variables["TABLE_NAME"] == {"Ref": "ChatTable"}, name
        assert variables["SESSION_SECRET_ARN"] == {"Ref": "SessionSigningSecret"}, name
        assert variables["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}, name
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "ClaudeChat", name
        assert variables["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}, name
    api_key_secret = _API_KEY_SECRET
    for name in ("ChatFunction", "StreamFunction"):
        assert functions[name]["Environment"]["Variables"]["ANTHROPIC_API_KEY_SECRET_ARN"] == api_key_secret
    assert "ANTHROPIC_API_KEY_SECRET_ARN" not in functions["HistoryFunction"]["Environment"]["Variables"]
    for properties in functions.values():
        for variable in properties["Environment"]["Variables"]:
            # Secrets travel by ARN only: no variable carries a key or a signing secret itself.
            assert variable.endswith("_ARN") or not re.search(r"_KEY$|SECRET$|_TOKEN$|PASSWORD$", variable), (
                variable
            )
    for properties in functions.values():
        for value in properties["Environment"]["Variables"].values():
            assert not (isinstance(value, str) and value.startswith("sk-")), "a key in plain text"


def test_environment_matches_the_layer_settings(template: dict[str, Any], functions: dict[str, Any]) -> None:
    """Every app variable is a Settings field, and each parameter default is that field's default."""
    from claude_chat.settings import Settings

    fields = Settings.model_fields
    parameters = template["Parameters"]
    for properties in functions.values():
        for variable, value in properties["Environment"]["Variables"].items():
            if variable.startswith("POWERTOOLS_") or variable in ADAPTER_VARIABLES:
                continue
            assert variable.lower() in fields, f"{variable} is read by no Settings field"
            if isinstance(value, dict) and "Ref" in value and value["Ref"] in parameters:
                default = parameters[value["Ref"]].get("Default")
                expected = fields[variable.lower()].default
                if default is not None and isinstance(expected, (int, float, str)):
                    assert _same_setting(default, expected), (
                        f"{value['Ref']} defaults to {default!r}, Settings.{variable.lower()} to {expected!r}"
                    )


# Models by choice and budgets in money: each variable comes from its parameter, in every function.
MODELS_AND_MONEY = {
    "CLAUDE_MODELS": "ClaudeModels",
    "GROUP_MODELS": "GroupModels",
    "MODEL_PRICES": "ModelPrices",
    "DAILY_BUDGET_USD": "DailyBudgetUsd",
    "GROUP_BUDGETS_USD": "GroupBudgetsUsd",
    "GLOBAL_DAILY_BUDGET_USD": "GlobalDailyBudgetUsd",
}
MODELS_AND_MONEY_VALUES = {
    "ClaudeModels": "claude-haiku-4-5,claude-sonnet-4-5",
    "GroupModels": "pro=claude-sonnet-4-5,pro=claude-opus-4-5,staff=claude-opus-4-5",
    "ModelPrices": '{"claude-haiku-4-5": {"input": 1, "output": 5, "cache_write": 1.25, "cache_write_1h": 2,'
    ' "cache_read": 0.1, "web_search": 0.01}}',
    "DailyBudgetUsd": "2.50",
    "GroupBudgetsUsd": '{"pro": 10, "staff": 0}',
    "GlobalDailyBudgetUsd": "120.00",
}


def test_model_and_money_parameters_reach_every_function(functions: dict[str, Any]) -> None:
    """Wired like the token budgets (in each function's own Environment, not Globals), and deployed
    as given, with either provider."""
    for name in URL_FUNCTIONS:
        variables = functions[name]["Environment"]["Variables"]
        for variable, parameter in MODELS_AND_MONEY.items():
            assert variables[variable] == {"Ref": parameter}, (name, variable)
        assert variables["BEDROCK_MODELS"] == {
            "Fn::If": [
                "OnBedrock",
                {"Fn::If": ["HasBedrockModels", {"Ref": "BedrockModels"}, {"Ref": "BedrockModel"}]},
                _NO_VALUE,
            ]
        }, name
    overrides = [MODELS_AND_MONEY_VALUES, {**MODELS_AND_MONEY_VALUES, **BEDROCK}]
    for document in transformed_with_parameters(overrides):
        for name in URL_FUNCTIONS:
            variables = document["Resources"][name]["Properties"]["Environment"]["Variables"]
            for variable, parameter in MODELS_AND_MONEY.items():
                assert variables[variable] == MODELS_AND_MONEY_VALUES[parameter], (name, variable)


def test_model_and_money_parameters_accept_real_values_and_refuse_bad_ones(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]

    def pattern(name: str) -> re.Pattern[str]:
        return re.compile(parameters[name]["AllowedPattern"].strip())

    accepted = {
        "ClaudeModels": [
            "",
            "claude-haiku-4-5",
            "claude-haiku-4-5,claude-sonnet-4-5",
            ",".join(TWO_PROFILES),
        ],
        "GroupModels": [
            "",
            "pro=claude-sonnet-4-5",
            MODELS_AND_MONEY_VALUES["GroupModels"],
            f"pro={TWO_PROFILES[1]},beta-testers={HAIKU_US}",
        ],
        "ModelPrices": ["", "{}", MODELS_AND_MONEY_VALUES["ModelPrices"]],
        "GroupBudgetsUsd": ["{}", MODELS_AND_MONEY_VALUES["GroupBudgetsUsd"]],
    }
    refused = {
        "ClaudeModels": [
            "claude-haiku-4-5, claude-sonnet-4-5",
            ",claude-haiku-4-5",
            "claude-haiku-4-5,",
            "a,,b",
        ],
        "GroupModels": ["pro", "pro=", "=claude-sonnet-4-5", "pro=a=b", "pro=a, pro=b", '{"pro": "claude"}'],
        "ModelPrices": ["[]", "claude-haiku-4-5=1"],
        "GroupBudgetsUsd": ["pro=10", "[]"],
    }
    for name, values in accepted.items():
        for value in values:
            assert pattern(name).fullmatch(value), (name, value)
    for name, values in refused.items():
        for value in values:
            assert not pattern(name).fullmatch(value), (name, value)
    # The examples the descriptions give are what the code reads.
    example = re.search(r"e\.g\. (\{.*\}\})", " ".join(parameters["ModelPrices"]["Description"].split()))
    assert example and pattern("ModelPrices").fullmatch(example[1])
    assert set(json.loads(example[1])["claude-haiku-4-5"]) == {
        "input",
        "output",
        "cache_write",
        "cache_write_1h",
        "cache_read",
        "web_search",
    }
    for name in ("DailyBudgetUsd", "GlobalDailyBudgetUsd", "DailySpendAlarmUsd", "DailyTokenAlarmThreshold"):
        assert parameters[name]["Type"] == "Number" and parameters[name]["MinValue"] == 0, name
    # The alarm warns before the global budget turns everyone away.
    assert float(parameters["DailySpendAlarmUsd"]["Default"]) < float(
        parameters["GlobalDailyBudgetUsd"]["Default"]
    )


def test_claude_timeout_fits_inside_the_function_timeout(
    template: dict[str, Any], functions: dict[str, Any]
) -> None:
    limit = template["Parameters"]["ClaudeTimeoutSeconds"]["MaxValue"]
    assert all(limit < functions[name]["Timeout"] for name in BUFFERED_FUNCTIONS)
    assert limit < template["Parameters"]["StreamTimeoutSeconds"]["MinValue"] + 20


def test_table_keys_ttl_and_protection(template: dict[str, Any]) -> None:
    tables = {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"}
    assert list(tables) == ["ChatTable"]
    properties = tables["ChatTable"]["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert sorted(properties["AttributeDefinitions"], key=lambda d: d["AttributeName"]) == [
        {"AttributeName": "owner", "AttributeType": "S"},
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
        {"AttributeName": "updated_at", "AttributeType": "N"},
    ]
    # The conversation list: newest first per owner, projecting only what the list shows (so the
    # writes that slide an expiry, or save a turn's text, never copy message text into the index).
    (index,) = properties["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "ByOwnerModel"
    assert index["KeySchema"] == [
        {"AttributeName": "owner", "KeyType": "HASH"},
        {"AttributeName": "updated_at", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["cid", "turns", "title", "auto_title", "model"],
    }
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    # The local dev server creates its table from these very properties.
    for key in (
        "KeySchema",
        "AttributeDefinitions",
        "GlobalSecondaryIndexes",
        "TimeToLiveSpecification",
        "BillingMode",
    ):
        assert not _has_intrinsic(properties[key]), key


def _grants(actions: set[str], leading_keys: set[str], on: str = "table") -> set[tuple[str, str, str]]:
    return {(action, key, on) for action in actions for key in leading_keys}


# A turn: its conversation read, checked by the admission transaction (ConditionCheckItem), saved, a
# replaced turn deleted; the budget counters only updated (admission and settlement, never put or
# deleted), the request window read for the headers, the global shards read when one is full.
_TURN_GRANTS = (
    _grants(
        {
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
        },
        {"S#*"},
    )
    | _grants({"dynamodb:UpdateItem"}, {"RL#*", "TB#*", "GB#*"})
    | _grants({"dynamodb:GetItem"}, {"RL#*"})
    | _grants({"dynamodb:BatchGetItem"}, {"GB#*"})
)


# What a statement's Resource may be: the table, or its ByOwnerModel index (the conversation list).
_RESOURCES = {
    json.dumps({"Fn::GetAtt": ["ChatTable", "Arn"]}): "table",
    json.dumps({"Fn::Sub": "${ChatTable.Arn}/index/ByOwnerModel"}): "ByOwnerModel",
}


# Key prefixes: S# sessions, RL# rate-limit windows, TB# per-client and GB# global token budgets,
# SP# stop flags (written by the stream function's stop route, read while a reply streams).
# Each role's DynamoDB grants as (action, leading key) pairs: an action reaches only the key
# prefixes listed with it, however the template groups them into statements.
@pytest.mark.parametrize(
    ("function", "dynamodb_grants", "readable_secrets"),
    [
        (
            "ChatFunction",
            _TURN_GRANTS,
            [_API_KEY_SECRET, {"Ref": "SessionSigningSecret"}],
        ),
        (
            "StreamFunction",
            _TURN_GRANTS | _grants({"dynamodb:PutItem", "dynamodb:GetItem"}, {"SP#*"}),
            [_API_KEY_SECRET, {"Ref": "SessionSigningSecret"}],
        ),
        (
            # Sessions: read, extend, delete. GET /api/usage: read (never write) the caller's
            # request window and day counter.
            "HistoryFunction",
            _grants({"dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"}, {"S#*"})
            | _grants({"dynamodb:Query"}, {"S#*"}, on="ByOwnerModel")
            | _grants({"dynamodb:GetItem"}, {"RL#*", "TB#*"}),
            [{"Ref": "SessionSigningSecret"}],
        ),
    ],
)
def test_function_policies_are_least_privilege(
    template: dict[str, Any],
    function: str,
    dynamodb_grants: set[tuple[str, str]],
    readable_secrets: list[Any],
) -> None:
    role = template["Resources"][f"{function}Role"]["Properties"]
    statements = [s for p in role["Policies"] for s in _as_list(p["PolicyDocument"]["Statement"])]
    dynamodb = [s for s in statements if _actions_of(s, "dynamodb")]
    assert dynamodb, function
    granted = set()
    for statement in dynamodb:
        actions = set(_as_list(statement["Action"]))
        assert not any("*" in action for action in actions), actions
        assert "dynamodb:Scan" not in actions
        resources = _as_list(statement["Resource"])
        assert len(resources) == 1 and json.dumps(resources[0]) in _RESOURCES, resources
        on = _RESOURCES[json.dumps(resources[0])]
        # ForAllValues: every key the request touches must match; no other condition operator
        # (ForAnyValue would let one matching key carry others along).
        assert set(statement["Condition"]) == {"ForAllValues:StringLike"}
        condition = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        granted |= _grants(actions, set(_as_list(condition)), on)
    # Exactly what the function's code uses: nothing it never calls (no Scan, no GetItem where the
    # code only queries), on no key prefix it never touches.
    assert granted == dynamodb_grants, (
        f"extra {sorted(granted - dynamodb_grants)}, missing {sorted(dynamodb_grants - granted)}"
    )
    secrets = [s for s in statements if _actions_of(s, "secretsmanager")]
    assert {a for s in secrets for a in _as_list(s["Action"])} == {"secretsmanager:GetSecretValue"}
    granted_secrets = [r for s in secrets for r in _as_list(s["Resource"])]
    assert sorted(map(json.dumps, granted_secrets)) == sorted(map(json.dumps, readable_secrets))


def _role_statements(document: dict[str, Any], function: str) -> list[dict[str, Any]]:
    role = document["Resources"][f"{function}Role"]["Properties"]
    return [s for p in role["Policies"] for s in _as_list(p["PolicyDocument"]["Statement"])]


# Each case: BedrockModel and BedrockModels as a deploy sets them, and the profiles the roles may then
# invoke. A stack deployed with today's parameters (BedrockModel alone) keeps exactly its one profile.
BEDROCK_GRANTS = {
    "default": ({}, [HAIKU_US]),
    "BedrockModel": (
        {"BedrockModel": "eu.anthropic.claude-haiku-4-5-20251001-v1:0"},
        ["eu.anthropic.claude-haiku-4-5-20251001-v1:0"],
    ),
    "two": ({"BedrockModels": ",".join(TWO_PROFILES)}, TWO_PROFILES),
    "eight": ({"BedrockModels": ",".join(EIGHT_PROFILES)}, EIGHT_PROFILES),
}


def test_bedrock_roles_invoke_exactly_the_listed_profiles_and_their_models() -> None:
    """After both transforms, in both provider modes: on Bedrock the chat and stream roles may invoke
    exactly the stack's profiles (BedrockModels, or BedrockModel alone), and each profile's foundation
    model only through one of them; BEDROCK_MODELS tells the code that same list. With the Anthropic
    API, whatever these parameters say, nothing on Bedrock is granted and no policy exists for it."""
    cases = [
        (provider, name, {**provider_overrides, **overrides}, profiles)
        for provider, provider_overrides in (("anthropic", {}), ("bedrock", BEDROCK))
        for name, (overrides, profiles) in BEDROCK_GRANTS.items()
    ]
    documents = transformed_with_parameters([overrides for _, _, overrides, _ in cases])
    failures = []
    for (provider, name, overrides, profiles), document in zip(cases, documents, strict=True):
        values = _parameter_values(overrides)
        created = _created(document, values)
        granted = _granted(document, values)
        conditions = document["Conditions"]
        for function in URL_FUNCTIONS:
            variables = _evaluate(
                created["Resources"][function]["Properties"]["Environment"]["Variables"], conditions, values
            )
            invoke = [s for s in granted[f"{function}Role"] if _actions_of(s, "bedrock")]
            expected_model = values["BedrockModel"] if provider == "bedrock" else values["ClaudeModel"]
            if variables["CLAUDE_MODEL"] != expected_model:
                failures.append(f"{provider}/{name} {function}: CLAUDE_MODEL {variables['CLAUDE_MODEL']}")
            if provider == "anthropic" or function not in CLAUDE_CALLERS:
                if invoke:
                    failures.append(f"{provider}/{name} {function}: may invoke {invoke}")
                if provider == "anthropic" and "BEDROCK_MODELS" in variables:
                    failures.append(f"{provider}/{name}: BEDROCK_MODELS without Bedrock")
                if provider == "bedrock" and variables.get("BEDROCK_MODELS") != ",".join(profiles):
                    failures.append(
                        f"{provider}/{name} {function}: BEDROCK_MODELS {variables.get('BEDROCK_MODELS')}"
                    )
                continue
            if variables.get("BEDROCK_MODELS") != ",".join(profiles):
                failures.append(
                    f"{provider}/{name} {function}: BEDROCK_MODELS {variables.get('BEDROCK_MODELS')}"
                )
            expected = [
                {
                    "Sid": "InvokeTheInferenceProfiles",
                    "Effect": "Allow",
                    "Action": sorted(_BEDROCK_INVOKE),
                    "Resource": [_profile_arn(profile) for profile in profiles],
                },
                {
                    "Sid": "InvokeTheirModelsThroughTheProfiles",
                    "Effect": "Allow",
                    "Action": sorted(_BEDROCK_INVOKE),
                    "Resource": [_model_arn(profile) for profile in profiles],
                    "Condition": {
                        "StringEquals": {"bedrock:InferenceProfileArn": [_profile_arn(p) for p in profiles]}
                    },
                },
            ]
            if invoke != expected:
                failures.append(f"{provider}/{name} {function}: grants\n{json.dumps(invoke, indent=1)}")
    assert not failures, "\n".join(failures)


def test_bedrock_policy_fits_iam_with_the_most_profiles() -> None:
    """Eight profiles (BedrockModels' most) still fit a role's inline policies (10,240 characters
    together, spaces aside), and no key exists on Bedrock."""
    overrides = {**BEDROCK, "BedrockModels": ",".join(EIGHT_PROFILES)}
    (document,) = transformed_with_parameters([overrides])
    values = _parameter_values(overrides)
    created = _created(document, values)
    for function in URL_FUNCTIONS:
        role = _evaluate(
            created["Resources"][f"{function}Role"]["Properties"], document["Conditions"], values
        )
        inline = [json.dumps(policy["PolicyDocument"], separators=(",", ":")) for policy in role["Policies"]]
        # Refs to the stack's resources become ARNs of about the same length as their JSON here.
        assert sum(map(len, inline)) <= 10240 - 1024, function
        assert created["Resources"][function]["Properties"]["Role"] == {
            "Fn::GetAtt": [f"{function}Role", "Arn"]
        }
        statements = _role_statements(created, function)
        secrets = [r for s in statements if _actions_of(s, "secretsmanager") for r in _as_list(s["Resource"])]
        assert secrets == [{"Ref": "SessionSigningSecret"}], function
        variables = created["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["CLAUDE_PROVIDER"] == "bedrock" and "ANTHROPIC_API_KEY_SECRET_ARN" not in variables
    assert "AnthropicApiKeySecret" not in created["Resources"]
    assert "AnthropicApiKeySecret" not in created["Outputs"]
    (anthropic,) = transformed_with_parameters([{}])
    assert "AnthropicApiKeySecret" in _created(anthropic, _parameter_values())["Resources"]


def test_bedrock_model_parameters_accept_profiles_only() -> None:
    parameters = load_template(TEMPLATE)["Parameters"]
    one = re.compile(parameters["BedrockModel"]["AllowedPattern"])
    many = re.compile(parameters["BedrockModels"]["AllowedPattern"].strip())
    for good in (HAIKU_US, "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", *TWO_PROFILES, *EIGHT_PROFILES):
        assert one.fullmatch(good), good
        assert many.fullmatch(good), good
    assert (
        many.fullmatch("")
        and many.fullmatch(",".join(TWO_PROFILES))
        and many.fullmatch(",".join(EIGHT_PROFILES))
    )
    # A bare model id, an Anthropic API alias or a dotted name would make a wrong foundation-model ARN.
    for bad in ("anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5", "us.anthropic.claude.x-v1:0"):
        assert not one.fullmatch(bad), bad
        assert not many.fullmatch(bad), bad
    # More than 8 (the policy grants 8 entries), spaces, empty items: refused before any change.
    for bad in (
        ",".join([*EIGHT_PROFILES, HAIKU_US]),
        ", ".join(TWO_PROFILES),
        f"{HAIKU_US},",
        f",{HAIKU_US}",
        f"{HAIKU_US},,{TWO_PROFILES[1]}",
    ):
        assert not many.fullmatch(bad), bad
    assert parameters["BedrockModels"]["Type"] == "String"
    # Each role's policy has one entry per possible profile: as many as the pattern allows.
    resources = load_template(TEMPLATE)["Resources"]
    for function in CLAUDE_CALLERS:
        invoke = [s for s in _role_statements(load_template(TEMPLATE), function) if "Fn::If" in s]
        assert [s["Fn::If"][0] for s in invoke] == ["OnBedrock", "OnBedrock"], function
        for statement in (s["Fn::If"][1] for s in invoke):
            assert len(statement["Resource"]) == 8, function
            if "Condition" in statement:
                assert len(statement["Condition"]["StringEquals"]["bedrock:InferenceProfileArn"]) == 8
    assert (
        resources["ChatFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][-2:]
        == (resources["StreamFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][-2:])
    )


def test_provider_parameter_changes_publish_what_they_reach() -> None:
    """From ClaudeProvider=bedrock: its models publish all three; the Anthropic API's settings none."""
    changes = {
        "BedrockModel": ({"BedrockModel": "eu.anthropic.claude-haiku-4-5-20251001-v1:0"}, set(URL_FUNCTIONS)),
        "BedrockModels": ({"BedrockModels": ",".join(TWO_PROFILES)}, set(URL_FUNCTIONS)),
        "ClaudeModels": ({"ClaudeModels": ",".join(TWO_PROFILES)}, set(URL_FUNCTIONS)),
        "ClaudeModel": ({"ClaudeModel": "claude-sonnet-4-5"}, set()),
        "AnthropicApiKeySecretArn": (
            {"AnthropicApiKeySecretArn": CHANGED_VALUES["AnthropicApiKeySecretArn"]},
            set(),
        ),
        "ClaudeProvider=anthropic": ({"ClaudeProvider": "anthropic"}, set(URL_FUNCTIONS)),
    }
    baseline, *documents = transformed_with_parameters(
        [BEDROCK] + [{**BEDROCK, **overrides} for overrides, _ in changes.values()]
    )
    failures = []
    for (name, (_, expected)), document in zip(changes.items(), documents, strict=True):
        before, after = _versions(baseline), _versions(document)
        published = {f for f in URL_FUNCTIONS if after[f] != before[f]}
        changed = {f for f in URL_FUNCTIONS if document["Resources"][f] != baseline["Resources"][f]}
        if published != expected or changed != expected:
            failures.append(f"{name}: publishes {sorted(published)}, changes {sorted(changed)}")
    assert not failures, "\n".join(failures)


def test_session_secret_is_generated(template: dict[str, Any]) -> None:
    secret = template["Resources"]["SessionSigningSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    generate = secret["Properties"]["GenerateSecretString"]
    assert generate["PasswordLength"] == 64
    assert generate["ExcludePunctuation"] is True
    assert "SecretString" not in secret["Properties"]


@pytest.mark.parametrize("function", sorted(URL_FUNCTIONS))
def test_each_function_logs_to_its_own_retained_group(
    template: dict[str, Any], functions: dict[str, Any], function: str
) -> None:
    logging_config = functions[function]["LoggingConfig"]
    group_name = logging_config["LogGroup"]["Ref"]
    group = template["Resources"][group_name]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    function_name = functions[function]["FunctionName"]["Fn::Sub"]
    assert group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/{function_name}"}
    assert logging_config["LogFormat"] in {"JSON", "Text"}


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["ChatUrl"]["Value"] == {"Fn::GetAtt": ["ChatFunctionUrl", "FunctionUrl"]}
    assert outputs["HistoryUrl"]["Value"] == {"Fn::GetAtt": ["HistoryFunctionUrl", "FunctionUrl"]}
    assert outputs["TableName"]["Value"] == {"Ref": "ChatTable"}


def test_samconfig_defaults_and_no_secrets() -> None:
    text = SAMCONFIG.read_text(encoding="utf-8")
    config = tomllib.loads(text)
    assert config["version"] == 0.1
    default = config["default"]
    assert default["validate"]["parameters"]["lint"] is True
    deploy = default["deploy"]["parameters"]
    assert deploy["stack_name"] == "claude-chat"
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True
    assert deploy["region"] == "us-east-1"
    assert "parameter_overrides" not in deploy
    assert not re.search(r"sk-ant-|aws_secret_access_key|AKIA[0-9A-Z]{16}", text, re.IGNORECASE)


def test_samconfig_prod_deploys_unattended_with_cost_guards(template: dict[str, Any]) -> None:
    prod = tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))["prod"]["deploy"]["parameters"]
    assert prod["stack_name"] != "claude-chat"  # never the developer's stack
    assert prod["confirm_changeset"] is False
    assert prod["resolve_s3"] is True
    overrides = dict(re.findall(r'(\w+)="([^"]*)"', prod["parameter_overrides"]))
    assert set(overrides) <= set(template["Parameters"])
    # Reserving concurrency fails on an account whose limit leaves less than 100 unreserved
    # (new accounts may have 10): prod reserves nothing unless the operator opts in.
    assert int(overrides.get("ReservedConcurrency", "0")) == 0
    assert int(overrides["DailyTokenBudget"]) > 0
    assert int(overrides["GlobalDailyTokenBudget"]) > 0
    assert float(overrides["DailyBudgetUsd"]) > 0
    assert float(overrides["GlobalDailyBudgetUsd"]) > 0
    # Every parameter the template requires has a default, so nothing prompts in CI.
    assert all("Default" in declared for declared in template["Parameters"].values())


def test_samconfig_prod_stays_anonymous_with_a_sign_in_example_that_parses(template: dict[str, Any]) -> None:
    """prod deploys anonymous; its commented Cognito line, uncommented, is what SAM CLI would read."""
    text = SAMCONFIG.read_text(encoding="utf-8")
    prod = tomllib.loads(text)["prod"]["deploy"]["parameters"]
    assert "SignIn" not in prod["parameter_overrides"]
    (example,) = [line[2:] for line in text.splitlines() if line.startswith("# parameter_overrides = ")]
    overrides = tomllib.loads(example)["parameter_overrides"]
    if not (SAM_VENV_BIN / "python").exists():
        pytest.skip("SAM CLI not installed in .venv-sam: its parser reads the example")
    parsed = subprocess.run(
        [
            str(SAM_VENV_BIN / "python"),
            "-c",
            "import json, sys; from samcli.cli.types import CfnParameterOverridesType as T; "
            "print(json.dumps(T().convert((sys.argv[1],), None, None)))",
            overrides,
        ],
        capture_output=True,
        text=True,
        env=offline_env(),
        timeout=60,
        check=True,
    )
    values = json.loads(parsed.stdout)
    assert set(values) <= set(template["Parameters"])
    assert values["SignIn"] == "cognito"
    assert json.loads(values["GroupTokenBudgets"]) == {"pro": 2000000}
    assert re.fullmatch(
        template["Parameters"]["GroupTokenBudgets"]["AllowedPattern"], values["GroupTokenBudgets"]
    )
    assert values["PageCallbackUrls"].startswith("https://")
    # The rest of prod's settings are the same as on the live line.
    live = dict(re.findall(r'(\w+)="([^"]*)"', prod["parameter_overrides"]))
    assert {k: values[k] for k in live} == live


def test_readme_sign_in_deploy_commands_give_valid_parameters(template: dict[str, Any]) -> None:
    """Each `sam deploy --parameter-overrides` of README's Sign-in, as the shell and SAM CLI read it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Sign-in") :]
    commands = re.findall(
        r"^\.venv-sam/bin/sam deploy --parameter-overrides (.+?)(?<!\\)\n", section, re.M | re.S
    )
    assert len(commands) == 2, commands
    if not (SAM_VENV_BIN / "python").exists():
        pytest.skip("SAM CLI not installed in .venv-sam: its parser reads the commands")
    modes = set()
    for command in commands:
        arguments = shlex.split(command.replace("\\\n", " "))
        parsed = subprocess.run(
            [
                str(SAM_VENV_BIN / "python"),
                "-c",
                "import json, sys; from samcli.cli.types import CfnParameterOverridesType as T; "
                "print(json.dumps(T().convert(tuple(sys.argv[1:]), None, None)))",
                *arguments,
            ],
            capture_output=True,
            text=True,
            env=offline_env(),
            timeout=60,
            check=True,
        )
        values = json.loads(parsed.stdout)
        assert len(values) == len(arguments), (arguments, values)
        for name, value in values.items():
            declared = template["Parameters"][name]
            if "AllowedPattern" in declared:
                assert re.fullmatch(declared["AllowedPattern"], value), (name, value)
            if "AllowedValues" in declared:
                assert value in declared["AllowedValues"], (name, value)
        assert json.loads(values["GroupTokenBudgets"]) == {"pro": 2000000}
        modes.add(values["SignIn"])
        if values["SignIn"] == "issuer":
            assert values["OidcIssuer"] and values["OidcAudience"]  # what the template's Rules demand
    assert modes == {"cognito", "issuer"}


def test_snapstart_on_published_versions_of_every_function(functions: dict[str, Any]) -> None:
    for name in URL_FUNCTIONS:
        assert functions[name]["SnapStart"] == {"ApplyOn": "PublishedVersions"}, name
    # The stream app learns of the snapshot only through the Web Adapter's hooks (1.1.0+), at the
    # paths its app serves them on (functions/stream/app.py, which refuses them to clients).
    source = (ROOT / functions["StreamFunction"]["CodeUri"] / "app.py").read_text(encoding="utf-8")
    constants = r'^(BEFORE_CHECKPOINT_PATH|AFTER_RESTORE_PATH) = "([^"]+)"$'
    served = dict(re.findall(constants, source, re.MULTILINE))
    variables = functions["StreamFunction"]["Environment"]["Variables"]
    assert variables["AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH"] == served["BEFORE_CHECKPOINT_PATH"]
    assert variables["AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH"] == served["AFTER_RESTORE_PATH"]
    for path in served.values():
        assert not path.startswith("/api/"), "no hook among the routes a page calls"
    for name, properties in functions.items():
        assert properties["AutoPublishAlias"] == "live", name
        assert properties["AutoPublishAliasAllProperties"] is True, name
        assert properties["VersionDeletionPolicy"] == "Delete", name
        assert properties["ReservedConcurrentExecutions"] == {
            "Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
        }, name


# --------------------------------------------------------------------------- deploys reach the alias

# Parameters that reach no function's configuration. Their change must not publish a version:
# Lambda publishes nothing for an unchanged function, and the deploy would fail on it.
REACHES_NO_FUNCTION = {
    "CorsAllowOrigins": "the function URLs' CORS (AWS::Lambda::Url), not the function",
    "ReservedConcurrency": "reserved concurrency is the function's, shared by all its versions",
    "LogRetentionDays": "the log groups",
    "AlarmEmail": "the alarm topic's subscription",
    "DailyTokenAlarmThreshold": "the token alarm",
    "DailySpendAlarmUsd": "the spend alarm",
    # With the default SignIn=none (sign-in modes: see the test after the next one).
    "OidcIssuer": "read only with SignIn=issuer",
    "OidcAudience": "read only with SignIn=issuer",
    "PageCallbackUrls": "the Cognito app client, which exists only with SignIn=cognito",
    "HostedUiDomainPrefix": "the hosted UI's domain, which exists only with SignIn=cognito",
    # With the default ClaudeProvider=anthropic (providers: see test_provider_parameter_changes_...).
    "BedrockModel": "read only with ClaudeProvider=bedrock",
    "BedrockModels": "read only with ClaudeProvider=bedrock",
}
# Parameters that reach some functions only. Every other parameter reaches all of them.
REACHES_ONLY = {
    "StreamTimeoutSeconds": {"StreamFunction"},
    "WebAdapterLayerVersion": {"StreamFunction"},
    "AnthropicApiKeySecretArn": {"ChatFunction", "StreamFunction"},  # history never calls Claude
}
# Values for parameters whose pattern a generic change would not satisfy.
CHANGED_VALUES = {
    "AnthropicApiKeySecretArn": (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:claude-chat/anthropic-AbC123"
    ),
    "AlarmEmail": "ops@example.com",
    "BedrockModel": "eu.anthropic.claude-haiku-4-5-20251001-v1:0",
    "CorsAllowOrigins": "https://chat.example.com",
    "OidcIssuer": "https://sso.example.com/realms/chat",
    "GroupTokenBudgets": '{"pro": 2000000}',
    "PageCallbackUrls": "https://chat.example.com/",
    "ClaudeModels": "claude-haiku-4-5,claude-sonnet-4-5",
    "GroupModels": "pro=claude-sonnet-4-5,pro=claude-opus-4-5",
    "BedrockModels": ",".join(TWO_PROFILES),
    "ModelPrices": '{"claude-haiku-4-5": {"input": 1, "output": 5}}',
    "GroupBudgetsUsd": '{"pro": 10}',
    "DailyBudgetUsd": "2.50",
    "GlobalDailyBudgetUsd": "100.00",
    "DailySpendAlarmUsd": "30.00",
    "ThinkingBudgetTokens": "2048",
    "WebSearchMaxUses": "3",
    "WebSearchAllowedDomains": "docs.python.org,example.com/blog",
    "WebSearchBlockedDomains": "spam.example",
    "WebSearchReserveTokens": "50000",
}


def _changed_value(name: str, declared: dict[str, Any]) -> str:
    """Another valid value of a parameter, as an operator could pass it to sam deploy."""
    default = declared.get("Default")
    if name in CHANGED_VALUES:
        value = CHANGED_VALUES[name]
    elif "AllowedValues" in declared:
        value = next(str(v) for v in declared["AllowedValues"] if str(v) != str(default))
    elif declared["Type"] == "Number":
        number = int(default) + 1
        value = str(number if number <= int(declared.get("MaxValue", number)) else int(default) - 1)
    else:
        value = f"{default}-changed" if default else "changed"
    assert value != str(default), name
    if "AllowedPattern" in declared:
        assert re.fullmatch(declared["AllowedPattern"].strip(), value), (name, value)
    if declared["Type"] == "Number":
        number = float(value)
        assert float(declared.get("MinValue", number)) <= number <= float(declared.get("MaxValue", number)), (
            name
        )
    return value


def _versions(document: dict[str, Any]) -> dict[str, str]:
    """Each function's AWS::Lambda::Version logical id, checked to be what its `live` alias serves."""
    resources = document["Resources"]
    versions = {}
    for function in URL_FUNCTIONS:
        (version,) = [
            name
            for name, resource in resources.items()
            if resource["Type"] == "AWS::Lambda::Version"
            and resource["Properties"]["FunctionName"] == {"Ref": function}
        ]
        alias = resources[f"{function}Aliaslive"]["Properties"]
        assert alias["FunctionVersion"] == {"Fn::GetAtt": [version, "Version"]}, function
        versions[function] = version
    return versions


def test_a_rebuilt_layer_publishes_every_function_behind_its_alias(tmp_path: Path) -> None:
    """`sam deploy` after a layer rebuild uploads it to a new S3 key: every alias must move.

    Without PublishLambdaVersion on the layer only $LATEST would get the new layer.
    """
    rebuilt = tmp_path / "template.yaml"
    text = TEMPLATE.read_text(encoding="utf-8")
    assert text.count("ContentUri: layers/shared\n") == 1
    rebuilt.write_text(
        text.replace("ContentUri: layers/shared\n", "ContentUri: s3://sam-artifacts/rebuilt.zip\n")
    )
    before, after = transformed_template(TEMPLATE), transformed_template(rebuilt)
    layers_before = {n for n, r in before["Resources"].items() if r["Type"] == "AWS::Lambda::LayerVersion"}
    layers_after = {n for n, r in after["Resources"].items() if r["Type"] == "AWS::Lambda::LayerVersion"}
    assert layers_before.isdisjoint(layers_after), "the rebuilt layer is not a new layer version"
    (new_layer,) = layers_after
    old_versions, new_versions = _versions(before), _versions(after)
    for function in URL_FUNCTIONS:
        assert new_versions[function] != old_versions[function], f"{function}: the alias keeps the old layer"
        assert {"Ref": new_layer} in after["Resources"][function]["Properties"]["Layers"], function


def test_every_parameter_change_publishes_the_functions_it_reaches(template: dict[str, Any]) -> None:
    """Each parameter of template.yaml, changed alone, as `sam deploy --parameter-overrides` would.

    Every function whose configuration the parameter reaches gets a new version, and its alias
    (so its URL) moves to it; the others keep theirs. A parameter added later is covered here
    at once: unless listed above, it must publish all three functions.
    """
    parameters = template["Parameters"]
    assert set(REACHES_NO_FUNCTION) | set(REACHES_ONLY) <= set(parameters), "a listed parameter is gone"
    changes = {name: _changed_value(name, declared) for name, declared in parameters.items()}
    baseline, *variants = transformed_with_parameters(
        [{}] + [{name: value} for name, value in changes.items()]
    )
    old_versions = _versions(baseline)
    failures = []
    for (name, value), document in zip(changes.items(), variants, strict=True):
        new_versions = _versions(document)
        expected = set() if name in REACHES_NO_FUNCTION else REACHES_ONLY.get(name, set(URL_FUNCTIONS))
        published = {
            function for function in URL_FUNCTIONS if new_versions[function] != old_versions[function]
        }
        if published != expected:
            failures.append(
                f"{name}={value!r} publishes {sorted(published)}, should publish {sorted(expected)}"
            )
        for function in URL_FUNCTIONS:
            # A new version needs a changed function (Lambda publishes nothing otherwise), and a
            # changed function needs a new version (or only $LATEST changes).
            changed = document["Resources"][function] != baseline["Resources"][function]
            if changed != (function in published):
                failures.append(f"{name}: {function} changed={changed} but published={function in published}")
    assert not failures, "\n".join(failures)


# Each sign-in mode as a deploy sets it, and what a change of each sign-in parameter then reaches.
SIGN_IN_MODES: dict[str, dict[str, str]] = {
    "none": {},
    "issuer": {
        "SignIn": "issuer",
        "OidcIssuer": "https://sso.example.com/realms/chat",
        "OidcAudience": "claude-chat",
    },
    "cognito": {"SignIn": "cognito"},
}
SIGN_IN_CHANGES = {
    "OidcIssuer": "https://login.example.org/",
    "OidcAudience": "another-client",
    "OidcGroupsClaim": "groups",
    "GroupTokenBudgets": '{"pro": 5000000}',
    "PageCallbackUrls": "https://chat.example.org/",
    "HostedUiDomainPrefix": "chat-example",
    "SignIn": "",  # replaced below by every other mode
}
# The parameters, in each mode, whose change must publish every function; any other publishes none.
SIGN_IN_REACHES_ALL = {
    "none": {"OidcGroupsClaim", "GroupTokenBudgets", "SignIn"},
    "issuer": {"OidcIssuer", "OidcAudience", "OidcGroupsClaim", "GroupTokenBudgets", "SignIn"},
    "cognito": {"OidcGroupsClaim", "GroupTokenBudgets", "SignIn"},
}


def test_sign_in_parameter_changes_publish_what_they_reach_in_every_mode() -> None:
    """From each SignIn mode, each sign-in parameter changed alone: all three functions, or none.

    The issuer and audience reach the functions only with SignIn=issuer (Cognito's come from the
    stack's own pool and client); the callback URLs and the domain prefix reach only Cognito.
    A change that publishes nothing must change no function either (Lambda would refuse).
    """
    cases: list[tuple[str, str, dict[str, str]]] = []
    for mode, baseline in SIGN_IN_MODES.items():
        for name, value in SIGN_IN_CHANGES.items():
            if name == "SignIn":
                for other, settings in SIGN_IN_MODES.items():
                    if other != mode:
                        cases.append((mode, f"SignIn={other}", {**baseline, **settings, "SignIn": other}))
            else:
                cases.append((mode, name, {**baseline, name: value}))
    documents = transformed_with_parameters(list(SIGN_IN_MODES.values()) + [c[2] for c in cases])
    baselines = dict(zip(SIGN_IN_MODES, documents[: len(SIGN_IN_MODES)], strict=True))
    failures = []
    for (mode, change, _), document in zip(cases, documents[len(SIGN_IN_MODES) :], strict=True):
        before, after = _versions(baselines[mode]), _versions(document)
        published = {f for f in URL_FUNCTIONS if after[f] != before[f]}
        changed = {f for f in URL_FUNCTIONS if document["Resources"][f] != baselines[mode]["Resources"][f]}
        expected = set(URL_FUNCTIONS) if change.split("=")[0] in SIGN_IN_REACHES_ALL[mode] else set()
        if published != expected or changed != expected:
            failures.append(
                f"SignIn={mode}, {change}: publishes {sorted(published)}, changes {sorted(changed)}"
            )
    assert not failures, "\n".join(failures)


def _sign_in_variables(document: dict[str, Any]) -> dict[str, Any]:
    variables = [
        {
            k: v
            for k, v in document["Resources"][f]["Properties"]["Environment"]["Variables"].items()
            if "OIDC" in k
        }
        for f in URL_FUNCTIONS
    ]
    assert all(v == variables[0] for v in variables), "the functions disagree on sign-in"
    return variables[0]


def test_each_sign_in_mode_gives_every_function_its_issuer_and_audience() -> None:
    none, issuer, cognito = transformed_with_parameters(list(SIGN_IN_MODES.values()))
    # Anonymous: empty strings, which the code reads as "no sign-in".
    assert _sign_in_variables(none) == {
        "OIDC_ISSUER": "",
        "OIDC_AUDIENCE": "",
        "OIDC_GROUPS_CLAIM": "cognito:groups",
    }
    assert _sign_in_variables(issuer) == {
        "OIDC_ISSUER": "https://sso.example.com/realms/chat",
        "OIDC_AUDIENCE": "claude-chat",
        "OIDC_GROUPS_CLAIM": "cognito:groups",
    }
    # Cognito's issuer is the pool's URL; its access tokens name the app client in client_id.
    assert _sign_in_variables(cognito) == {
        "OIDC_ISSUER": {"Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"},
        "OIDC_AUDIENCE": {"Ref": "UserPoolClient"},
        "OIDC_GROUPS_CLAIM": "cognito:groups",
    }
    for document in (none, issuer, cognito):
        for function in URL_FUNCTIONS:
            variables = document["Resources"][function]["Properties"]["Environment"]["Variables"]
            assert variables["GROUP_TOKEN_BUDGETS"] == "{}", function


COGNITO_RESOURCES = {
    "UserPool": "AWS::Cognito::UserPool",
    "UserPoolClient": "AWS::Cognito::UserPoolClient",
    "UserPoolDomain": "AWS::Cognito::UserPoolDomain",
    "ManagedLoginBranding": "AWS::Cognito::ManagedLoginBranding",
    "ProGroup": "AWS::Cognito::UserPoolGroup",
}


def test_cognito_resources_exist_only_with_sign_in_by_cognito(template: dict[str, Any]) -> None:
    conditions = template["Conditions"]
    assert conditions["SignInWithCognito"] == {"Fn::Equals": [{"Ref": "SignIn"}, "cognito"]}
    assert conditions["SignInWithIssuer"] == {"Fn::Equals": [{"Ref": "SignIn"}, "issuer"]}
    assert conditions["SignInRequired"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "SignIn"}, "none"]}]}
    assert template["Parameters"]["SignIn"]["AllowedValues"] == ["none", "cognito", "issuer"]
    cognito = {n: r for n, r in template["Resources"].items() if r["Type"].startswith("AWS::Cognito::")}
    assert {n: r["Type"] for n, r in cognito.items()} == COGNITO_RESOURCES
    for name, resource in cognito.items():
        assert resource["Condition"] == "SignInWithCognito", name
    outputs = template["Outputs"]
    assert outputs["OidcIssuer"]["Condition"] == outputs["OidcClientId"]["Condition"] == "SignInRequired"
    assert outputs["HostedUiUrl"]["Condition"] == outputs["UserPoolId"]["Condition"] == "SignInWithCognito"
    issuer_variable = template["Resources"]["ChatFunction"]["Properties"]["Environment"]["Variables"][
        "OIDC_ISSUER"
    ]
    # The page signs in where the functions verify: the same issuer, in both modes.
    assert outputs["OidcIssuer"]["Value"] == {
        "Fn::If": ["SignInWithCognito", issuer_variable["Fn::If"][1], {"Ref": "OidcIssuer"}]
    }
    assert outputs["OidcClientId"]["Value"] == {
        "Fn::If": ["SignInWithCognito", {"Ref": "UserPoolClient"}, {"Ref": "OidcAudience"}]
    }
    # SignIn=issuer without an issuer and an audience is refused before anything changes.
    rule = template["Rules"]["IssuerSignInNamesTheIssuer"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "SignIn"}, "issuer"]}
    asserted = [a["Assert"] for a in rule["Assertions"]]
    for parameter in ("OidcIssuer", "OidcAudience"):
        assert {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]} in asserted, parameter


def _condition_holds(expression: Any, conditions: dict[str, Any], values: dict[str, str]) -> bool:
    """A template condition's truth for literal parameter values (Equals, Not, And, Or, Condition)."""
    ((function, arguments),) = expression.items()
    if function == "Condition":
        return _condition_holds(conditions[arguments], conditions, values)
    if function == "Fn::Equals":
        left, right = (values[a["Ref"]] if isinstance(a, dict) else str(a) for a in arguments)
        return left == right
    results = [_condition_holds(argument, conditions, values) for argument in arguments]
    return {
        "Fn::Not": lambda: not results[0],
        "Fn::And": lambda: all(results),
        "Fn::Or": lambda: any(results),
    }[function]()


@pytest.mark.parametrize("mode", sorted(SIGN_IN_MODES))
def test_only_sign_in_by_cognito_creates_cognito_resources(template: dict[str, Any], mode: str) -> None:
    """What CloudFormation creates in each mode, its conditions decided as it decides them."""
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    values.update(SIGN_IN_MODES[mode])
    conditions = template["Conditions"]
    created = {
        name
        for name, resource in template["Resources"].items()
        if "Condition" not in resource
        or _condition_holds({"Condition": resource["Condition"]}, conditions, values)
    }
    cognito = {name for name in created if template["Resources"][name]["Type"].startswith("AWS::Cognito::")}
    assert cognito == (set(COGNITO_RESOURCES) if mode == "cognito" else set())
    outputs = {
        name
        for name, output in template["Outputs"].items()
        if "Condition" in output and _condition_holds({"Condition": output["Condition"]}, conditions, values)
    }
    sign_in_outputs = outputs & {"OidcIssuer", "OidcClientId", "HostedUiUrl", "UserPoolId"}
    assert (
        sign_in_outputs
        == {
            "none": set(),
            "issuer": {"OidcIssuer", "OidcClientId"},
            "cognito": {"OidcIssuer", "OidcClientId", "HostedUiUrl", "UserPoolId"},
        }[mode]
    )


def test_user_pool_signs_in_by_email_with_strong_passwords_and_keeps_its_accounts(
    template: dict[str, Any],
) -> None:
    pool = template["Resources"]["UserPool"]
    # The pool holds people's accounts: neither a stack deletion nor a switch of SignIn deletes it.
    assert pool["DeletionPolicy"] == pool["UpdateReplacePolicy"] == "Retain"
    properties = pool["Properties"]
    assert properties["DeletionProtection"] == "ACTIVE"
    assert properties["UsernameAttributes"] == ["email"]
    assert properties["AutoVerifiedAttributes"] == ["email"]
    assert properties["UsernameConfiguration"] == {"CaseSensitive": False}
    assert properties["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    policy = properties["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert all(policy[f"Require{kind}"] for kind in ("Lowercase", "Uppercase", "Numbers", "Symbols"))
    assert properties["MfaConfiguration"] == "OPTIONAL"
    assert properties["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert properties["UserPoolTier"] == "ESSENTIALS"  # managed login and refresh-token rotation
    # The deploy role reaches only pools with this tag (tests/static/test_ci_files.py).
    assert properties["UserPoolTags"] == {"claude-chat:stack": {"Ref": "AWS::StackName"}}


def test_page_client_is_public_code_with_pkce_and_short_lived_tokens(template: dict[str, Any]) -> None:
    client = template["Resources"]["UserPoolClient"]["Properties"]
    assert client["UserPoolId"] == {"Ref": "UserPool"}
    assert client["GenerateSecret"] is False  # a browser keeps no secret
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AllowedOAuthFlows"] == ["code"]  # no implicit flow: tokens never ride in a URL
    assert client["AllowedOAuthScopes"] == ["openid", "email", "profile"]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert client["CallbackURLs"] == client["LogoutURLs"] == {"Ref": "PageCallbackUrls"}
    assert template["Parameters"]["PageCallbackUrls"]["Type"] == "CommaDelimitedList"
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert client["EnableTokenRevocation"] is True
    assert client["RefreshTokenRotation"]["Feature"] == "ENABLED"
    # Rotation refuses REFRESH_TOKEN_AUTH; plain-password API sign-in is never allowed.
    flows = set(client["ExplicitAuthFlows"])
    assert not flows & {
        "ALLOW_REFRESH_TOKEN_AUTH",
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    }
    minutes = {"minutes": 1, "hours": 60, "days": 1440}
    units = client["TokenValidityUnits"]
    assert client["AccessTokenValidity"] * minutes[units["AccessToken"]] <= 60
    assert client["IdTokenValidity"] * minutes[units["IdToken"]] <= 60
    assert client["RefreshTokenValidity"] * minutes[units["RefreshToken"]] <= 1440
    branding = template["Resources"]["ManagedLoginBranding"]["Properties"]
    assert branding == {
        "UserPoolId": {"Ref": "UserPool"},
        "ClientId": {"Ref": "UserPoolClient"},
        "UseCognitoProvidedValues": True,
    }
    group = template["Resources"]["ProGroup"]["Properties"]
    assert group["UserPoolId"] == {"Ref": "UserPool"} and group["GroupName"] == "pro"


def test_hosted_ui_domain_prefix_is_given_or_unique_and_valid(template: dict[str, Any]) -> None:
    domain = template["Resources"]["UserPoolDomain"]["Properties"]
    assert domain["UserPoolId"] == {"Ref": "UserPool"}
    assert domain["ManagedLoginVersion"] == 2
    condition, given, derived = domain["Domain"]["Fn::If"]
    assert template["Conditions"][condition] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "HostedUiDomainPrefix"}, ""]}]
    }
    assert given == {"Ref": "HostedUiDomainPrefix"}
    # The default: "chat-" and the stack id's UUID, which is lowercase hex, unique, and short enough.
    assert derived == {
        "Fn::Join": ["-", ["chat", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}]]
    }
    stack_id = (
        "arn:aws:cloudformation:us-east-1:123456789012:stack/My-AWS-Chat/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
    )
    prefix = "-".join(["chat", stack_id.split("/")[2]])
    pattern = template["Parameters"]["HostedUiDomainPrefix"]["AllowedPattern"]
    assert re.fullmatch(pattern, prefix) and len(prefix) <= 63
    assert not re.search("aws|amazon|cognito", prefix)
    assert not re.fullmatch(pattern, "My-Chat") and not re.fullmatch(pattern, "-chat")
    # The output shows the same address the domain gets.
    url = template["Outputs"]["HostedUiUrl"]["Value"]["Fn::Sub"]
    assert url == ["https://${Domain}.auth.${AWS::Region}.amazoncognito.com", {"Domain": domain["Domain"]}]


def test_sign_in_parameters_accept_real_values_and_refuse_bad_ones(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    issuer = re.compile(parameters["OidcIssuer"]["AllowedPattern"])
    for good in (
        "",
        "https://example.eu.auth0.com/",
        "https://sso.example.com/realms/chat",
        "https://login.microsoftonline.com/0b1c2d3e-0000-4000-8000-123456789abc/v2.0",
        "https://accounts.google.com",
    ):
        assert issuer.fullmatch(good), good
    for bad in ("http://sso.example.com", "https://sso.example.com/?x=1", "sso.example.com", "https://a b"):
        assert not issuer.fullmatch(bad), bad
    budgets = re.compile(parameters["GroupTokenBudgets"]["AllowedPattern"])
    assert budgets.fullmatch("{}") and budgets.fullmatch('{"pro": 2000000, "staff": 0}')
    assert not budgets.fullmatch("pro=2000000") and not budgets.fullmatch("[]")
    assert parameters["OidcGroupsClaim"]["MinLength"] == 1


def test_parameters_reach_functions_outside_globals(template: dict[str, Any]) -> None:
    """AWS::LanguageExtensions resolves parameters in Resources only, so none may hide in Globals.

    A `!Ref` to a parameter in Globals would reach the SAM transform unresolved and publish
    nothing when its value changes. Only ReservedConcurrency lives there, on purpose.
    """
    assert template["Transform"] == ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]
    assert template["Resources"]["SharedLayer"]["Properties"]["PublishLambdaVersion"] is True
    parameters = set(template["Parameters"])
    globals_text = json.dumps(template["Globals"])
    in_globals = {p for p in parameters if re.search(rf'"Ref": "{p}"|\$\{{{p}\}}', globals_text)}
    assert in_globals == {"ReservedConcurrency"}
    settings = {}
    for function in URL_FUNCTIONS:
        variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        settings[function] = {
            k: v
            for k, v in variables.items()
            if k not in ADAPTER_VARIABLES and k != "ANTHROPIC_API_KEY_SECRET_ARN"
        }
    assert settings["ChatFunction"] == settings["HistoryFunction"] == settings["StreamFunction"]


# What every function shares is stated once, in Globals; each function states only what is its own.
# Not FunctionUrlConfig nor AutoPublishAliasAllProperties: cfn-lint's SAM schema (`sam validate
# --lint`) refuses both in Globals, though samtranslator takes them (test_sam_validate_lint_passes).
# MemorySize has a default in Globals that a function may size down (the footprint benchmark's choice).
SHARED_ONCE = {
    "AutoPublishAlias",
    "SnapStart",
    "Runtime",
    "Architectures",
}


def test_shared_function_settings_are_stated_once_in_globals(template: dict[str, Any]) -> None:
    globals_ = template["Globals"]["Function"]
    assert set(globals_) >= SHARED_ONCE | {"MemorySize"}
    assert globals_["LoggingConfig"] == {"LogFormat": "JSON"}
    for name in URL_FUNCTIONS:
        own = template["Resources"][name]["Properties"]
        assert not SHARED_ONCE & set(own), name
        assert set(own["LoggingConfig"]) == {"LogGroup"}, name


def test_globals_merge_as_sam_merges_them(functions: dict[str, Any]) -> None:
    """What the tests above and `make dev` read (local/template.py) is what SAM deploys: each URL's
    CORS, each function's logging and SnapStart, from the SAM transform itself (parameters unresolved)."""
    resources = sam_only_transformed_template(TEMPLATE)["Resources"]
    for name in URL_FUNCTIONS:
        url = resources[f"{name}Url"]["Properties"]
        expected_url = functions[name]["FunctionUrlConfig"]
        assert url["AuthType"] == expected_url["AuthType"], name
        assert url.get("InvokeMode", "BUFFERED") == expected_url.get("InvokeMode", "BUFFERED"), name
        assert url["Cors"] == expected_url["Cors"], name
        deployed = resources[name]["Properties"]
        assert deployed["LoggingConfig"] == functions[name]["LoggingConfig"], name
        assert deployed["SnapStart"] == functions[name]["SnapStart"], name
        assert deployed["Architectures"] == functions[name]["Architectures"], name


def test_reserved_concurrency_states_what_the_account_needs(template: dict[str, Any]) -> None:
    declared = template["Parameters"]["ReservedConcurrency"]
    assert declared["Default"] == 0
    description = " ".join(declared["Description"].split())
    assert "3 x ReservedConcurrency + 100" in description
    assert "limit of 10" in description


TOKEN_METRICS = ["InputTokens", "OutputTokens", "CacheReadInputTokens", "CacheCreationInputTokens"]
# The EMF dimension set the daily alarms read: the stack (POWERTOOLS_SERVICE_NAME), every model together.
_STACK_ONLY = [{"Name": "service", "Value": {"Ref": "AWS::StackName"}}]


def test_alarms_cover_errors_throttles_and_the_days_spend(template: dict[str, Any]) -> None:
    """Errors and throttles per function; the day's spend in USD and, if asked, tokens, on every model.

    An alarm can add only the metrics it names (no SEARCH in alarms; a Metrics Insights alarm sees 3
    hours), and the models are not a list CloudFormation can read: so the alarms read each metric
    under its (service) dimension set, which every turn's EMF line carries besides (service, model).
    """
    from claude_chat.observability import NAMESPACE

    resources = template["Resources"]
    alarms = {name: r for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    for function in URL_FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            alarm = alarms[f"{function}{metric}Alarm"]["Properties"]
            assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric)
            assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    daily = {"DailySpendAlarm", "DailyTokenSpendAlarm"}
    assert set(alarms) == {f"{f}{m}Alarm" for f in URL_FUNCTIONS for m in ("Errors", "Throttles")} | daily

    spend = alarms["DailySpendAlarm"]
    assert spend["Condition"] == "HasDailySpendAlarm"
    properties = spend["Properties"]
    assert (properties["Namespace"], properties["MetricName"]) == (NAMESPACE, "CostUSD")
    assert properties["Dimensions"] == _STACK_ONLY
    assert (properties["Statistic"], properties["Period"], properties["EvaluationPeriods"]) == (
        "Sum",
        86400,
        1,
    )
    assert properties["Threshold"] == {"Ref": "DailySpendAlarmUsd"}

    tokens = alarms["DailyTokenSpendAlarm"]
    assert tokens["Condition"] == "HasDailyTokenAlarm"
    properties = tokens["Properties"]
    (total,) = [m for m in properties["Metrics"] if m.get("ReturnData")]
    stats = {m["Id"]: m["MetricStat"] for m in properties["Metrics"] if "MetricStat" in m}
    # The metric math adds every token metric once: input, output, cache reads and writes.
    assert sorted(re.split(r"\s*\+\s*", total["Expression"])) == sorted(stats)
    assert sorted(s["Metric"]["MetricName"] for s in stats.values()) == sorted(TOKEN_METRICS)
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == NAMESPACE
        assert stat["Metric"]["Dimensions"] == _STACK_ONLY
        assert stat["Period"] == 86400 and stat["Stat"] == "Sum"
    assert properties["Threshold"] == {"Ref": "DailyTokenAlarmThreshold"}
    for name in daily:
        assert alarms[name]["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"
    service = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    assert service == {"Ref": "AWS::StackName"}
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching"
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


@pytest.mark.parametrize(
    ("overrides", "spend", "tokens"),
    [
        ({}, True, False),  # the defaults: a spend alarm at 40 USD, no token alarm
        ({"DailyTokenAlarmThreshold": "5000000"}, True, True),
        ({"DailySpendAlarmUsd": "0"}, False, False),
        ({"DailySpendAlarmUsd": "0.00", "DailyTokenAlarmThreshold": "1"}, False, True),
    ],
)
def test_daily_alarms_exist_when_their_threshold_is_not_0(
    template: dict[str, Any], overrides: dict[str, str], spend: bool, tokens: bool
) -> None:
    values = _parameter_values(overrides)
    for name, expected in (("DailySpendAlarm", spend), ("DailyTokenSpendAlarm", tokens)):
        condition = {"Condition": template["Resources"][name]["Condition"]}
        assert _evaluate(condition, template["Conditions"], values) is expected, name


def _emf_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if '"_aws"' in line]


def test_each_turns_metrics_reach_the_alarms_dimension_set(capsys: pytest.CaptureFixture[str]) -> None:
    """The code's part of the daily alarms: the EMF line of a turn that reached Claude puts CostUSD
    (and the token metrics) under the (service) dimension set too, with the stack's service.

    Skipped while claude_chat.observability emits no CostUSD (the models-and-money change to the code)."""
    import inspect

    from claude_chat import observability
    from claude_chat.models import Usage

    source = Path(observability.__file__).read_text(encoding="utf-8")
    if "CostUSD" not in source:
        pytest.skip("claude_chat.observability emits no CostUSD yet: the spend alarm has nothing to read")
    usage = Usage(input_tokens=12, output_tokens=34, cache_read_input_tokens=5, cache_creation_input_tokens=6)
    arguments: dict[str, Any] = {}
    for name, parameter in inspect.signature(observability.record_turn).parameters.items():
        if name == "model":
            arguments[name] = "claude-haiku-4-5"
        elif name == "usage":
            arguments[name] = usage
        elif name == "seconds":
            arguments[name] = 1.5
        elif "nanos" in name:
            arguments[name] = 1_234_000  # 0.001234 USD
        elif "cost" in name or "usd" in name:
            arguments[name] = Decimal("0.001234")
        elif parameter.default is inspect.Parameter.empty:
            pytest.fail(f"record_turn takes {name}: teach this test what to pass")
    observability.record_turn(**arguments)
    lines = [line for line in _emf_lines(capsys.readouterr().out) if "CostUSD" in line]
    assert lines, "record_turn printed no CostUSD: find where the code emits it and call that here"
    for line in lines:
        (block,) = line["_aws"]["CloudWatchMetrics"]
        assert block["Namespace"] == observability.NAMESPACE
        assert ["service"] in block["Dimensions"], block["Dimensions"]
        assert line["service"] == observability.SERVICE
        names = {metric["Name"] for metric in block["Metrics"]}
        assert "CostUSD" in names
        assert {m["Name"]: m["Unit"] for m in block["Metrics"]}["CostUSD"] == "None"
    emitted = {m["Name"] for line in lines for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert set(TOKEN_METRICS) <= emitted, "the token alarm reads the tokens under (service) too"


# --------------------------------------------------------------------------- 4. sam build


def test_sam_build_makes_a_python313_arm64_layer_without_docker(tmp_path: Path) -> None:
    """`sam build` as an operator runs it: the layer gets the runtime's wheels, not this machine's."""
    if not SAM.exists():
        pytest.skip(f"SAM CLI not installed at {SAM} (the Makefile installs it into .venv-sam)")
    env = {**offline_env(), "PATH": f"{SAM_VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    build_dir = tmp_path / "build"
    result = subprocess.run(
        [str(SAM), "build", "--build-dir", str(build_dir), "--template-file", str(TEMPLATE)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"sam build failed:\n{result.stdout}\n{result.stderr}"
    layer = build_dir / "SharedLayer" / "python"
    assert (layer / "claude_chat" / "http_api.py").is_file()
    native = [path.name for path in layer.rglob("*.so")]
    assert any(name.endswith("cpython-313-aarch64-linux-gnu.so") for name in native), native
    assert not [name for name in native if "x86_64" in name or "cpython-311" in name]
    assert not list(layer.rglob("*.pyc"))
    assert not (layer / "boto3").exists()  # the runtime provides it
    assert not (layer / "botocore").exists()  # ...and this, which aws-xray-sdk needs
    assert (layer / "aws_xray_sdk").is_dir() and (layer / "wrapt").is_dir()
    size = sum(path.stat().st_size for path in layer.rglob("*") if path.is_file())
    # 40 MiB, and 2 more for pypdf (attachments: a PDF must parse before Claude sees it).
    assert size < 42 * 1024 * 1024, f"layer grew to {size / 1e6:.1f} MB"
    for function in ("ChatFunction", "HistoryFunction", "StreamFunction"):
        assert (build_dir / function / "app.py").is_file()
    assert os.access(build_dir / "StreamFunction" / "run.sh", os.X_OK)  # the adapter executes it
    assert (layer / "uvicorn").is_dir()
    assert (layer / "starlette").is_dir()


def _refused_by_rules(template: dict[str, Any], overrides: dict[str, str]) -> list[str]:
    """The AssertDescriptions of every template Rule that refuses these parameters, as CloudFormation
    checks them before any change (a rule applies where its RuleCondition holds, or always)."""
    values = _parameter_values(overrides)
    refused = []
    for rule in template["Rules"].values():
        if "RuleCondition" in rule and not _evaluate(rule["RuleCondition"], {}, values):
            continue
        refused += [
            a["AssertDescription"] for a in rule["Assertions"] if not _evaluate(a["Assert"], {}, values)
        ]
    return refused


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        (
            {"ClaudeProvider": "bedrock", "WebSearchMaxUses": "2"},
            "WebSearchMaxUses must be 0 with ClaudeProvider=bedrock",
        ),
        (
            {
                "WebSearchMaxUses": "2",
                "WebSearchAllowedDomains": "a.example",
                "WebSearchBlockedDomains": "b.example",
            },
            "not both",
        ),
        ({"WebSearchBlockedDomains": "b.example"}, "need WebSearchMaxUses above 0"),
        ({"WebSearchMaxUses": "2", "WebSearchBlockedDomains": "b.example"}, None),
        ({"ClaudeProvider": "bedrock", "ThinkingBudgetTokens": "2048"}, None),  # Bedrock thinks
    ],
)
def test_web_search_settings_a_provider_cannot_serve_are_refused_at_deploy(
    template: dict[str, Any], overrides: dict[str, str], refusal: str | None
) -> None:
    refused = _refused_by_rules(template, overrides)
    if refusal is None:
        assert refused == []
    else:
        assert any(refusal in description for description in refused), refused
    assert _refused_by_rules(template, {}) == []
