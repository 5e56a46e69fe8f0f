"""The live profile, its providers and its stages, swapped atomically on reload.

A request pins the Runtime it started with, so a reload never changes a call in flight.
Providers whose model entry did not change are carried over (a loaded GGUF stays loaded). A
provider is closed once no runtime that still serves calls uses it: reloads A -> B -> C that carry
a provider from A to B and drop it in C close it only after A's and B's last calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.config.schema import LlamaCppModel, ModelConfig, Profile
from daemon.core.cost import UnitPrice, reference_price
from daemon.core.health import Health
from daemon.errors import ModelNotFound
from daemon.pipeline.stage import StageFactory, StageList, build_stages
from daemon.providers.base import Provider

if TYPE_CHECKING:
    from daemon.services import Services

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
    defaults: dict[str, Any] = field(default_factory=dict)  # request parameters a call gets if unset

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
    stages: StageList = field(default_factory=StageList)
    health: Health = field(default_factory=Health)  # the models' breakers and latencies, kept on reload
    loaded_at: float = field(default_factory=time.time)
    in_flight: int = 0
    drained: asyncio.Event = field(default_factory=asyncio.Event)

    def find(self, name: str | None) -> ModelEntry | None:
        """The model a request names, or the profile's default when it names none."""
        return self.models.get(name or self.profile.default_model or "")

    def model(self, name: str | None) -> ModelEntry:
        entry = self.find(name)
        if entry is None:
            raise self.unknown_model(name)
        return entry

    def unknown_model(self, name: str | None) -> ModelNotFound:
        available = ", ".join(sorted(self.models)) or "(none)"
        if self.profile.routes:
            available += f"; routes: {', '.join(sorted(self.profile.routes))}"
        if not name:
            return ModelNotFound(
                f"The request names no model and this profile has no default_model. Available models: "
                f"{available}.",
                param="model",
            )
        message = f"The model {name!r} does not exist. Available models: {available}."
        return ModelNotFound(message, param="model")

    def pin(self) -> None:
        """A call starts on this runtime; `unpin` when its trace is recorded."""
        self.in_flight += 1
        self.drained.clear()

    def unpin(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.drained.set()


def build_runtime(
    profile: Profile,
    path: Path | None,
    previous: Runtime | None,
    stages: Sequence[StageFactory] = (),
    services: Services | None = None,
) -> Runtime:
    carried = previous.models if previous else {}
    models = {}
    for name, config in profile.models.items():
        old = carried.get(name)
        provider = old.provider if old is not None and old.config == config else build_provider(name, config)
        defaults = config.defaults.model_dump(exclude_none=True) if config.defaults else {}
        price, shadow = _unit(config.price), _shadow_price(config, profile)
        models[name] = ModelEntry(name, config, provider, price, shadow, defaults)
    health = previous.health if previous is not None else Health()
    breaker = profile.circuit_breaker
    if breaker is None:
        health.configure(False)
    else:
        health.configure(True, breaker.failures, breaker.cooldown, breaker.max_cooldown)
    runtime = Runtime(profile, path, models, build_stages(stages, profile, services, models), health)
    runtime.drained.set()
    return runtime


class Runtimes:
    """The current runtime, and the ones it replaced until their last call has ended."""

    def __init__(self, current: Runtime) -> None:
        self.current = current
        self._retired: list[Runtime] = []
        self._reapers: set[asyncio.Task[None]] = set()

    def replace(self, new: Runtime) -> asyncio.Task[None]:
        """Serve new calls on `new`; the returned task ends once the old runtime's calls have and
        it has closed what no live runtime uses."""
        old, self.current = self.current, new
        self._retired.append(old)
        task = asyncio.create_task(self._reap(old))
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)
        return task

    async def _reap(self, old: Runtime) -> None:
        await old.drained.wait()
        self._retired.remove(old)
        await _close_unused(old.models.values(), (self.current, *self._retired))

    async def close(self) -> None:
        """At shutdown, once calls have ended: close every provider."""
        for runtime in (*self._retired, self.current):
            await runtime.drained.wait()
        if self._reapers:
            await asyncio.gather(*self._reapers)
        await _close_unused(self.current.models.values(), ())


async def _close_unused(entries: Any, live: Sequence[Runtime]) -> None:
    """Close the providers of `entries` that no runtime in `live` uses."""
    used = {id(entry.provider) for runtime in live for entry in runtime.models.values()}
    for entry in entries:
        if id(entry.provider) not in used:
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
