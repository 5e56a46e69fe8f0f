"""The typed profile. Unknown keys and bad values are rejected; secrets are `${ENV}` references only."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.config.limits import BudgetsConfig, CapsConfig, RateLimitsConfig
from daemon.config.routes import CircuitBreakerConfig, RouteConfig

ENV_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(Strict):
    """USD per 1M tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


class Timeouts(Strict):
    """Seconds. `read` bounds each wait for bytes, which a body trickled a byte at a time never
    trips: `total` bounds the whole call (every attempt and wait, the whole body or stream), and
    `idle` a stream's gap between two complete events (a stream of keep-alive bytes never trips
    `read` either)."""

    connect: float = Field(default=5.0, gt=0)
    read: float = Field(default=120.0, gt=0)
    total: float = Field(default=600.0, gt=0, description="the whole call, retries and body included")
    idle: float | None = Field(default=None, gt=0, description="a stream's gap between events; default: read")

    @property
    def idle_seconds(self) -> float:
        return self.read if self.idle is None else self.idle


class RequestDefaults(Strict):
    """Parameters a chat request gets when it does not set them itself: a small model that drifts
    needs a cap and a stop; a client's own values always win."""

    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop: list[str] | None = Field(default=None, max_length=4)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)


Capability = Literal["tools", "json", "vision"]


class _ModelBase(Strict):
    price: Price | None = None
    description: str = ""
    defaults: RequestDefaults | None = None
    fallbacks: list[str] = Field(default=[], description="models tried in order when this one fails")
    context_window: int | None = Field(
        default=None, ge=1, description="tokens in and out; default: n_ctx for a local model, else unknown"
    )
    supports: list[Capability] | None = Field(
        default=None, description="what a cost route may send it; default: json for a local model, all "
        "for a remote one"
    )  # fmt: skip


class LlamaCppModel(_ModelBase):
    provider: Literal["llama_cpp"]
    path: str = Field(min_length=1, description="a GGUF file, or package:<name> for a registry model")
    chat_format: str | None = None
    embedding: bool = False
    n_ctx: int = Field(default=4096, ge=128)
    n_threads: int | None = Field(default=None, ge=1)
    load: Literal["lazy", "eager"] = "lazy"
    shadow_price: str | Price | None = None
    # llama.cpp's penalty on tokens it has just produced (1 = none): tiny models loop without it
    repeat_penalty: float | None = Field(default=None, ge=1, le=2)


class RemoteModel(_ModelBase):
    base_url: str
    api_key: str | None = None
    upstream_model: str | None = Field(
        default=None, description="the name the upstream knows; default: this key"
    )
    timeout: Timeouts = Timeouts()
    retries: int = Field(default=2, ge=0, le=10)
    embedding: bool = False

    @field_validator("api_key")
    @classmethod
    def _env_reference_only(cls, value: str | None) -> str | None:
        if value is not None and not ENV_REFERENCE.match(value):
            raise ValueError("secrets must be written as ${ENV_VAR} references, never literally")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class OpenAIModel(RemoteModel):
    provider: Literal["openai"]


class AnthropicModel(RemoteModel):
    provider: Literal["anthropic"]
    base_url: str = "https://api.anthropic.com"
    anthropic_version: str = "2023-06-01"
    default_max_tokens: int = Field(default=1024, ge=1)


ModelConfig = Annotated[LlamaCppModel | OpenAIModel | AnthropicModel, Field(discriminator="provider")]


_READ_AT_START = "; read when `serve` starts: a profile reload does not change it"


class ServerConfig(Strict):
    """How the daemon serves HTTP. The deadlines and the cap protect it from slow and idle clients
    (daemon/api/http_protocol.py). They live in the profile rather than in `serve` flags so that one
    validated file says how a gateway serves, beside `max_body_bytes`; but uvicorn builds its
    listener once, so unlike the rest of the profile they take effect only at the next start."""

    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    header_timeout: float = Field(
        default=10.0, gt=0,
        description="seconds for a request's line and headers to arrive, from its first byte (a new "
        "connection's: from the connect); then a JSON 408, or a bare close if nothing came"
        + _READ_AT_START,
    )  # fmt: skip
    body_timeout: float = Field(
        default=30.0, gt=0,
        description="seconds for a request's whole body to arrive after its headers; then a JSON 408"
        + _READ_AT_START,
    )  # fmt: skip
    idle_timeout: float = Field(
        default=15.0, gt=0,
        description="seconds a keep-alive connection may wait for its next request; longer than the "
        "OpenAI SDK's (httpx's) 5 s pool expiry, so a client does not reuse a connection just as it "
        "closes" + _READ_AT_START,
    )  # fmt: skip
    max_connections: int = Field(
        default=1024, ge=1,
        description="open connections at most; one more is answered with a JSON 503 and closed"
        + _READ_AT_START,
    )  # fmt: skip


