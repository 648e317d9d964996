"""The CI workflow and the deploy role: who may deploy, how, and with which permissions.

- .github/workflows/ci.yml: tests on every push and pull request; only a push to main, once the
  tests passed, deploys, with an OIDC token (no stored AWS keys) and the exact sam deploy line.
- deploy/github-deploy-role.yaml: the role trusts only this repository's main branch (or its
  production environment, on main) with the sts.amazonaws.com audience, and grants no "*"
  action, "*" resources only where a comment says why, and names scoped to the stack.
- The two agree with each other, with samconfig.toml, and with what template.yaml creates.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.template import load_template
from tests.sam_offline import transformed_template

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
DEPLOY_ROLE = ROOT / "deploy" / "github-deploy-role.yaml"
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"

DEPLOY_COMMAND = ["deploy", "--config-env", "prod", "--no-confirm-changeset", "--no-fail-on-empty-changeset"]
OIDC = "token.actions.githubusercontent.com"
SUBJECT = re.compile(
    r"repo:\$\{GitHubOrg\}(?P<org_id>@\$\{GitHubOrgId\})?/\$\{GitHubRepo\}(?P<repo_id>@\$\{GitHubRepoId\})?"
    r":(?P<what>ref:refs/heads/main|environment:\$\{GitHubEnvironment\})"
)
# Resources outside the stack's name prefix that sam deploy must reach, each for its reason.
NON_STACK_RESOURCES = {
    # the transforms, and SAM CLI's artifact stack and bucket (resolve_s3 = true)
    r"arn:\$\{AWS::Partition\}:cloudformation:\$\{AWS::Region\}:aws:transform/Serverless-2016-10-31",
    r"arn:\$\{AWS::Partition\}:cloudformation:\$\{AWS::Region\}:aws:transform/LanguageExtensions",
    r"arn:\$\{AWS::Partition\}:cloudformation:\$\{AWS::Region\}:\$\{AWS::AccountId\}"
    r":stack/aws-sam-cli-managed-default/\*",
    r"arn:\$\{AWS::Partition\}:s3:::aws-sam-cli-managed-default-samclisourcebucket-\*(/\*)?",
    # AWS's Lambda Web Adapter layer (read only)
    r"arn:\$\{AWS::Partition\}:lambda:\$\{AWS::Region\}:753240598075:layer:LambdaAdapterLayerArm64:\*",
    # read-only describes that take every log group or alarm of the account and region
    r"arn:\$\{AWS::Partition\}:logs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:log-group:\*",
    r"arn:\$\{AWS::Partition\}:cloudwatch:\$\{AWS::Region\}:\$\{AWS::AccountId\}:alarm:\*",
}
# What CloudFormation calls to create each resource type template.yaml uses: the role must hold it.
CREATE_ACTIONS = {
    "AWS::CloudWatch::Alarm": "cloudwatch:PutMetricAlarm",
    "AWS::DynamoDB::Table": "dynamodb:CreateTable",
    "AWS::IAM::Role": "iam:CreateRole",
    "AWS::Lambda::Alias": "lambda:CreateAlias",
    "AWS::Lambda::Function": "lambda:CreateFunction",
    "AWS::Lambda::LayerVersion": "lambda:PublishLayerVersion",
    "AWS::Lambda::Permission": "lambda:AddPermission",
    "AWS::Lambda::Url": "lambda:CreateFunctionUrlConfig",
    "AWS::Lambda::Version": "lambda:PublishVersion",
    "AWS::Logs::LogGroup": "logs:CreateLogGroup",
    "AWS::Logs::MetricFilter": "logs:PutMetricFilter",
    "AWS::SNS::Subscription": "sns:Subscribe",
    "AWS::SNS::Topic": "sns:CreateTopic",
    "AWS::SecretsManager::Secret": "secretsmanager:CreateSecret",
    "AWS::Cognito::UserPool": "cognito-idp:CreateUserPool",
    "AWS::Cognito::UserPoolClient": "cognito-idp:CreateUserPoolClient",
    "AWS::Cognito::UserPoolDomain": "cognito-idp:CreateUserPoolDomain",
    "AWS::Cognito::UserPoolGroup": "cognito-idp:CreateGroup",
    "AWS::Cognito::ManagedLoginBranding": "cognito-idp:CreateManagedLoginBranding",
    "AWS::S3::Bucket": "s3:CreateBucket",
    "AWS::S3::BucketPolicy": "s3:PutBucketPolicy",
}
# Resources whose ARN cannot carry the stack's name (a Cognito user pool's ends in a generated id):
# the role reaches them only through the tag template.yaml gives them, with the stack's name as value.
STACK_TAG = "claude-chat:stack"
TAG_SCOPED_RESOURCES = {
    r"arn:\$\{AWS::Partition\}:cognito-idp:\$\{AWS::Region\}:\$\{AWS::AccountId\}:userpool/\*",
}
# Creates with no resource-level permissions, allowed on "*" only for a request carrying that tag.
TAG_SCOPED_CREATES = {"cognito-idp:CreateUserPool"}
# The property that names each resource type, where the role's grants depend on that name.
NAME_PROPERTIES = {
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::Lambda::LayerVersion": "LayerName",
}


# --------------------------------------------------------------------------- helpers


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _subbed(value: Any) -> str:
    """The text of a plain string or of an !Sub string; "" for other intrinsics."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        return str(value["Fn::Sub"])
    return ""


