"""Which models a caller may choose (claude_chat.model_choice)."""

from __future__ import annotations

import pytest

from claude_chat.errors import ModelNotAllowed
from claude_chat.model_choice import ModelCatalog, plain_name
from claude_chat.settings import Settings


def catalog(**settings: str) -> ModelCatalog:
    return ModelCatalog(Settings(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("configured", "name"),
    [
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
        ("global.anthropic.claude-opus-4-5-20251101-v1:0", "claude-opus-4-5"),
        ("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("apac.anthropic.claude-sonnet-4-6", "claude-sonnet-4-6"),
        ("us-gov.anthropic.claude-3-7-sonnet-20250219-v1:0", "claude-3-7-sonnet"),
        ("anthropic.claude-opus-4-7", "claude-opus-4-7"),
        ("claude-haiku-4-5", "claude-haiku-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001"),
    ],
)
def test_callers_see_a_models_plain_name(configured: str, name: str) -> None:
    assert plain_name(configured) == name


def test_the_first_model_is_the_default_and_groups_add_theirs() -> None:
    models = catalog(
        claude_models="claude-haiku-4-5,claude-sonnet-4-5",
        group_models="pro=claude-opus-4-5,pro=claude-sonnet-4-5,staff=claude-sonnet-4-6",
    )
    assert [m.name for m in models.choices()] == ["claude-haiku-4-5", "claude-sonnet-4-5"]
    assert [m.name for m in models.choices(["pro"])] == [
        "claude-haiku-4-5",
        "claude-sonnet-4-5",
        "claude-opus-4-5",
    ]
    assert [m.name for m in models.choices(["staff", "pro", "nobody"])][-2:] == [
        "claude-sonnet-4-6",
        "claude-opus-4-5",
    ]
    assert models.default.name == "claude-haiku-4-5"
    assert models.choose(None).name == "claude-haiku-4-5"
    assert models.choose("claude-sonnet-4-5").model_id == "claude-sonnet-4-5"
    assert models.choose("claude-opus-4-5", ["pro"]).prices.input == 5
    with pytest.raises(ModelNotAllowed) as refused:
        models.choose("claude-opus-4-5", ["staff"])
    assert refused.value.status == 422 and refused.value.code == "model_not_allowed"
    assert "claude-sonnet-4-6" in refused.value.message
    assert models.by_id("claude-opus-4-5") is not None and models.by_id("claude-nonesuch") is None


def test_without_claude_models_the_one_model_is_claude_model() -> None:
    models = catalog(claude_model="claude-sonnet-4-5")
    assert [m.name for m in models.choices()] == ["claude-sonnet-4-5"]
    assert [m.name for m in catalog().choices()] == ["claude-haiku-4-5"]


def test_on_bedrock_callers_name_a_profile_by_its_model() -> None:
    profile = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    models = catalog(claude_provider="bedrock", claude_models=profile, bedrock_models=profile)
    (only,) = models.choices()
    assert (only.name, only.model_id) == ("claude-haiku-4-5", profile)
    assert models.choose("claude-haiku-4-5").model_id == profile
    assert models.choose(profile).model_id == profile


def test_a_models_setting_nobody_can_pay_for_or_call_stops_the_start() -> None:
    with pytest.raises(ValueError, match="no price for the model 'claude-nonesuch'"):
        catalog(claude_models="claude-nonesuch")
    with pytest.raises(ValueError, match="no price"):
        catalog(group_models="pro=claude-nonesuch")
    assert catalog(claude_models="my-model", model_prices='{"my-model": {"input": 1, "output": 2}}')
    with pytest.raises(ValueError, match="BEDROCK_MODELS"):
        catalog(
            claude_provider="bedrock",
            claude_models="us.anthropic.claude-haiku-4-5-20251001-v1:0",
            bedrock_models="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        )
    with pytest.raises(ValueError, match="both named"):
        catalog(claude_models="claude-haiku-4-5,us.anthropic.claude-haiku-4-5-20251001-v1:0")


@pytest.mark.parametrize("bad", ["pro", "=claude-haiku-4-5", "pro=", '{"pro": '])
def test_bad_group_models_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="GROUP_MODELS"):
        Settings(group_models=bad)  # type: ignore[arg-type]


def test_group_models_read_as_pairs_or_json() -> None:
    pairs = Settings(group_models="pro=a, pro=b ,staff=c")  # type: ignore[arg-type]
    as_json = Settings(group_models='{"pro": ["a", "b"], "staff": "c"}')  # type: ignore[arg-type]
    assert pairs.group_models == as_json.group_models == {"pro": ["a", "b"], "staff": ["c"]}
    assert Settings(claude_models=" a , b,,").claude_models == ["a", "b"]  # type: ignore[arg-type]
    assert Settings(claude_models="a,b").claude_model == "a"  # type: ignore[arg-type]


def test_bedrock_models_bind_only_on_bedrock_and_errors_say_what_to_write() -> None:
    # On the Anthropic API, BEDROCK_MODELS (a template value) is ignored.
    assert catalog(
        claude_models="claude-haiku-4-5", bedrock_models="us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    )
    with pytest.raises(ValueError, match="no price") as unpriced:
        catalog(claude_models="us.anthropic.claude-nonesuch-1-20260101-v1:0")
    assert str(unpriced.value) == (
        "no price for the model 'us.anthropic.claude-nonesuch-1-20260101-v1:0': give it in MODEL_PRICES "
        '(JSON such as {"claude-nonesuch-1": {"input": 1, "output": 5}})'
    )
