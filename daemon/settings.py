"""Process settings from the command line (not the profile, which can change while running)."""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700
DATA_DIR_ENV = "LLMOPS_DATA_DIR"
KEY_ENV = "LLMOPS_API_KEY"


def data_dir() -> Path:
    """Where llmops keeps its files (database, converted models): `$LLMOPS_DATA_DIR`, else the user data dir.

    The variable lets tests and a second install keep their files apart from the user's.
    """
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("llmops"))


def beside(profile_path: Path | None, setting: str) -> Path:
    """A path a profile names: as written if absolute (or under ~), else relative to the profile's
    folder (to the working directory for a profile read from no file)."""
    path = Path(setting).expanduser()
    return path if path.is_absolute() or profile_path is None else profile_path.parent / path


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


def add_key_options(
    parser: argparse.ArgumentParser, what: str = "admin API key", repeatable: bool = False
) -> None:
    """--key / --key-file for a command that calls the daemon; `resolve_keys` reads them."""
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--key",
        action="append" if repeatable else "store",
        help=f"{what}; default ${KEY_ENV}. Other users of this machine can read a --key in `ps`: prefer "
        f"${KEY_ENV} or --key-file" + ("; repeat it to spread calls over keys" if repeatable else ""),
    )
    given.add_argument(
        "--key-file", type=Path, help="read the key from this file's first line (chmod 600 it)"
    )
    parser.set_defaults(key_list=repeatable)


def resolve_keys(args: argparse.Namespace) -> None:
    """Set `args.key` from --key, else --key-file, else $LLMOPS_API_KEY: a list for a repeatable
    --key, else one key or None."""
    if args.key_file is not None:
        try:
            lines = args.key_file.expanduser().read_text(encoding="utf-8").split()
        except OSError as exc:
            raise SystemExit(
                f"llmops: cannot read --key-file {args.key_file}: {exc.strerror or exc}"
            ) from None
        keys = lines[:1]
    elif args.key:
        keys = args.key if isinstance(args.key, list) else [args.key]
    else:
        keys = [key for key in [os.environ.get(KEY_ENV)] if key]
    args.key = keys if args.key_list else (keys[0] if keys else None)
