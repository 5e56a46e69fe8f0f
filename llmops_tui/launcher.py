"""`llmops up`: start the daemon in the background if none answers, wait until it can serve, open the console.

The default on exit is to stop the daemon `up` started (leave the machine as it was found; no prompt);
`--keep-running` leaves it serving. A daemon that was already running is never stopped.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx
import platformdirs
import yaml

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def eager_local_models(profile: Path) -> list[str]:
    """The profile's local models that load at start-up (worth waiting for), read from its YAML."""
    try:
        data = yaml.safe_load(profile.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    models = data.get("models") or {}
    return [
        name for name, spec in models.items()
        if isinstance(spec, dict) and spec.get("provider") == "llama_cpp" and spec.get("load") == "eager"
    ]  # fmt: skip


class Progress:
    """One updating line on a terminal; plain lines (one per phase) when the output is a file."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self._last = ""
        self._tick = 0

    def show(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        if self.tty:
            self._tick += 1
            self.stream.write(f"\r\033[K{SPINNER[self._tick % len(SPINNER)]} {text} {elapsed:.1f}s")
            self.stream.flush()
        elif text != self._last:
            print(f"llmops: {text}", file=self.stream, flush=True)
        self._last = text

    def done(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        print(f"llmops: {text}", file=self.stream, flush=True)


def start_daemon(args: argparse.Namespace, log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    command = [
        sys.executable, "-m", "daemon", "serve", "--profile", str(args.profile), "--db", str(args.db),
        "--host", args.host, "--port", str(args.port),
    ]  # fmt: skip
    # A session of its own: Ctrl-C in the console does not reach it, and it can outlive the console.
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip


def wait_until_ready(
    proc: subprocess.Popen[bytes], url: str, key: str | None, models: list[str], timeout: float,
    progress: Progress, sleep: Callable[[float], None] = time.sleep,
) -> str | None:  # fmt: skip
    """None once healthy with its eager models loaded; otherwise why not."""
    deadline = time.monotonic() + timeout
    while not healthy(url):
        if proc.poll() is not None:
            return f"the daemon exited with status {proc.returncode}"
        if time.monotonic() > deadline:
            return f"the daemon did not answer within {timeout:g} s"
        progress.show(f"starting the daemon (pid {proc.pid}) on {url}")
        sleep(0.2)
    headers = {"authorization": f"Bearer {key}"} if key else {}
    while models:
        try:
            status = httpx.get(f"{url}/admin/status", headers=headers, timeout=2.0).json()
        except (httpx.HTTPError, ValueError):
            status = {}
        states = {m["name"]: m for m in status.get("models", [])}
        if not states:  # no admin access: the console will show the models' state
            break
        # A model that failed to load is not waited for: the console shows why.
        waiting = [name for name in models if _still_loading(states.get(name))]
        if not waiting:
            break
        if proc.poll() is not None:
            return f"the daemon exited with status {proc.returncode}"
        if time.monotonic() > deadline:
            progress.done(f"still loading {', '.join(waiting)}; opening the console anyway")
            break
        doing = [f"{states[name].get('activity') or 'loading'} {name}" for name in waiting]
        progress.show(
            ", ".join(doing)
            + " (a conversion happens once, on first use)"
            * any(states[name].get("activity") == "converting" for name in waiting)
        )
        sleep(0.3)
    return None


def _still_loading(state: dict[str, Any] | None) -> bool:
    return state is not None and state.get("loaded") is False and not state.get("load_error")


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_daemon(proc: subprocess.Popen[bytes], progress: Progress) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()  # SIGTERM: uvicorn drains requests and the writer flushes every queued trace
    try:
        proc.wait(timeout=35)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    progress.done(f"stopped the daemon (pid {proc.pid}).")


def up(args: argparse.Namespace, console: Callable[[str, str | None], Any] | None = None) -> int:
    from llmops_tui.cli import run_console

    open_console = console or run_console
    url = f"http://{args.host}:{args.port}"
    progress = Progress(sys.stderr)
    if healthy(url):
        progress.done(f"a daemon already answers at {url}; attaching (it keeps running after you quit).")
        open_console(url, args.key)
        return 0
    log_path = Path(platformdirs.user_log_dir("llmops")) / "daemon.log"
    proc = start_daemon(args, log_path)
    failure = wait_until_ready(
        proc, url, args.key, eager_local_models(Path(args.profile)), args.timeout, progress
    )
    if failure is not None:
        progress.done(f"{failure}. Last lines of {log_path}:\n{log_tail(log_path)}")
        stop_daemon(proc, progress)
        return 1
    progress.done(f"daemon ready at {url} (pid {proc.pid}, log {log_path}).")
    try:
        open_console(url, args.key)
    finally:
        if args.keep_running:
            progress.done(
                f"the daemon keeps running at {url} (pid {proc.pid}); stop it with: kill {proc.pid}"
            )
        else:
            stop_daemon(proc, progress)
    return 0
