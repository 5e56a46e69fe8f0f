"""Prompt experiments, pure: arms, sticky assignment, scope, and the lifecycle's rules.

The lifecycle: `draft` (created; serves nothing differently) -> `shadow` (the control serves; a
share of calls is copied to the other arms in the background, recorded, never returned) -> `ab`
(calls split by the arms' weights) -> `rollout` (the candidate's share raised in steps) ->
`promoted` (the label moved to the winner; ended) or `stopped` (ended, nothing changed). Shadow
may be skipped; `ab` and `rollout` differ only in name and in who may ramp (rollout is ramping).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from daemon.core.routing import unit_hash, weighted_pick

ACTIVE = ("shadow", "ab", "rollout")
ENDED = ("promoted", "stopped")
# action -> the states it may start from, and the state it leads to
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "shadow": (("draft",), "shadow"),
    "start": (("draft", "shadow"), "ab"),
    "ramp": (("ab", "rollout"), "rollout"),
    "promote": (("shadow", "ab", "rollout"), "promoted"),
    "stop": (("draft", "shadow", "ab", "rollout"), "stopped"),
}


class LifecycleError(ValueError):
    """An action its experiment's state does not allow."""


@dataclass(frozen=True, slots=True)
class Arm:
    name: str
    version: int  # the prompt version it serves
    model: str | None = None  # a model or route instead of the prompt's own
    weight: float = 1.0  # its share of the traffic in `ab` and `rollout`, relative to the others

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "model": self.model, "weight": self.weight}


@dataclass(frozen=True, slots=True)
class Scope:
    """Who takes part: no list means everyone."""

    keys: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()

    def includes(self, key_name: str | None, user: str | None, team: str | None) -> bool:
        if not (self.keys or self.users or self.teams):
            return True
        return (key_name in self.keys) or (user in self.users) or (team is not None and team in self.teams)

    def as_dict(self) -> dict[str, list[str]]:
        return {"keys": list(self.keys), "users": list(self.users), "teams": list(self.teams)}


@dataclass(frozen=True, slots=True)
class Experiment:
    name: str
    prompt: str
    arms: tuple[Arm, ...]  # the first is the control
    state: str = "draft"
    shadow_share: float = 1.0  # in `shadow`: the share of calls copied to the other arms
    metric: str = "rating"
    min_sample: int = 100
    alpha: float = 0.05
    label: str = "production"  # the label the experiment stands in for, and that promote moves
    scope: Scope = field(default_factory=Scope)
    winner: str | None = None

    @property
    def control(self) -> Arm:
        return self.arms[0]

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise LookupError(
            f"experiment {self.name!r} has no arm {name!r} (arms: {', '.join(a.name for a in self.arms)})"
        )

    def assign(self, subject: str) -> Arm:
        """The arm a user (or key) sees throughout: a hash of the experiment and the subject."""
        if self.state == "shadow":
            return self.control
        return self.arms[weighted_pick([a.weight for a in self.arms], unit_hash(self.name, subject))]

    def shadows_for(self, draw: float) -> tuple[Arm, ...]:
        """In shadow: the arms to copy a call to (`draw` in [0, 1))."""
        return self.arms[1:] if self.state == "shadow" and draw < self.shadow_share else ()

    def shares(self) -> dict[str, float]:
        total = sum(a.weight for a in self.arms)
        return {a.name: a.weight / total for a in self.arms}


def act(experiment: Experiment, action: str) -> str:
    """The state `action` leads to; LifecycleError if the experiment's state does not allow it."""
    allowed, leads_to = TRANSITIONS[action]
    if experiment.state not in allowed:
        needed = " or ".join(allowed)
        raise LifecycleError(
            f"Experiment {experiment.name!r} is {experiment.state}: {action} needs it {needed}."
        )
    return leads_to


def ramped(experiment: Experiment, arm_name: str, share: float) -> tuple[Arm, ...]:
    """The arms with `arm_name` at `share` of the traffic and the others sharing the rest as they did."""
    if not 0 < share < 1:
        raise LifecycleError(
            "A ramp's share is between 0 and 1 (0 % and 100 % end the experiment: promote, stop)."
        )
    target = experiment.arm(arm_name)
    others = [a for a in experiment.arms if a.name != target.name]
    rest = sum(a.weight for a in others) or 1.0
    return tuple(
        replace(a, weight=share)
        if a.name == target.name
        else replace(a, weight=(1 - share) * a.weight / rest)
        for a in experiment.arms
    )
