"""Experiments' pure rules: sticky assignment and its split over 10,000 users, the lifecycle, ramps."""

from __future__ import annotations

import math

import pytest

from daemon.core.experiment import Arm, Experiment, LifecycleError, Scope, act, ramped

USERS = [f"user-{i}" for i in range(10_000)]


def split_counts(experiment: Experiment, subjects: list[str]) -> dict[str, int]:
    """How `subjects` fall over the arms."""
    counts = {a.name: 0 for a in experiment.arms}
    for subject in subjects:
        counts[experiment.assign(subject).name] += 1
    return counts


def running(*weights: float, state: str = "ab") -> Experiment:
    arms = tuple(Arm(f"arm{i}", i + 1, weight=w) for i, w in enumerate(weights))
    return Experiment("exp", "p", arms, state)


@pytest.mark.parametrize("weights", [(1, 1), (80, 20), (1, 1, 2)])
def test_a_split_holds_its_proportions_over_10000_users(weights: tuple[float, ...]) -> None:
    experiment = running(*weights)
    counts = split_counts(experiment, USERS)
    for arm, share in experiment.shares().items():
        sd = math.sqrt(len(USERS) * share * (1 - share))
        assert abs(counts[arm] - share * len(USERS)) <= 4 * sd, (arm, counts)


def test_assignment_is_sticky_and_differs_between_experiments() -> None:
    one, other = running(1, 1), Experiment("other", "p", running(1, 1).arms, "ab")
    assert all(one.assign(u) == one.assign(u) for u in USERS[:500])
    same = sum(one.assign(u).name == other.assign(u).name for u in USERS)
    assert abs(same / len(USERS) - 0.5) < 0.03  # independent hashes


def test_a_ramp_moves_users_only_toward_the_ramped_arm() -> None:
    before = running(1, 1)
    after = Experiment(before.name, "p", ramped(before, "arm1", 0.8), "rollout")
    moved = [u for u in USERS if before.assign(u).name != after.assign(u).name]
    assert all(after.assign(u).name == "arm1" for u in moved)  # nobody leaves the ramped arm
    assert abs(split_counts(after, USERS)["arm1"] / len(USERS) - 0.8) < 0.02


def test_shadow_serves_the_control_and_copies_a_share() -> None:
    experiment = Experiment("e", "p", running(1, 1).arms, "shadow", shadow_share=0.25)
    assert {experiment.assign(u).name for u in USERS[:200]} == {"arm0"}
    assert experiment.shadows_for(0.1) == experiment.arms[1:] and experiment.shadows_for(0.3) == ()


@pytest.mark.parametrize(
    ("state", "action", "leads_to"),
    [("draft", "shadow", "shadow"), ("draft", "start", "ab"), ("shadow", "start", "ab"), ("ab", "ramp", "rollout"),
     ("rollout", "ramp", "rollout"), ("ab", "promote", "promoted"), ("shadow", "stop", "stopped")],
)  # fmt: skip
def test_the_lifecycle_allows(state: str, action: str, leads_to: str) -> None:
    assert act(running(1, 1, state=state), action) == leads_to


@pytest.mark.parametrize(
    ("state", "action"),
    [("draft", "ramp"), ("draft", "promote"), ("stopped", "start"), ("promoted", "stop"), ("ab", "shadow")],
)
def test_the_lifecycle_refuses(state: str, action: str) -> None:
    with pytest.raises(LifecycleError, match=f"is {state}: {action} needs it"):
        act(running(1, 1, state=state), action)


def test_a_scope_names_who_takes_part() -> None:
    assert Scope().includes(None, "anyone", None)
    scoped = Scope(users=("ann",), teams=("ml",))
    assert scoped.includes(None, "ann", None) and scoped.includes("k", "bob", "ml")
    assert not scoped.includes("k", "bob", "ops")