def _if_branches(value: Any) -> list[Any]:
    """Both branches of an !If (recursively), or the value itself."""
    if isinstance(value, dict) and "Fn::If" in value:
        _, when_true, when_false = value["Fn::If"]
        return _if_branches(when_true) + _if_branches(when_false)
    return [value]


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in _as_list(policy["PolicyDocument"]["Statement"])
    ]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {str(action) for statement in statements for action in _as_list(statement.get("Action", []))}


def _comment_above(text: str, sid: str) -> str:
    """The comment lines right above `- Sid: <sid>` in the raw YAML."""
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if re.fullmatch(rf"\s*- Sid: {re.escape(sid)}\s*", line))
    comment: list[str] = []
    while index > 0 and lines[index - 1].strip().startswith("#"):
        index -= 1
        comment.insert(0, lines[index].strip().lstrip("#").strip())
    return " ".join(comment)


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = job.get("steps", [])
    return steps


def _uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in _steps(job) if str(step.get("uses", "")).split("@")[0] == action]


def _sam_deploy_lines(job: dict[str, Any]) -> list[list[str]]:
    found = []
    for step in _steps(job):
        for line in str(step.get("run", "")).splitlines():
            words = shlex.split(line, comments=True)
            if len(words) >= 2 and Path(words[0]).name == "sam" and words[1] == "deploy":
                found.append(words)
    return found


def _step_index(job: dict[str, Any], predicate: Callable[[dict[str, Any]], bool]) -> int:
    return next(i for i, step in enumerate(_steps(job)) if predicate(step))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True.
    return {("on" if key is True else str(key)): value for key, value in loaded.items()}


@pytest.fixture(scope="module")
def jobs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = workflow["jobs"]
    return jobs


@pytest.fixture(scope="module")
def deploy_role_template() -> dict[str, Any]:
    return load_template(DEPLOY_ROLE)


