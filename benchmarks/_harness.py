"""Shared by the benchmarks: separate processes on 127.0.0.1, health waits, a tiny keep-alive
HTTP/1.1 client (low overhead, no dependencies), percentiles and CPU accounting."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
UPSTREAM_KEY = "sk-fake-upstream-secret"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Processes(AbstractContextManager["Processes"]):
    """Child processes that are stopped (SIGTERM, then SIGKILL) on exit, each by its own pid."""

    def __init__(self, workdir: Path | None = None) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="llmops-bench-")
        self.dir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None,
              cwd: Path = REPO) -> subprocess.Popen[bytes]:  # fmt: skip
        log = (self.dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            args, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        self.procs.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def wait_http(self, name: str, port: int, path: str, timeout: float = 60.0) -> None:
        """Until GET path answers (any status), or fail with the process's log."""
        proc = dict(self.procs)[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")
            try:
                with Client(port, timeout=1.0) as client:
                    client.get(path)
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"{name} did not answer on port {port} within {timeout:.0f} s:\n{self.log(name)}")

    def __exit__(self, *exc: object) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self._tmp is not None:
            self._tmp.cleanup()


def start_daemon(procs: Processes, profile: Path, db: Path, env: dict[str, str] | None = None,
                 timeout: float = 120.0) -> int:  # fmt: skip
    port = free_port()
    args = [PYTHON, "-m", "daemon", "serve", "--profile", str(profile), "--db", str(db),
            "--port", str(port), "--log-level", "warning"]  # fmt: skip
    procs.start("daemon", args, env)
    procs.wait_http("daemon", port, "/health", timeout)
    return port


def start_fake_upstream(procs: Processes) -> int:
    port = free_port()
    procs.start("upstream", [PYTHON, "tests/fixtures/fake_openai.py", "--port", str(port)])
    procs.wait_http("upstream", port, "/v1/models")
    return port


def create_key(db: Path, name: str, *extra: str, cwd: Path = REPO) -> str:
    """`python -m daemon keys create` prints the secret on its last line."""
    done = subprocess.run([PYTHON, "-m", "daemon", "keys", "create", name, "--db", str(db), *extra],
                          cwd=cwd, capture_output=True, text=True, timeout=60)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"keys create failed: {done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Client:
    """A blocking keep-alive HTTP/1.1 client: one socket, prebuilt requests, a minimal parser
    (Content-Length or chunked). Its own cost shows up equally in direct and gateway runs."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb", buffering=65536)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    @staticmethod
    def build(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method == "POST":
            lines += ["content-type: application/json", f"content-length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def send(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        self.sock.sendall(raw)
        return self.read_response()

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return self.send(self.build("GET", path, headers=headers))

    def read_response(self) -> tuple[int, dict[str, str], bytes]:
        status_line = self.file.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while (line := self.file.readline()) not in (b"\r\n", b"\n", b""):
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = self.file.read(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int(self.file.readline().split(b";")[0], 16):
                parts.append(self.file.read(size))
                self.file.readline()
            self.file.readline()  # the blank line after the last chunk (no trailers sent)
            body = b"".join(parts)
        else:
            body = self.file.read()
        return status, headers, body


def run_loop(port: int, raw: bytes, seconds: float) -> tuple[list[float], list[dict[str, str]], int]:
    """Concurrency 1: send `raw` back to back for `seconds`; latencies in ms, headers, failures."""
    latencies: list[float] = []
    headers: list[dict[str, str]] = []
    failures = 0
    with Client(port) as client:
        deadline = time.perf_counter() + seconds
        while (start := time.perf_counter()) < deadline:
            status, hdrs, _ = client.send(raw)
            latencies.append((time.perf_counter() - start) * 1000)
            headers.append(hdrs)
            failures += status != 200
    return latencies, headers, failures
