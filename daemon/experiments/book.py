"""The experiments a daemon knows, mirrored from the database: the prompt stage asks which one is
running on a prompt (without I/O); changes go to the database first, then here."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import aiosqlite

from daemon.core.experiment import ACTIVE, Experiment, LifecycleError, act, ramped
from daemon.storage import experiments as store
from daemon.storage.writer import Writer


class ExperimentBook:
    def __init__(self, reader: aiosqlite.Connection, writer: Writer) -> None:
        self.reader = reader
        self.writer = writer
        self.experiments: dict[str, Experiment] = {}
        self.running: dict[str, Experiment] = {}  # by prompt: at most one active experiment a prompt
        self.mark: int | None = None  # the last transition's id when last read
        self._lock = asyncio.Lock()  # a change here and a reload never interleave (see PromptBook)

    async def load(self) -> None:
        async with self._lock:
            await self._load()

    async def _load(self) -> None:
        self.mark = await store.mark(self.reader)
        self.experiments = {e.name: e for e in await store.load_all(self.reader)}
        self._index()

    async def catch_up(self) -> bool:
        """Reload if another daemon created an experiment or moved one along its lifecycle."""
        async with self._lock:
            if await store.mark(self.reader) == self.mark:
                return False
            await self._load()
            return True

    def _index(self) -> None:
        self.running = {e.prompt: e for e in self.experiments.values() if e.state in ACTIVE}

    def get(self, name: str) -> Experiment:
        found = self.experiments.get(name)
        if found is None:
            known = ", ".join(sorted(self.experiments)) or "none yet"
            raise LookupError(f"There is no experiment {name!r}. Experiments: {known}.")
        return found

    async def create(self, experiment: Experiment, by: str | None) -> Experiment:
        async with self._lock:
            await self.writer.run(store.create_job(experiment, by))
            self.experiments[experiment.name] = experiment
        return experiment

    async def act(
        self, name: str, action: str, by: str | None, *, share: float | None = None, arm: str | None = None,
        note: str | None = None,
    ) -> Experiment:  # fmt: skip
        """Apply a lifecycle action: shadow [share], start, ramp ARM share, promote [ARM], stop."""
        async with self._lock:
            return await self._act(name, action, by, share, arm, note)

    async def _act(
        self, name: str, action: str, by: str | None, share: float | None, arm: str | None, note: str | None
    ) -> Experiment:
        before = self.get(name)
        state = act(before, action)
        after = replace(before, state=state)
        if action == "shadow" and share is not None:
            after = replace(after, shadow_share=share)
        if state in ACTIVE and (running := self.running.get(before.prompt)) not in (None, before):
            raise LifecycleError(
                f"Experiment {running.name!r} is already running on prompt {before.prompt!r}: stop or "
                "promote it first."
            )
        if action == "start" and share is not None:
            after = replace(after, arms=ramped(after, after.arms[-1].name, share))
        if action == "ramp":
            if share is None:
                raise LifecycleError("A ramp needs the arm's new share (e.g. --to 50).")
            after = replace(after, arms=ramped(after, arm or after.arms[-1].name, share))
        if action == "promote":
            winner = arm or before.winner
            if winner is None:
                raise LifecycleError(
                    "No winner is declared yet: name the arm to promote (it moves the label)."
                )
            after = replace(after, winner=after.arm(winner).name)
        await self.writer.run(store.transition_job(before, after, action, by, note))
        self.experiments[name] = after
        self._index()
        return after
