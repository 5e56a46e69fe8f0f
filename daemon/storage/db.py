"""Connection factory: aiosqlite readers over a SQLite module that can load sqlite-vec.

Many Python builds (pyenv, some macOS) lack `enable_load_extension`; then we use `sqlean.py`,
a SQLite build that has it, as aiosqlite's connector.
"""

from __future__ import annotations

import sqlite3
from functools import cache
from pathlib import Path
from typing import Any

import aiosqlite
import sqlite_vec

BUSY_TIMEOUT_MS = 5000
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # In WAL mode NORMAL survives a killed process (kill -9); only an OS crash can lose the last commits.
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA temp_store=MEMORY",
)


@cache
def sqlite_module() -> Any:
    probe = sqlite3.connect(":memory:")
    try:
        if hasattr(probe, "enable_load_extension"):
            return sqlite3
    finally:
        probe.close()
    import sqlean

    return sqlean


def connect_sync(path: Path | str) -> Any:
    """A blocking connection in autocommit mode with WAL and sqlite-vec loaded."""
    conn = sqlite_module().connect(str(path), isolation_level=None, check_same_thread=False)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.enable_load_extension(False)
    return conn


async def connect(path: Path | str) -> aiosqlite.Connection:
    """A reader connection; writes go through the single Writer."""
    conn = await aiosqlite.Connection(lambda: connect_sync(path), iter_chunk_size=256)
    conn.row_factory = sqlite_module().Row
    return conn
