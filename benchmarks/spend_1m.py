"""The spend screen's queries against 1,000,000 traces, through a real daemon over HTTP.

Today / 7 / 30 days by model, user and team (and, for reference, the traces screen's first page):
each must answer in under 200 ms. Prints the median of 5 runs per query and the ratio to that
budget, and how long migration 0002 took to build the spend rollup for the existing traces.
benchmarks/traces_query.py covers /admin/traces filters and paging in depth.

Run: .venv/bin/python benchmarks/spend_1m.py [--rows N] [--db PATH (kept and reused)]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.app import prepare_database  # noqa: E402
from daemon.storage.db import connect_sync  # noqa: E402
from tests.daemon_process import DaemonProcess, fake_profile  # noqa: E402

BUDGET_MS = 200.0
MODELS = ("gpt-4o-mini", "gpt-4o", "local-gemma", "claude-haiku", "gpt-4.1-nano", "text-embedding-3-small")
TEAMS = ("research", "support", "sales", "platform", None)
WORDS = ("refund", "policy", "invoice", "password", "reset", "python", "tuple", "summary", "report", "french",
         "meeting", "commit", "sql", "customers", "palindrome", "cache", "latency", "budget")  # fmt: skip


def fill(db: Path, rows: int, seed: int = 7) -> None:
    prepare_database(db)
    conn = connect_sync(db)
    if conn.execute("SELECT count(*) FROM traces").fetchone()[0] >= rows:
        conn.close()
        return
    rng = random.Random(seed)
    now = time.time()
    started = time.perf_counter()
    conn.execute("BEGIN")
    batch = []
    for i in range(rows):
        ts = now - (rows - i) * (30 * 86_400 / rows)  # the last 30 days, in order
        model = MODELS[rng.randrange(len(MODELS))]
        status = "ok" if rng.random() > 0.03 else rng.choice(("error", "cancelled"))
        prompt, completion = rng.randint(10, 900), rng.randint(5, 600)
        text = " ".join(rng.choices(WORDS, k=12))
        batch.append((
            f"tr_{i:012x}{rng.getrandbits(48):012x}", ts, "chat", f"user{rng.randrange(50)}", TEAMS[i % 5],
            model, model, "openai", status, 200 if status == "ok" else 502,
            f'{{"messages": [{{"role": "user", "content": "{text}"}}]}}', f"answer about {text}",
            prompt, completion, (prompt * 0.15 + completion * 0.6) / 1e6,
            (prompt * 0.15 + completion * 0.6) / 1e6 if model == "local-gemma" else 0.0,
            rng.uniform(80, 4000), rng.uniform(20, 400),
        ))  # fmt: skip
        if len(batch) == 50_000:
            _insert(conn, batch)
            batch.clear()
    _insert(conn, batch)
    conn.execute("COMMIT")
    conn.close()
    print(f"filled {rows:,} traces in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def _insert(conn: object, batch: list[tuple[object, ...]]) -> None:
    conn.executemany(  # type: ignore[attr-defined]
        "INSERT INTO traces (id, ts, endpoint, user, team, requested_model, served_model, provider, status,"
        " http_status, request, response, prompt_tokens, completion_tokens, cost_usd, shadow_cost_usd,"
        " latency_ms, ttft_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        batch,
    )


def timed(
    http: httpx.Client, path: str, params: dict[str, str], runs: int = 5
) -> tuple[float, dict[str, object]]:
    times, body = [], {}
    for _ in range(runs):
        started = time.perf_counter()
        response = http.get(path, params=params)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
        body = response.json()
    return statistics.median(times), body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="llmops-1m-"))
    db = args.db or folder / "llmops.db"
    fill(db, args.rows)
    profile = folder / "profile.yaml"
    profile.write_text(fake_profile("http://127.0.0.1:9/v1"))
    started = time.perf_counter()
    daemon = DaemonProcess(profile=profile, db=db).start(timeout=600)
    print(f"daemon up (migrations included) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    queries: list[tuple[str, str, dict[str, str]]] = [
        ("open the traces screen", "/admin/traces", {"limit": "200"}),
    ]
    spends = [(f"spend {w} by {g}", "/admin/spend", {"window": w, "group_by": g})
              for w in ("today", "7d", "30d") for g in ("model", "user", "team")]  # fmt: skip
    try:
        with httpx.Client(base_url=daemon.url, timeout=120) as http:
            print(f"{'query':34} {'median ms':>10} {'/ 200 ms':>9}")
            for name, path, params in queries + spends:
                ms, _ = timed(http, path, params)
                print(f"{name:34} {ms:10.1f} {ms / BUDGET_MS:8.2f}x")
    finally:
        daemon.stop()


if __name__ == "__main__":
    main()
