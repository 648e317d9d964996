"""Which Claude models a caller may choose, by what name, and at what price.

CLAUDE_MODELS lists the models every caller may choose (the first is the
default), GROUP_MODELS adds models for sign-in groups. A caller names a model
by its plain name, the same on both providers: on the Anthropic API that is
the id configured (`claude-haiku-4-5`); on Amazon Bedrock the configured id is
an inference profile (`us.anthropic.claude-haiku-4-5-20251001-v1:0`) and the
name is the model's (`claude-haiku-4-5`), so a page works unchanged whichever
provider serves it. The configured id is accepted too.

Every model must have a price (claude_chat.pricing), and on Bedrock every
profile must be one that IAM allows (BEDROCK_MODELS, from the template), or the
function refuses to start: a model nobody can pay for or call is a setting's
mistake, not a caller's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from claude_chat.errors import ModelNotAllowed
from claude_chat.pricing import Prices, price_table, prices_for
from claude_chat.settings import Settings

# A Bedrock inference profile: a geography, the provider, then the model id with its date and version.
_PROFILE_PREFIX = re.compile(r"^(?:[a-z]{2,6}(?:-[a-z]+)?\.)?anthropic\.")
_VERSION_SUFFIX = re.compile(r"(?:-\d{8})?-v\d+(?::\d+)?$")


@dataclass(frozen=True, slots=True)
class ModelChoice:
    name: str  # what callers see and send
    model_id: str  # what the provider is asked for
    prices: Prices


def plain_name(model_id: str) -> str:
    """A Bedrock profile's model name (`claude-haiku-4-5`); an API id as it is."""
    if not _PROFILE_PREFIX.match(model_id):
        return model_id
    return _VERSION_SUFFIX.sub("", _PROFILE_PREFIX.sub("", model_id))


class ModelCatalog:
    def __init__(self, settings: Settings) -> None:
        table = price_table(settings.model_prices)
        allowed = set(settings.bedrock_models) if settings.on_bedrock else set()
        by_name: dict[str, ModelChoice] = {}
        for model_id in [*settings.claude_models, *(m for ms in settings.group_models.values() for m in ms)]:
            prices = prices_for(model_id, table)
            if prices is None:
                raise ValueError(
                    f"no price for the model {model_id!r}: give it in MODEL_PRICES "
                    '(JSON such as {"' + plain_name(model_id) + '": {"input": 1, "output": 5}})'
                )
            if allowed and model_id not in allowed:
                raise ValueError(f"the model {model_id!r} is not in BEDROCK_MODELS (the profiles IAM allows)")
            choice = ModelChoice(plain_name(model_id), model_id, prices)
            if by_name.setdefault(choice.name, choice) != choice:
                raise ValueError(f"two configured models are both named {choice.name!r}")
        self._everyone = tuple(by_name[plain_name(m)] for m in dict.fromkeys(settings.claude_models))
        self._groups = {
            group: tuple(by_name[plain_name(m)] for m in dict.fromkeys(models))
            for group, models in settings.group_models.items()
        }
        self.all = tuple(by_name.values())

    @property
    def default(self) -> ModelChoice:
        return self._everyone[0]

    def choices(self, groups: Iterable[str] = ()) -> tuple[ModelChoice, ...]:
        """The caller's models: everyone's, then their groups' (each once), the default first."""
        found = dict.fromkeys(self._everyone)
        for group in groups:
            found.update(dict.fromkeys(self._groups.get(group, ())))
        return tuple(found)

    def choose(self, requested: str | None, groups: Iterable[str] = ()) -> ModelChoice:
        """The model a turn runs on: the one asked for, if the caller may use it; else ModelNotAllowed."""
        choices = self.choices(groups)
        if requested is None:
            return choices[0]
        for choice in choices:
            if requested in (choice.name, choice.model_id):
                return choice
        raise ModelNotAllowed(requested, [choice.name for choice in choices])

    def by_id(self, model_id: str) -> ModelChoice | None:
        """A configured model by its provider id (what a conversation remembers)."""
        return next((choice for choice in self.all if model_id in (choice.model_id, choice.name)), None)
