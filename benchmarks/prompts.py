"""Prompts and experiments: what the prompt stage adds to a call, and how fast an experiment's
results come back over 100,000 traces. One command:

    .venv/bin/python benchmarks/prompts.py [--rounds 10] [--seconds 1.5] [--traces 100000]

1. The prompt stage at concurrency 1, against the same call without a prompt, on one daemon, in
   interleaved rounds: the call names a prompt whose two messages render to exactly what the plain
   call sends (its template compiled once, at load), so the difference is the stage's own work.
   Target: <= 0.1 ms added p50.
2. An experiment's results (GET /admin/experiments/NAME: per-arm figures, six metrics compared
   with their tests and mSPRT, the series) over N traces of two arms, 30 % of them rated, written
   straight into the database the daemon then serves, with a new call of the experiment before
   each read (so each read computes anew; the first reads all N calls). Target: < 200 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path

import httpx
from _harness import UPSTREAM_KEY, Client, Processes, median, run_loop, start_fake_upstream
from cache import start
from gateway import MESSAGES, MODEL, PROFILE

TARGET_ADDED_P50_MS = 0.1
TARGET_SUMMARY_MS = 200.0
PROMPT = {
    "name": "bench",
    "messages": [
        {"role": m["role"], "content": m["content"].replace("benchmark", "{{ who }}")} for m in MESSAGES
    ],
}


def stage_latency(port: int, key: str, rounds: int, seconds: float) -> None:
    headers = {"authorization": f"Bearer {key}"}
    pushed = httpx.post(f"http://127.0.0.1:{port}/admin/prompts", json=PROMPT, headers=headers)
    pushed.raise_for_status()

    def raw(body: dict[str, object]) -> bytes:
        return Client.build("POST", "/v1/chat/completions", json.dumps(body).encode(), headers)

    cells = {
        "plain": raw({"model": MODEL, "messages": MESSAGES}),
        "prompt": raw({"model": MODEL, "prompt": {"name": "bench", "variables": {"who": "benchmark"}}}),
    }
    p50s: dict[str, list[float]] = {cell: [] for cell in cells}
    for rnd in range(rounds + 1):  # round 0 warms up
        for cell in list(cells) if rnd % 2 else reversed(list(cells)):
            latencies = run_loop(port, cells[cell], seconds)[0]
            if rnd:
                p50s[cell].append(median(latencies))
    added = median([b - a for a, b in zip(p50s["plain"], p50s["prompt"], strict=True)])
    verdict = "PASS" if added <= TARGET_ADDED_P50_MS else "MISS"
    print(
        f"1. the prompt stage at concurrency 1 ({rounds} interleaved rounds of {seconds:g} s,"
        " auth and tracing on)"
    )
    print(
        f"   plain call p50 {median(p50s['plain']):.3f} ms; naming a prompt {median(p50s['prompt']):.3f} ms"
    )
    print(f"   added: {added:+.3f} ms (target <= {TARGET_ADDED_P50_MS} ms: {verdict})\n")


def seed_experiment(db: Path, traces: int) -> None:
    """`traces` calls of experiment `big` (arms a and b), 30 % rated, written directly."""
    rng = random.Random(0)
    now = time.time()
    conn = sqlite3.connect(db)
    with conn:
        arms = json.dumps([{"name": "a", "version": 1, "model": None, "weight": 1.0},
                           {"name": "b", "version": 1, "model": None, "weight": 1.0}])  # fmt: skip
        conn.execute(
            "INSERT INTO experiments (name, prompt, arms, scope, state, shadow_share, metric, min_sample,"
            " alpha, label, winner, created_at, created_by) VALUES ('big', 'bench', ?, ?, 'ab', 1,"
            " 'rating', 100, 0.05, 'production', NULL, ?, 'bench')",
            (arms, json.dumps({"keys": [], "users": [], "teams": []}), now - 86_400),
        )
        rows, feedback = [], []
        for i in range(traces):
            arm = "b" if i % 2 else "a"
            trace_id = f"tr_bench{i:09d}"
            ts = now - 86_000 + i * (86_000 / traces)
            ok = rng.random() > 0.01
            rows.append((trace_id, ts, "chat", "ok" if ok else "error", 200 if ok else 502, "bench", 1,
                         "big", arm, rng.lognormvariate(6, 0.4), 0.0001 * rng.random(), 40, 30))  # fmt: skip
            if rng.random() < 0.3:
                kind = "stars" if rng.random() < 0.7 else "thumbs"
                score = rng.randint(1, 5) + (arm == "b") * 0 if kind == "stars" else rng.choice((1, -1))
                feedback.append((trace_id, min(score, 5), kind, ts + 5))
        conn.executemany(
            "INSERT INTO traces (id, ts, endpoint, status, http_status, prompt_name, prompt_version,"
            " experiment, arm, latency_ms, cost_usd, prompt_tokens, completion_tokens)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        conn.executemany(
            "INSERT INTO feedback (trace_id, score, kind, created_at) VALUES (?, ?, ?, ?)", feedback
        )
    conn.close()


def summary_speed(procs: Processes, upstream: int, traces: int) -> None:
    port, key = start(procs, "experiment", PROFILE.format(model=MODEL, port=upstream), "--admin")
    db = procs.dir / "experiment" / "data" / "bench.db"
    headers = {"authorization": f"Bearer {key}"}
    httpx.post(f"http://127.0.0.1:{port}/admin/prompts", json=PROMPT, headers=headers).raise_for_status()
    stop(procs, "experiment")
    seed_experiment(db, traces)
    restart(procs, db, port)
    url = f"http://127.0.0.1:{port}/admin/experiments/big"
    call = {"model": MODEL, "user": "bench", "prompt": {"name": "bench", "variables": {"who": "benchmark"}}}
    times = []
    for _ in range(6):
        # A new call of the experiment before each read: every read computes its results anew.
        httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions", json=call, headers=headers
        ).raise_for_status()
        started = time.perf_counter()
        response = httpx.get(url, headers=headers, timeout=60)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    results = response.json()["results"]
    calls = sum(a["calls"] for a in results["arms"])
    ratings = sum(a["ratings"] for a in results["arms"])
    took = median(times[1:])
    verdict = "PASS" if took < TARGET_SUMMARY_MS else "MISS"
    print(
        f"2. an experiment's results over {calls:,} traces ({ratings:,} star ratings), end to end over HTTP"
    )
    runs = ", ".join(f"{t:.0f}" for t in times)
    print(f"   median of 5 (after one warm-up): {took:.0f} ms (target < {TARGET_SUMMARY_MS:.0f} ms: "
          f"{verdict}); runs {runs} ms; verdict: {results['verdict']}")  # fmt: skip


def stop(procs: Processes, name: str) -> None:
    proc = dict(procs.procs)[name]
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def restart(procs: Processes, db: Path, port: int) -> None:
    """The same daemon again, on the seeded database."""
    profile = procs.dir / "experiment" / "profile" / "bench.yaml"
    args = [sys.executable, "-m", "daemon", "serve", "--profile", str(profile), "--db", str(db),
            "--port", str(port), "--log-level", "warning"]  # fmt: skip
    procs.start("experiment-again", args, {"LLMOPS_BENCH_UPSTREAM_KEY": UPSTREAM_KEY})
    procs.wait_http("experiment-again", port, "/health")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--traces", type=int, default=100_000)
    args = parser.parse_args()
    with Processes() as procs:
        upstream = start_fake_upstream(procs)
        port, key = start(procs, "stage", PROFILE.format(model=MODEL, port=upstream), "--admin")
        stage_latency(port, key, args.rounds, args.seconds)
        summary_speed(procs, upstream, args.traces)
    return 0


if __name__ == "__main__":
    sys.exit(main())