@pytest.fixture(scope="module")
def role(deploy_role_template: dict[str, Any]) -> dict[str, Any]:
    roles = {n: r for n, r in deploy_role_template["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert list(roles) == ["DeployRole"]
    role: dict[str, Any] = roles["DeployRole"]
    return role


@pytest.fixture(scope="module")
def trust(role: dict[str, Any]) -> dict[str, Any]:
    statements = _as_list(role["Properties"]["AssumeRolePolicyDocument"]["Statement"])
    assert len(statements) == 1, "one way in, and only one"
    statement: dict[str, Any] = statements[0]
    return statement


# --------------------------------------------------------------------------- the workflow


def test_workflow_runs_on_every_push_and_pull_request(workflow: dict[str, Any]) -> None:
    triggers = workflow["on"]
    assert set(triggers) == {"push", "pull_request"}
    for trigger in ("push", "pull_request"):
        filters = triggers[trigger] or {}
        assert not set(filters) & {"branches", "branches-ignore", "paths", "paths-ignore", "tags"}, filters


def test_workflow_permissions_are_read_only_by_default(
    workflow: dict[str, Any], jobs: dict[str, Any]
) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in jobs.items():
        if name != "deploy":
            assert "permissions" not in job or job["permissions"] == {"contents": "read"}, name


def test_test_job_runs_make_test_on_pythons_313_and_311_and_node_20(jobs: dict[str, Any]) -> None:
    test = jobs["test"]
    assert "if" not in test, "tests run for every push and pull request"
    assert _uses(test, "actions/checkout")
    (python,) = _uses(test, "actions/setup-python")
    # 3.13 (the functions' runtime: make test finds python3.13) and 3.11 last, so `python3` is 3.11.
    assert str(python["with"]["python-version"]).split() == ["3.13", "3.11"]
    (node,) = _uses(test, "actions/setup-node")
    assert str(node["with"]["node-version"]).split(".")[0] == "20"
    runs = [str(step.get("run", "")).strip() for step in _steps(test)]
    assert "make test" in runs
    assert _step_index(test, lambda s: str(s.get("run", "")).strip() == "make test") > _step_index(
        test, lambda s: str(s.get("uses", "")).startswith("actions/setup-python@")
    )


def test_deploy_runs_only_for_pushes_to_main_after_the_tests(jobs: dict[str, Any]) -> None:
    deploy = jobs["deploy"]
    assert "test" in _as_list(deploy["needs"])
    condition = " ".join(str(deploy["if"]).replace("${{", "").replace("}}", "").split())
    clauses = {clause.strip().strip("()") for clause in condition.split("&&")}
    assert "||" not in condition and "!" not in condition.replace("!=", ""), condition
    assert clauses == {"github.event_name == 'push'", "github.ref == 'refs/heads/main'"}, clauses


def test_deploy_job_is_the_only_one_with_an_oidc_token(jobs: dict[str, Any]) -> None:
    deploy = jobs["deploy"]
    assert deploy["permissions"] == {"id-token": "write", "contents": "read"}
    environment = deploy["environment"]
    assert (environment if isinstance(environment, str) else environment["name"]) == "production"
    concurrency = deploy["concurrency"]
    assert concurrency["group"] and concurrency.get("cancel-in-progress") is False
    others = [
        name for name, job in jobs.items() if name != "deploy" and "id-token" in job.get("permissions", {})
    ]
    assert not others


def test_deploy_assumes_the_role_then_builds_and_runs_the_exact_sam_deploy(jobs: dict[str, Any]) -> None:
    deploy = jobs["deploy"]
    (credentials,) = _uses(deploy, "aws-actions/configure-aws-credentials")
    major = str(credentials["uses"]).split("@")[1]
    assert re.fullmatch(r"v\d+", major) and int(major[1:]) >= 4, major
    role = str(credentials["with"]["role-to-assume"])
    assert re.fullmatch(r"\$\{\{\s*(vars|secrets)\.AWS_DEPLOY_ROLE_ARN\s*\}\}", role), role
    assert re.fullmatch(r"\$\{\{\s*(vars|secrets)\.AWS_REGION\s*\}\}", str(credentials["with"]["aws-region"]))
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(credentials["with"]), "OIDC only, no keys"

    (deploy_line,) = _sam_deploy_lines(deploy)
    assert deploy_line[1:] == DEPLOY_COMMAND, deploy_line

    def is_deploy(step: dict[str, Any]) -> bool:
        return bool(_sam_deploy_lines({"steps": [step]}))

    def is_build(step: dict[str, Any]) -> bool:
        return bool(re.search(r"\b(make build|sam build)\b", str(step.get("run", ""))))

    assert _step_index(deploy, lambda step: step is credentials) < _step_index(deploy, is_deploy)
    assert _step_index(deploy, is_build) < _step_index(deploy, is_deploy)


def test_deploy_deletes_a_stack_left_in_rollback_complete_first(jobs: dict[str, Any]) -> None:
    """sam deploy cannot update a stack whose first create failed; the job deletes it, and only it."""
    deploy = jobs["deploy"]

    def is_cleanup(step: dict[str, Any]) -> bool:
        return "delete-stack" in str(step.get("run", ""))

    (cleanup,) = [step for step in _steps(deploy) if is_cleanup(step)]
    script = str(cleanup["run"])
    assert '[ "$status" = ROLLBACK_COMPLETE ]' in script, "deletes a stack in any other state"
    assert script.index("ROLLBACK_COMPLETE ]") < script.index("aws cloudformation delete-stack")
    assert "aws cloudformation wait stack-delete-complete" in script
    assert '["prod"]["deploy"]["parameters"]["stack_name"]' in script, (
        "the stack sam deploy --config-env prod uses"
    )
    (credentials,) = _uses(deploy, "aws-actions/configure-aws-credentials")
    assert _step_index(deploy, lambda step: step is credentials) < _step_index(deploy, is_cleanup)
    assert _step_index(deploy, is_cleanup) < _step_index(
        deploy, lambda step: bool(_sam_deploy_lines({"steps": [step]}))
    )


def test_only_the_deploy_job_deploys(jobs: dict[str, Any]) -> None:
    assert [name for name, job in jobs.items() if _sam_deploy_lines(job)] == ["deploy"]


def test_every_action_is_pinned(jobs: dict[str, Any]) -> None:
    for name, job in jobs.items():
        for step in _steps(job):
            if "uses" in step:
                ref = str(step["uses"]).partition("@")[2]
                assert re.fullmatch(r"v\d+(\.\d+){0,2}|[0-9a-f]{40}", ref), f"{name}: {step['uses']}"


# --------------------------------------------------------------------------- the deploy role: trust


def test_trust_is_github_oidc_for_this_repository_main_only(
    deploy_role_template: dict[str, Any], trust: dict[str, Any]
) -> None:
    assert trust["Effect"] == "Allow"
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    federated = _if_branches(trust["Principal"]["Federated"])
    assert federated == [{"Ref": "GitHubOidcProvider"}, {"Ref": "ExistingOidcProviderArn"}]
    conditions = trust["Condition"]
    # StringLike would let a wildcard in; ForAllValues passes when a claim is missing.
    assert set(conditions) == {"StringEquals"}, conditions
    equals = conditions["StringEquals"]
    assert equals[f"{OIDC}:aud"] == "sts.amazonaws.com"
    assert equals[f"{OIDC}:ref"] == "refs/heads/main"
    for subjects in _if_branches(equals[f"{OIDC}:sub"]):
        texts = [_subbed(subject) for subject in _as_list(subjects)]
        matches = [SUBJECT.fullmatch(text) for text in texts]
        assert all(matches), texts
        assert sorted(m["what"] for m in matches if m) == [
            "environment:${GitHubEnvironment}",
            "ref:refs/heads/main",
        ]
        assert not any("*" in text for text in texts)
    provider = deploy_role_template["Resources"]["GitHubOidcProvider"]
    assert provider["Condition"] == "CreateOidcProvider"
    assert provider["Properties"]["Url"] == f"https://{OIDC}"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]


def test_trusted_environment_is_the_deploy_jobs(
    deploy_role_template: dict[str, Any], jobs: dict[str, Any]
) -> None:
    environment = jobs["deploy"]["environment"]
    name = environment if isinstance(environment, str) else environment["name"]
    assert deploy_role_template["Parameters"]["GitHubEnvironment"]["Default"] == name


def test_parameters_and_output(deploy_role_template: dict[str, Any]) -> None:
    parameters = deploy_role_template["Parameters"]
    assert {"GitHubOrg", "GitHubRepo", "StackName", "ExistingOidcProviderArn"} <= set(parameters)
    assert "Default" not in parameters["GitHubOrg"] and "Default" not in parameters["GitHubRepo"]
    assert parameters["StackName"]["Default"] == "claude-chat-prod"
    assert parameters["ExistingOidcProviderArn"]["Default"] == ""
    assert deploy_role_template["Outputs"]["DeployRoleArn"]["Value"] == {"Fn::GetAtt": ["DeployRole", "Arn"]}
    assert "aws cloudformation deploy --template-file deploy/github-deploy-role.yaml" in " ".join(
        DEPLOY_ROLE.read_text(encoding="utf-8").replace("\\\n#", " ").split()
    )


# --------------------------------------------------------------------------- the deploy role: permissions


def test_no_wildcard_actions_and_no_negations(role: dict[str, Any]) -> None:
    for statement in _statements(role):
        assert statement["Effect"] == "Allow"
        assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement), statement["Sid"]
        for action in _as_list(statement["Action"]):
            service, _, name = str(action).partition(":")
            assert service and name and "*" not in name, f"{statement['Sid']}: {action}"


