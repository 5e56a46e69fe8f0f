"""The prompt stage, first of all: a call that names a prompt (`"prompt": {...}` in the body, or
the `x-llmops-prompt` header) gets its version's rendered messages, before the call's own, and its
model and parameters (the call's own parameters win; the prompt's model wins, since the openai
SDK makes every call name one). The prompt's name, version and label go on the trace; its version
joins the cache's namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from daemon.config.schema import Profile
from daemon.errors import InvalidRequest
from daemon.pipeline.context import Context
from daemon.pipeline.stage import Answer, Stage
from daemon.prompts.registry import Registry
from daemon.prompts.render import RenderError

if TYPE_CHECKING:
    from daemon.runtime import ModelEntry
    from daemon.services import Services


@dataclass(frozen=True, slots=True)
class PromptUse:
    name: str
    version: int
    label: str | None


class PromptStage(Stage):
    name = "prompts"

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def before(self, ctx: Context) -> Answer | None:
        body = ctx.body
        asked = body.get("prompt")
        if asked is None:
            return None
        name = asked["name"]
        version, label = self.registry.resolve(name, asked.get("label"), asked.get("version"))
        try:
            rendered = version.compiled.render(asked.get("variables") or {})
        except RenderError as exc:
            raise InvalidRequest(
                f"Prompt {name!r} version {version.version}: {exc}.",
                param="prompt.variables",
                code="prompt_variables",
            ) from None
        spec = version.spec
        call = {**spec.params, **{k: v for k, v in body.items() if k != "prompt"}}
        call["messages"] = [*rendered, *(body.get("messages") or [])]
        if spec.model is not None and spec.model != body.get("model"):
            call["model"] = spec.model
            named = ctx.runtime.find(spec.model)
            ctx.candidates = [named] if named is not None else []  # a route: the routing stage's
            ctx.trace.requested_model = spec.model
        ctx.body = call
        trace = ctx.trace
        trace.prompt_name, trace.prompt_version, trace.prompt_label = name, version.version, label
        ctx.state["prompt"] = PromptUse(name, version.version, label)
        ctx.decide(self.name, f"{name}@{version.version}", f"label {label}" if label else "by version")
        return None


def build(profile: Profile, services: Services, models: Mapping[str, ModelEntry]) -> Stage | None:
    # Always: a prompt may be pushed through the API at any time, and a call that names none costs
    # one dict lookup here.
    return PromptStage(services.prompts.registry)
