"""Process settings from the command line (not the profile, which can change while running)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700
DATA_DIR_ENV = "LLMOPS_DATA_DIR"


def data_dir() -> Path:
    """Where llmops keeps its files (database, converted models): `$LLMOPS_DATA_DIR`, else the user data dir.

    The variable lets tests and a second install keep their files apart from the user's.
    """
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("llmops"))


def default_db_path() -> Path:
    return data_dir() / "llmops.db"


def default_profile_path() -> Path:
    """`profiles/default.yaml` of the checkout the package is installed from (`pip install -e .`)."""
    return Path(__file__).resolve().parent.parent / "profiles" / "default.yaml"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    profile_path: Path
    db_path: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    watch_profile: bool = True

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)