def test_star_resources_only_where_a_comment_says_why(role: dict[str, Any]) -> None:
    text = DEPLOY_ROLE.read_text(encoding="utf-8")
    starred = [s for s in _statements(role) if "*" in _as_list(s["Resource"])]
    tag_scoped = [s for s in starred if set(_as_list(s["Action"])) <= TAG_SCOPED_CREATES]
    for statement in tag_scoped:
        assert "Unscoped:" in _comment_above(text, statement["Sid"]), statement["Sid"]
        assert statement["Condition"] == {
            "StringEquals": {f"aws:RequestTag/{STACK_TAG}": {"Ref": "StackName"}}
        }, statement["Sid"]
    starred = [s for s in starred if s not in tag_scoped]
    for statement in starred:
        assert _as_list(statement["Resource"]) == ["*"], statement["Sid"]
        assert "Unscoped:" in _comment_above(text, statement["Sid"]), (
            f"{statement['Sid']} grants Resource '*' without an 'Unscoped:' comment saying why"
        )
        for action in _as_list(statement["Action"]):
            verb = str(action).partition(":")[2]
            assert verb.startswith(("Get", "Describe", "List")), f"{statement['Sid']}: {action} on '*'"
    assert len(starred) <= 3, [s["Sid"] for s in starred]


