"""`make web-config`: the page's config.json from `sam list stack-outputs --output json`."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from local.web_config import page_config

OUTPUTS = [
    {"OutputKey": "ChatUrl", "OutputValue": "https://chat.lambda-url.us-east-1.on.aws/", "Description": "-"},
    {
        "OutputKey": "HistoryUrl",
        "OutputValue": "https://hist.lambda-url.us-east-1.on.aws/",
        "Description": "-",
    },
    {
        "OutputKey": "StreamUrl",
        "OutputValue": "https://strm.lambda-url.us-east-1.on.aws/",
        "Description": "-",
    },
    {"OutputKey": "TableName", "OutputValue": "claude-chat-ChatTable", "Description": "-"},
]


def test_the_config_names_each_function_url_without_its_trailing_slash() -> None:
    assert page_config(OUTPUTS) == {
        "chatUrl": "https://chat.lambda-url.us-east-1.on.aws",
        "historyUrl": "https://hist.lambda-url.us-east-1.on.aws",
        "streamUrl": "https://strm.lambda-url.us-east-1.on.aws",
    }


SIGN_IN = [
    {"OutputKey": "OidcIssuer", "OutputValue": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc"},
    {"OutputKey": "OidcClientId", "OutputValue": "4pq0example"},
]


def test_without_sign_in_outputs_the_config_has_no_issuer() -> None:
    assert "issuer" not in page_config(OUTPUTS)
    assert "clientId" not in page_config(OUTPUTS)


def test_a_stack_with_sign_in_gives_the_page_its_issuer_and_client_id_as_output() -> None:
    auth0 = [{"OutputKey": "OidcIssuer", "OutputValue": "https://tenant.eu.auth0.com/"}, SIGN_IN[1]]
    assert page_config(OUTPUTS + SIGN_IN)["issuer"] == SIGN_IN[0]["OutputValue"]
    assert page_config(OUTPUTS + SIGN_IN)["clientId"] == "4pq0example"
    # The issuer is kept exactly: a token's `iss` must equal it, trailing slash and all.
    assert page_config(OUTPUTS + auth0)["issuer"] == "https://tenant.eu.auth0.com/"


def test_the_stack_s_own_cognito_pool_gives_the_page_its_logout_url() -> None:
    hosted = {"OutputKey": "HostedUiUrl", "OutputValue": "https://chat-abc.auth.us-east-1.amazoncognito.com"}
    config = page_config([*OUTPUTS, *SIGN_IN, hosted])
    assert config["logoutUrl"] == "https://chat-abc.auth.us-east-1.amazoncognito.com/logout"
    assert "logoutUrl" not in page_config(OUTPUTS + SIGN_IN)  # another issuer: its discovery document says
    assert "logoutUrl" not in page_config([*OUTPUTS, hosted])  # no sign-in, no logout


def test_empty_sign_in_outputs_mean_anonymous() -> None:
    empty = [{"OutputKey": "OidcIssuer", "OutputValue": ""}, {"OutputKey": "OidcClientId", "OutputValue": ""}]
    assert "issuer" not in page_config(OUTPUTS + empty)


@pytest.mark.parametrize(
    ("outputs", "complaint"),
    [
        ([SIGN_IN[0]], "both"),
        ([SIGN_IN[1]], "both"),
        ([{"OutputKey": "OidcIssuer", "OutputValue": "http://idp.example.com"}, SIGN_IN[1]], "https"),
    ],
)
def test_half_or_plain_http_sign_in_outputs_are_errors(outputs: list[dict[str, str]], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        page_config(OUTPUTS + outputs)


def test_the_template_has_the_outputs_the_config_reads() -> None:
    from local.template import load_template

    outputs = load_template()["Outputs"]
    assert {"ChatUrl", "HistoryUrl", "StreamUrl"} <= outputs.keys()
    # With sign-in on (and only then), the issuer and the page's client id.
    for key in ("OidcIssuer", "OidcClientId"):
        assert outputs[key]["Condition"] == "SignInRequired"


def test_a_stack_without_the_url_outputs_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="StreamUrl"):
        page_config([output for output in OUTPUTS if output["OutputKey"] != "StreamUrl"])


def run_command(monkeypatch: pytest.MonkeyPatch, stdin: str, output: Path) -> None:
    """`python -m local.web_config --output OUTPUT`, in this process: its argv, stdin and main()."""
    from local import web_config

    monkeypatch.setattr(sys, "argv", ["web_config", "--output", str(output)])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    web_config.main()


def test_the_command_writes_the_file_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "config.json"
    run_command(monkeypatch, json.dumps(OUTPUTS), target)
    assert json.loads(target.read_text())["streamUrl"] == "https://strm.lambda-url.us-east-1.on.aws"


def test_the_command_fails_clearly_on_output_that_is_not_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_command(monkeypatch, "Error: Stack does not exist", tmp_path / "config.json")
    # sys.exit(message): Python prints the message on stderr and exits with status 1.
    assert str(exited.value.code).startswith("web-config:")
    assert not (tmp_path / "config.json").exists()
