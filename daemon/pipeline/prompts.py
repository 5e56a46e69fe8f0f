"""The prompt stage, first of all: a call that names a prompt (`"prompt": {...}` in the body, or
the `x-llmops-prompt` header) gets its version's rendered messages, before the call's own, and its
model and parameters (the call's own parameters win; the prompt's model wins, since the openai
SDK makes every call name one). The prompt's name, version and label go on the trace; its version
joins the cache's namespace.

An experiment running on the prompt stands in for its label: a call in the experiment's scope that
asks for that label (or for none) gets the arm its user is assigned to (sticky), and the arm's
version and model; in `shadow`, the control serves and a share of calls is copied to the other
arms once answered (pipeline/shadow.py). A call that pins a version takes no part.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from daemon.config.schema import Profile
from daemon.core.experiment import Arm, Experiment
from daemon.errors import InvalidRequest
from daemon.experiments.book import ExperimentBook
from daemon.pipeline.context import Context, Outcome
from daemon.pipeline.shadow import Shadows
from daemon.pipeline.stage import Answer, Stage
from daemon.prompts.registry import Registry, Version
from daemon.prompts.render import RenderError

if TYPE_CHECKING:
    from daemon.runtime import ModelEntry
    from daemon.services import Services


@dataclass(frozen=True, slots=True)
class PromptUse:
    name: str
    version: int
    label: str | None


@dataclass(frozen=True, slots=True)
class ShadowArms:
    experiment: Experiment
    arms: tuple[Arm, ...]
    variables: dict[str, Any]
    own_messages: list[Any]  # the call's own messages, after the rendered ones


class PromptStage(Stage):
    name = "prompts"

    def __init__(
        self, registry: Registry, experiments: ExperimentBook, shadows: Shadows,
        draw: Callable[[], float] = random.random,
    ) -> None:  # fmt: skip
        self.registry = registry
        self.experiments = experiments
        self.shadows = shadows
        self.draw = draw

    async def before(self, ctx: Context) -> Answer | None:
        body = ctx.body
        asked = body.get("prompt")
        if asked is None:
            return None
        name, trace = asked["name"], ctx.trace
        variables = asked.get("variables") or {}
        experiment = self._experiment(ctx, asked)
        arm, label = None, None
        if experiment is not None:
            arm = experiment.assign(trace.user or trace.key_id or "-")
            version, label = self.registry.resolve(name, version=arm.version)[0], experiment.label
            trace.experiment, trace.arm = experiment.name, arm.name
            shadows = experiment.shadows_for(self.draw())
            if shadows:
                ctx.state["experiment_shadows"] = ShadowArms(
                    experiment, shadows, variables, body.get("messages") or []
                )
        else:
            version, label = self.registry.resolve(name, asked.get("label"), asked.get("version"))
        ctx.body = self._call(ctx, version, variables, body, arm)
        trace.prompt_name, trace.prompt_version, trace.prompt_label = name, version.version, label
        ctx.state["prompt"] = PromptUse(name, version.version, label)
        how = f"experiment {experiment.name}: arm {arm.name}" if experiment and arm else None
        ctx.decide(
            self.name, f"{name}@{version.version}", how or (f"label {label}" if label else "by version")
        )
        return None

    def after(self, ctx: Context, outcome: Outcome) -> None:
        planned: ShadowArms | None = ctx.state.get("experiment_shadows")
        if planned is None or outcome.status != "ok":
            return
        for arm in planned.arms:
            version, _ = self.registry.resolve(planned.experiment.prompt, version=arm.version)
            model = arm.model or version.spec.model or ctx.trace.served_model
            entry = ctx.runtime.models.get(model or "") or ctx.runtime.models.get(
                ctx.trace.served_model or ""
            )
            if entry is None:
                continue  # an arm whose model is a route: its copy goes to the served model
            body = self._render(
                version, planned.variables, {**ctx.body, "messages": planned.own_messages}, arm
            )
            self.shadows.copy(ctx, entry, body, f"experiment:{planned.experiment.name}",
                              planned.experiment.name, arm.name)  # fmt: skip

    def _experiment(self, ctx: Context, asked: dict[str, Any]) -> Experiment | None:
        experiment = self.experiments.running.get(asked["name"])
        if experiment is None or asked.get("version") is not None:
            return None
        if asked.get("label") not in (None, experiment.label):
            return None
        trace = ctx.trace
        return (
            experiment if experiment.scope.includes(ctx.principal.key_name, trace.user, trace.team) else None
        )

    def _call(
        self, ctx: Context, version: Version, variables: dict[str, Any], body: dict[str, Any], arm: Arm | None
    ) -> dict[str, Any]:
        call = self._render(version, variables, body, arm)
        model = call.get("model")
        if model != body.get("model"):
            named = ctx.runtime.find(model)
            ctx.candidates = [named] if named is not None else []  # a route: the routing stage's
            ctx.trace.requested_model = model
        return call

    def _render(
        self, version: Version, variables: dict[str, Any], body: dict[str, Any], arm: Arm | None
    ) -> dict[str, Any]:
        try:
            rendered = version.compiled.render(variables)
        except RenderError as exc:
            raise InvalidRequest(
                f"Prompt {version.name!r} version {version.version}: {exc}.", param="prompt.variables",
                code="prompt_variables",
            ) from None  # fmt: skip
        spec = version.spec
        call = {**spec.params, **{k: v for k, v in body.items() if k != "prompt"}}
        call["messages"] = [*rendered, *(body.get("messages") or [])]
        model = (arm.model if arm is not None else None) or spec.model
        if model is not None:
            call["model"] = model
        return call


def build(profile: Profile, services: Services, models: Mapping[str, ModelEntry]) -> Stage | None:
    # Always: a prompt may be pushed through the API at any time, and a call that names none costs
    # one dict lookup here.
    return PromptStage(services.prompts.registry, services.experiments, services.shadows)
