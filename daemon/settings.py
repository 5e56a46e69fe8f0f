"""Process settings from the command line (not the profile, which can change while running)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("llmops")) / "llmops.db"


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
