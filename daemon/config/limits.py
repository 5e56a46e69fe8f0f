"""The profile's limits on spending: `budgets:`, `rate_limits:` and `caps:`."""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BudgetLimit(_Strict):
    """At most `usd` and/or `tokens` per calendar `per` (day, week, month) or in `total`."""

    per: Literal["day", "week", "month", "total"]
    usd: float | None = Field(default=None, gt=0)
    tokens: int | None = Field(default=None, ge=1)
    warn_at: float | None = Field(default=None, gt=0, le=1, description="default: budgets.warn_at")

    @model_validator(mode="after")
    def _says_how_much(self) -> BudgetLimit:
        if self.usd is None and self.tokens is None:
            raise ValueError("a budget needs usd, tokens or both")
        return self


def _listed(value: Any) -> Any:
    """A subject's budgets: one mapping, or a list of them (one per period)."""
    return [value] if isinstance(value, dict) else value


Budgets = list[BudgetLimit]


class BudgetsConfig(_Strict):
    """Per key, user and team; `default` applies to every user without a budget of their own."""

    timezone: str = Field(default="UTC", description="windows start at midnight here (weeks on Monday)")
    warn_at: float = Field(default=0.8, gt=0, le=1, description="warn once this share is spent or reserved")
    prompt_margin: float = Field(
        default=0.25, ge=0, le=4,
        description="the prompt's token estimate (tiktoken) is raised by this share when reserving: a "
        "model's own tokenizer may count more",
    )  # fmt: skip
    unbounded_max_tokens: int = Field(
        default=4096, ge=1,
        description="a budgeted call that sets no max_tokens, on a model with no default, is capped here "
        "(its worst case must be finite)",
    )  # fmt: skip
    default: Budgets = []
    users: dict[str, Budgets] = {}
    keys: dict[str, Budgets] = Field(default={}, description="by key name")
    teams: dict[str, Budgets] = {}

    @field_validator("default", mode="before")
    @classmethod
    def _default_listed(cls, value: Any) -> Any:
        return _listed(value)

    @field_validator("users", "keys", "teams", mode="before")
    @classmethod
    def _subjects_listed(cls, value: Any) -> Any:
        return (
            {name: _listed(budgets) for name, budgets in value.items()} if isinstance(value, dict) else value
        )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (an IANA name such as Europe/Paris)") from None
        return value

    @model_validator(mode="after")
    def _one_per_period(self) -> BudgetsConfig:
        named = {"default": self.default}
        for kind, table in (("user", self.users), ("key", self.keys), ("team", self.teams)):
            named.update({f"{kind} {name}": budgets for name, budgets in table.items()})
        for who, budgets in named.items():
            periods = [b.per for b in budgets]
            if len(periods) != len(set(periods)):
                raise ValueError(f"{who}: one budget per period (day, week, month, total)")
        return self


class RateLimit(_Strict):
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1, description="prompt plus max_tokens, estimated")

    @model_validator(mode="after")
    def _says_how_much(self) -> RateLimit:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ValueError("a rate limit needs requests_per_minute, tokens_per_minute or both")
        return self


class RateLimitsConfig(_Strict):
    """Per key, user and team; `default` applies to every user without a limit of their own."""

    default: RateLimit | None = None
    users: dict[str, RateLimit] = {}
    keys: dict[str, RateLimit] = Field(default={}, description="by key name")
    teams: dict[str, RateLimit] = {}


class CapsConfig(_Strict):
    """The most a call may ask a model to write (`max_tokens`), and a default where it asks nothing."""

    default_max_tokens: int | None = Field(default=None, ge=1)
    models: dict[str, int] = Field(default={}, description="by requested model name")
    users: dict[str, int] = {}
    keys: dict[str, int] = Field(default={}, description="by key name")
    teams: dict[str, int] = {}

    @field_validator("models", "users", "keys", "teams")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for name, cap in value.items():
            if cap < 1:
                raise ValueError(f"{name}: a cap is at least 1 token")
        return value