class TracesConfig(Strict):
    max_text_chars: int = Field(default=32_000, ge=0, description="truncate stored messages/response")


class SemanticCacheConfig(Strict):
    """A request like one seen before (the same but for its wording) is answered from the cache."""

    embedder: str = Field(description="a model of this profile with embedding: true (local or remote)")
    threshold: float | None = Field(
        default=None, ge=0, le=1,
        description="the score below which nothing matches; default: the verifier's operating point "
        "(or, without it, cosine 0.977): both kept QQP's hard negatives near 1 % false hits",
    )  # fmt: skip
    verify: bool = Field(default=True, description="rescore candidates with the verifier learnt on QQP")
    candidates: int = Field(default=10, ge=1, le=100, description="nearest entries looked at")
    skip: list[Literal["temperature", "tools", "code", "current"]] = Field(
        default=["temperature", "tools", "code", "current"],
        description="requests never matched by meaning (a look-alike answer to code or to the present harms)",
    )


class CacheConfig(Strict):
    """The response cache (daemon/cache/): an exact match of a request answers it from the cache."""

    scope: Literal["key", "user", "team", "global"] = Field(
        default="user", description="who may share an entry: a key, a user, a team, or everyone"
    )
    models: list[str] | None = Field(
        default=None, description="the models that use it; default: every chat model"
    )
    ttl: float = Field(default=86_400, gt=0, description="seconds an entry lives")
    max_entries: int = Field(default=10_000, ge=1, description="beyond this the least recently used go")
    max_temperature: float = Field(default=0.7, ge=0, le=2, description="hotter requests are not cached")
    skip: list[Literal["temperature", "tools", "code", "current"]] = Field(
        default=["temperature", "tools", "current"],
        description="requests not cached: above max_temperature, offering tools, asking for code, "
        "asking about the present",
    )
    semantic: SemanticCacheConfig | None = None


class Profile(Strict):
    name: str = "default"
    default_model: str | None = None
    models: dict[str, ModelConfig]
    server: ServerConfig = ServerConfig()
    traces: TracesConfig = TracesConfig()
    cache: CacheConfig | None = None
    budgets: BudgetsConfig | None = None
    rate_limits: RateLimitsConfig | None = None
    caps: CapsConfig | None = None
    routes: dict[str, RouteConfig] = Field(default={}, description="virtual model names that route")
    prompts: str | None = Field(
        default=None,
        description="the prompt folder (YAML files, hot-reloaded); default: prompts/ beside the profile",
    )
    circuit_breaker: CircuitBreakerConfig | None = None

    @model_validator(mode="after")
    def _references_exist(self) -> Profile:
        if not self.models:
            raise ValueError("models: at least one model is required")
        callable_names = self.models.keys() | self.routes.keys()
        if self.default_model is not None and self.default_model not in callable_names:
            raise ValueError(f"default_model: {self.default_model!r} is not one of models or routes")
        for name in (self.cache.models or []) if self.cache else []:
            if name not in callable_names:
                raise ValueError(f"cache.models: {name!r} is not one of models or routes")
        for name in self.caps.models if self.caps else ():
            if name not in callable_names:
                raise ValueError(f"caps.models: {name!r} is not one of models or routes")
        self._routes_valid()
        semantic = self.cache.semantic if self.cache else None
        if semantic is not None:
            embedder = self.models.get(semantic.embedder)
            if embedder is None or not embedder.embedding:
                raise ValueError(
                    f"cache.semantic.embedder: {semantic.embedder!r} is not an embedding model of models"
                )
        return self

    def _routes_valid(self) -> None:
        for name, model in self.models.items():
            for other in model.fallbacks:
                target = self.models.get(other)
                if target is None or target.embedding != model.embedding or other == name:
                    kind = "an embedding" if model.embedding else "a chat"
                    raise ValueError(f"models.{name}.fallbacks: {other!r} is not another {kind} model")
        for name, route in self.routes.items():
            if name in self.models:
                raise ValueError(f"routes.{name}: a model has this name already")
            for named in route.models_named():
                config = self.models.get(named)
                if config is None or config.embedding:
                    raise ValueError(f"routes.{name}: {named!r} is not a chat model of models")
