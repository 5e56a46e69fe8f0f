from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_process import DaemonProcess, fake_profile
from tests.fixtures.fake_openai import FakeOpenAI


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _clear_faults(request: pytest.FixtureRequest) -> None:
    if "fake_upstream" in request.fixturenames:
        request.getfixturevalue("fake_upstream").inject()


@pytest.fixture(scope="module")
def gateway(fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One daemon per test module, serving the fake upstream in local (keyless) mode."""
    folder = tmp_path_factory.mktemp("gateway")
    profile = folder / "profile.yaml"
    profile.write_text(fake_profile(fake_upstream.base_url))
    daemon = DaemonProcess(profile=profile, db=folder / "llmops.db").start()
    yield daemon
    daemon.stop()


@pytest.fixture
def new_daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    """A daemon made by the test itself (profile written, not started yet)."""
    daemon = DaemonProcess(profile=tmp_path / "profile.yaml", db=tmp_path / "llmops.db")
    yield daemon
    daemon.stop()
