"""How the console keeps up with a fast stream of traces: 200/s (the issue's bar) and 2,000/s.

The app runs headless (rendering included, output discarded) against a real daemon that is idle;
traces are delivered as the client delivers them, in batches every 100 ms, straight into the app.
Measured: the time the traces screen spends per batch, and event-loop lag (how late a 10 ms timer
fires), which is what a person feels as stutter. Prints a ratio against the 100 ms batch interval.

Run: .venv/bin/python benchmarks/console_live_traces.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmops_tui.app import LlmopsApp  # noqa: E402
from llmops_tui.client import BATCH_SECONDS, DaemonClient  # noqa: E402
from llmops_tui.messages import TracesReceived  # noqa: E402
from llmops_tui.screens.traces import TracesScreen  # noqa: E402
from tests.daemon_process import DaemonProcess, fake_profile  # noqa: E402
from tests.fixtures.fake_openai import FakeOpenAI  # noqa: E402

SECONDS = 10


def trace(seq: int) -> dict[str, Any]:
    return {
        "seq": seq, "id": f"tr_bench{seq:09d}", "ts": time.time(), "endpoint": "chat",
        "user": f"user{seq % 7}", "team": None, "requested_model": "fake", "served_model": "fake",
        "provider": "openai",
        "stream": bool(seq % 2), "status": "error" if seq % 50 == 0 else "ok",
        "http_status": 502 if seq % 50 == 0 else 200, "error": None, "finish_reason": "stop",
        "prompt_tokens": 40 + seq % 30, "completion_tokens": 90 + seq % 40, "cached_tokens": 0,
        "cost_usd": 0.00021, "shadow_cost_usd": 0.0, "latency_ms": 300.0 + (seq % 13) * 250,
        "ttft_ms": 80.0, "overhead_ms": 0.8, "cache": None, "route": None,
    }  # fmt: skip


async def measure(url: str, per_second: int) -> dict[str, float]:
    app = LlmopsApp(DaemonClient(url))
    batch_ms: list[float] = []
    lags: list[float] = []
    original = TracesScreen.on_traces_received

    def timed(self: TracesScreen, message: TracesReceived) -> None:
        started = time.perf_counter()
        original(self, message)
        batch_ms.append((time.perf_counter() - started) * 1000)

    TracesScreen.on_traces_received = timed  # type: ignore[method-assign]
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            while not (isinstance(app.screen, TracesScreen) and app.screen.loaded):
                await pilot.pause(0.05)
            expected = time.perf_counter() + 0.01

            def tick() -> None:
                nonlocal expected
                now = time.perf_counter()
                lags.append(max(now - expected, 0) * 1000)
                expected = now + 0.01

            app.set_interval(0.01, tick)
            per_batch = int(per_second * BATCH_SECONDS)
            seq = 1
            deadline = time.perf_counter() + SECONDS
            while time.perf_counter() < deadline:
                app.post_message(TracesReceived([trace(s) for s in range(seq, seq + per_batch)]))
                seq += per_batch
                await asyncio.sleep(BATCH_SECONDS)
            await pilot.pause(0.5)
            shown = len(app.screen.query_one("TraceTable").rows)  # type: ignore[attr-defined]
    finally:
        TracesScreen.on_traces_received = original  # type: ignore[method-assign]
    return {
        "traces": seq - 1, "shown": shown,
        "batch_p50_ms": statistics.median(batch_ms), "batch_max_ms": max(batch_ms),
        "lag_p50_ms": statistics.median(lags), "lag_p99_ms": statistics.quantiles(lags, n=100)[98],
        "lag_max_ms": max(lags),
    }  # fmt: skip


def main() -> None:
    fake = FakeOpenAI().start()
    with tempfile.TemporaryDirectory() as folder:
        profile = Path(folder) / "profile.yaml"
        profile.write_text(fake_profile(fake.base_url))
        daemon = DaemonProcess(profile=profile, db=Path(folder) / "llmops.db").start()
        try:
            for rate in [int(a) for a in sys.argv[1:]] or (200, 2000):
                r = asyncio.run(measure(daemon.url, rate))
                print(
                    f"{rate:>5} traces/s for {SECONDS} s: {r['traces']} traces, {r['shown']} in the table; "
                    f"per batch p50 {r['batch_p50_ms']:.2f} ms, max {r['batch_max_ms']:.1f} ms "
                    f"({r['batch_p50_ms'] / (BATCH_SECONDS * 1000):.1%} of the 100 ms interval); "
                    f"loop lag p50 {r['lag_p50_ms']:.1f} ms, p99 {r['lag_p99_ms']:.1f} ms, "
                    f"max {r['lag_max_ms']:.1f} ms"
                )
        finally:
            daemon.stop()
            fake.stop()


if __name__ == "__main__":
    main()