def test_every_other_resource_is_scoped_to_the_stack(role: dict[str, Any]) -> None:
    for statement in _statements(role):
        for resource in _as_list(statement["Resource"]):
            if resource == "*":
                continue
            arn = _subbed(resource)
            assert arn, f"{statement['Sid']}: resource is not a plain or !Sub ARN: {resource}"
            if "${StackName}" in arn:
                prefix, _, rest = arn.partition("${StackName}")
                assert rest[:1] in {"-", "/"}, f"{statement['Sid']}: {arn} matches other stacks' names"
                assert "*" not in prefix, f"{statement['Sid']}: {arn}"
            elif any(re.fullmatch(allowed, arn) for allowed in TAG_SCOPED_RESOURCES):
                assert statement.get("Condition") == {
                    "StringEquals": {f"aws:ResourceTag/{STACK_TAG}": {"Ref": "StackName"}}
                }, f"{statement['Sid']}: {arn} without the stack's tag as its only condition"
            else:
                assert any(re.fullmatch(allowed, arn) for allowed in NON_STACK_RESOURCES), (
                    f"{statement['Sid']}: {arn} is neither scoped to ${{StackName}} nor a known exception"
                )


def test_pass_role_and_managed_policies_are_conditioned(role: dict[str, Any]) -> None:
    for statement in _statements(role):
        actions = set(_as_list(statement["Action"]))
        if "iam:PassRole" in actions:
            assert actions == {"iam:PassRole"}
            assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
        if actions & {"iam:AttachRolePolicy", "iam:DetachRolePolicy"}:
            allowed = statement["Condition"]["ArnEquals"]["iam:PolicyARN"]
            assert allowed and all(
                _subbed(arn).startswith("arn:${AWS::Partition}:iam::aws:policy/") for arn in allowed
            )
            assert "AdministratorAccess" not in json.dumps(allowed)


def test_ci_can_never_read_a_secret_value(role: dict[str, Any]) -> None:
    actions = _actions(_statements(role))
    assert not {"secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"} & actions
    assert not any(action.startswith(("kms:Decrypt", "ssm:GetParameter")) for action in actions)


def test_role_deploys_what_sam_needs(role: dict[str, Any]) -> None:
    actions = _actions(_statements(role))
    needed = {
        "cloudformation:CreateChangeSet",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:DescribeChangeSet",
        "cloudformation:DescribeStacks",
        "cloudformation:DescribeStackEvents",
        "cloudformation:GetTemplateSummary",
        "s3:PutObject",
        "s3:GetObject",
        "iam:PassRole",
        "lambda:GetLayerVersion",
    }
    assert needed <= actions, needed - actions
    for name in _as_list(load_template(TEMPLATE)["Transform"]):
        granted = [
            s for s in _statements(role) if f"aws:transform/{name.removeprefix('AWS::')}" in json.dumps(s)
        ]
        assert granted, f"no CreateChangeSet on the transform {name} that template.yaml uses"
        assert all("cloudformation:CreateChangeSet" in _as_list(s["Action"]) for s in granted), name


