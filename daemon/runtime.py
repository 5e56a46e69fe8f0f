"""The live profile and its providers, swapped atomically on reload.

A request pins the Runtime it started with, so a reload never changes a call in flight.
Providers whose model entry did not change are carried over (a loaded GGUF stays loaded);
the others are closed once the last request using the old runtime has finished.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.config.schema import LlamaCppModel, ModelConfig, Profile
from daemon.core.cost import UnitPrice, reference_price
from daemon.errors import ModelNotFound
from daemon.providers.base import Provider

log = logging.getLogger(__name__)


def build_provider(name: str, config: ModelConfig) -> Provider:
    # Imported here so that a profile without local models never imports llama_cpp.
    if config.provider == "llama_cpp":
        from daemon.providers.llama_local import LlamaCppProvider

        return LlamaCppProvider(name, config)
    if config.provider == "anthropic":
        from daemon.providers.anthropic import AnthropicProvider

        return AnthropicProvider(name, config)
    from daemon.providers.openai_compat import OpenAICompatProvider

    return OpenAICompatProvider(name, config)


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    config: ModelConfig
    provider: Provider
    price: UnitPrice | None
    shadow_price: UnitPrice | None

    @property
    def upstream_model(self) -> str:
        return getattr(self.config, "upstream_model", None) or self.name


def _unit(price: Any) -> UnitPrice | None:
    return UnitPrice(price.input, price.output, price.cached_input) if price is not None else None


def _shadow_price(config: ModelConfig, profile: Profile) -> UnitPrice | None:
    if not isinstance(config, LlamaCppModel) or config.shadow_price is None:
        return None
    ref = config.shadow_price
    if not isinstance(ref, str):
        return _unit(ref)
    other = profile.models.get(ref)
    return _unit(other.price) if other is not None else reference_price(ref)


@dataclass
class Runtime:
    profile: Profile
    path: Path | None
    models: dict[str, ModelEntry]
    loaded_at: float = field(default_factory=time.time)
    in_flight: int = 0
    drained: asyncio.Event = field(default_factory=asyncio.Event)

    def model(self, name: str | None) -> ModelEntry:
        if not name and self.profile.default_model:
            name = self.profile.default_model
        entry = self.models.get(name or "")
        if entry is None:
            available = ", ".join(sorted(self.models)) or "(none)"
            raise ModelNotFound(
                f"The model {name!r} does not exist. Available models: {available}.", param="model"
            )
        return entry

    @contextmanager
    def pinned(self) -> Iterator[Runtime]:
        self.in_flight += 1
        self.drained.clear()
        try:
            yield self
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self.drained.set()


def build_runtime(profile: Profile, path: Path | None, previous: Runtime | None) -> Runtime:
    carried = previous.models if previous else {}
    models = {}
    for name, config in profile.models.items():
        old = carried.get(name)
        provider = old.provider if old is not None and old.config == config else build_provider(name, config)
        models[name] = ModelEntry(name, config, provider, _unit(config.price), _shadow_price(config, profile))
    runtime = Runtime(profile, path, models)
    runtime.drained.set()
    return runtime


async def retire(old: Runtime, new: Runtime | None) -> None:
    """Close the old runtime's providers that the new one does not use, after its requests finish."""
    keep = {id(e.provider) for e in new.models.values()} if new else set()
    await old.drained.wait()
    for entry in old.models.values():
        if id(entry.provider) not in keep:
            try:
                await entry.provider.aclose()
            except Exception:
                log.exception("closing provider %s failed", entry.name)


async def start_eager(runtime: Runtime) -> None:
    for entry in runtime.models.values():
        if isinstance(entry.config, LlamaCppModel) and entry.config.load == "eager":
            start = getattr(entry.provider, "start", None)
            if start is not None:
                try:
                    await start()
                except Exception as exc:  # the model stays unavailable; calls report why
                    log.error("model %s failed to load: %s", entry.name, exc)
