"""A real daemon served by uvicorn on 127.0.0.1 in a thread of the test process: for tests that
give it something a subprocess cannot take, such as their own pipeline stages. Clients still talk
to it over real HTTP."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from daemon.app import create_app, prepare_database
from daemon.config.loader import load_profile
from daemon.pipeline.stage import StageFactory
from daemon.settings import Settings
from tests.daemon_process import UPSTREAM_KEY
from tests.fixtures.fake_openai import free_port


@dataclass
class InProcessDaemon:
    profile: Path
    db: Path
    stages: Sequence[StageFactory]
    port: int = field(default_factory=free_port)
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> InProcessDaemon:
        os.environ.setdefault(
            "FAKE_KEY", UPSTREAM_KEY
        )  # what fake_profile's models read, as subprocesses get
        settings = Settings(profile_path=self.profile, db_path=self.db, port=self.port, watch_profile=False)
        prepare_database(self.db)
        app = create_app(settings, load_profile(self.profile), self.stages)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="inprocess-daemon", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process daemon did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(30)