def test_role_may_delete_only_its_own_stack(role: dict[str, Any]) -> None:
    """A failed first create leaves ROLLBACK_COMPLETE, which only DeleteStack clears."""
    deleting = [s for s in _statements(role) if "cloudformation:DeleteStack" in _as_list(s["Action"])]
    assert len(deleting) == 1
    assert [_subbed(r) for r in _as_list(deleting[0]["Resource"])] == [
        "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${StackName}/*"
    ]


# --------------------------------------------------------------------------- role, template, samconfig agree


def test_prod_config_env_deploys_the_stack_the_role_may_deploy(deploy_role_template: dict[str, Any]) -> None:
    config = tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))
    prod = config.get("prod", {})
    deploy = {**prod.get("global", {}).get("parameters", {}), **prod.get("deploy", {}).get("parameters", {})}
    assert deploy, "samconfig.toml has no [prod.deploy.parameters]: sam deploy --config-env prod needs it"
    assert deploy.get("stack_name") == deploy_role_template["Parameters"]["StackName"]["Default"]
    assert deploy.get("resolve_s3") is True, "the role grants SAM CLI's managed bucket, not another one"
    assert "CAPABILITY_NAMED_IAM" not in str(deploy.get("capabilities", "")), "the stack names no IAM role"


def test_template_names_stay_inside_the_roles_grants(role: dict[str, Any]) -> None:
    """Every name the role's ARNs depend on starts with the stack name, or is a listed exception."""
    granted = json.dumps(_statements(role))
    for name, resource in load_template(TEMPLATE)["Resources"].items():
        name_property = NAME_PROPERTIES.get(resource["Type"])
        if name_property is None:
            continue
        value = (resource.get("Properties") or {}).get(name_property)
        if value is None:
            if resource["Type"] in {"AWS::SecretsManager::Secret", "AWS::Lambda::LayerVersion"}:
                # Named after the logical id, not the stack: the role must name it.
                assert f":{name}" in granted, f"{name}: unnamed {resource['Type']} the role does not cover"
            continue  # CloudFormation names it ${StackName}-<LogicalId>-<suffix>
        text = _subbed(value)
        log_group = resource["Type"] == "AWS::Logs::LogGroup"
        prefix = "/aws/lambda/${AWS::StackName}" if log_group else "${AWS::StackName}"
        assert text.startswith(prefix) and text[len(prefix) : len(prefix) + 1] in {"-", "/"}, (
            f"{name}: {value}"
        )


def test_role_reaches_only_the_user_pool_tagged_with_its_stack(role: dict[str, Any]) -> None:
    """The tag the role trusts is the one template.yaml's pool carries, and CI can never delete it."""
    pool = load_template(TEMPLATE)["Resources"]["UserPool"]
    assert pool["Properties"]["UserPoolTags"][STACK_TAG] == {"Ref": "AWS::StackName"}
    assert pool["DeletionPolicy"] == "Retain"
    cognito = [s for s in _statements(role) if any(a.startswith("cognito-idp:") for a in _actions([s]))]
    assert cognito, "the role cannot deploy SignIn=cognito"
    for statement in cognito:
        condition = json.dumps(statement.get("Condition", {}))
        verbs = {str(a).partition(":")[2] for a in _as_list(statement["Action"])}
        assert STACK_TAG in condition or verbs <= {"DescribeUserPoolDomain"}, statement["Sid"]
    assert "cognito-idp:DeleteUserPool" not in _actions(_statements(role))
    assert not any("AdminCreateUser" in a or "AdminAddUserToGroup" in a for a in _actions(_statements(role)))


def test_role_can_create_every_resource_type_sam_deploys(role: dict[str, Any]) -> None:
    types = {resource["Type"] for resource in transformed_template(TEMPLATE)["Resources"].values()}
    unknown = types - set(CREATE_ACTIONS)
    assert not unknown, (
        f"template.yaml now creates {unknown}: grant them in {DEPLOY_ROLE.name}, then list them here"
    )
    actions = _actions(_statements(role))
    missing = {kind: CREATE_ACTIONS[kind] for kind in types if CREATE_ACTIONS[kind] not in actions}
    assert not missing, f"the deploy role cannot create: {missing}"
