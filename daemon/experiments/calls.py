"""Each experiment's calls as numbers, kept in memory: read once, then only what is new (calls
after the last seq, ratings after the last feedback id), so a console reading results every few
seconds costs a few new rows, not 100k. Blocking: run it in a thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from daemon.core.experiment import Experiment
from daemon.experiments.summary import Calls
from daemon.storage.db import connect_sync
from daemon.storage.experiments import read_calls

Floats = npt.NDArray[np.float64]


@dataclass
class _Table:
    calls: Floats = field(default_factory=lambda: np.zeros((0, 8)))  # oldest first
    ratings: Floats = field(default_factory=lambda: np.zeros((0, 4)))  # in the order given
    last_seq: int = 0
    last_rating: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    built: tuple[tuple[int, int, float], Calls] | None = None  # the last Calls made, and from what


class CallCache:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._tables: dict[str, _Table] = {}
        self._lock = threading.Lock()  # guards the tables and the connection
        self._conn: Any = None  # opened on first use, kept: opening one costs tens of ms

    def calls(self, experiment: Experiment, since: float) -> Calls:
        with self._lock:
            table = self._tables.setdefault(experiment.name, _Table())
            if self._conn is None:
                self._conn = connect_sync(self.db_path)
            calls, ratings = read_calls(self._conn, experiment, table.last_seq, table.last_rating)
        with table.lock:
            self._add(table, calls, ratings)
            made_from = (table.last_seq, table.last_rating, since)
            if table.built is None or table.built[0] != made_from:
                recent = table.calls[table.calls[:, 1] >= since]
                table.built = made_from, Calls.of(recent, table.ratings[:, 1:])
            return table.built[1]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _add(self, table: _Table, calls: list[Any], ratings: list[Any]) -> None:
        if calls:
            new = np.array(calls, dtype=np.float64).reshape(-1, 8)
            merged = np.concatenate([table.calls, new])
            # Calls are written about in time order; one that ended late (a long stream) moves back.
            if len(table.calls) and new[:, 1].min() < table.calls[-1, 1] or not _sorted(new[:, 1]):
                merged = merged[np.argsort(merged[:, 1], kind="stable")]
            table.calls = merged
            table.last_seq = int(new[:, 7].max())
        if ratings:
            new = np.array(ratings, dtype=np.float64).reshape(-1, 4)
            table.ratings = np.concatenate([table.ratings, new[np.argsort(new[:, 0], kind="stable")]])
            table.last_rating = int(new[:, 0].max())


def _sorted(values: Floats) -> bool:
    return bool(np.all(values[1:] >= values[:-1]))
