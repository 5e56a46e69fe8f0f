"""The budget stage's cost: the same calls through a daemon without budgets and one with a budget on
every call, in interleaved rounds (each daemon first in turn, so the machine's drift cancels out),
beside a second bare daemon whose difference from the first is this run's own noise.

The budgeted daemon holds its key's user to a daily dollar budget and a monthly token budget, and
its team to a weekly one, none of which runs out: every call reserves against three budgets in
this process's leases (memory) before it runs, and the trace it writes is its charge to the
ledger. Auth and durable tracing are on in all three.

Prints, against the bare pipeline measured in the same run:
- the added p50 at concurrency 1 (target <= 0.1 ms);
- the throughput at concurrency 32 (wrk) with budgets on every call (target >= 80 % of the bare run);
and checks that the ledger equals the traces' sum.

    .venv/bin/python benchmarks/budgets.py [--rounds 36] [--seconds 0.5] [--c32-rounds 4] [--c32-seconds 4]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
from pathlib import Path

from _harness import Processes, cpu_seconds, median, percentile, run_loop, start_fake_upstream
from cache import request, start
from gateway import MODEL, PROFILE, chat_body, python_load, wrk_load

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from daemon.storage.budgets import catch_up_ledger  # noqa: E402

TARGET_ADDED_P50_MS = 0.1
TARGET_THROUGHPUT = 0.8
BUDGETS = """\
budgets:
  timezone: Europe/Paris
  users:
    bench: [{per: day, usd: 1000000}, {per: month, tokens: 1000000000000}]
  teams:
    perf: {per: week, usd: 1000000}
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # many short rounds: the machine drifts less within one, and the pairs follow it closely
    parser.add_argument("--rounds", type=int, default=36, help="alternating concurrency-1 rounds")
    parser.add_argument("--seconds", type=float, default=0.5, help="per concurrency-1 cell and round")
    parser.add_argument("--c32-rounds", type=int, default=4, help="alternating concurrency-32 rounds")
    parser.add_argument("--c32-seconds", type=float, default=4.0, help="per concurrency-32 cell and round")
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    with Processes() as procs:
        upstream = start_fake_upstream(procs)
        base = PROFILE.format(model=MODEL, port=upstream)
        # a second bare daemon, measured like the others: what the difference of two identical
        # daemons reads in this run is the benchmark's own noise, printed beside the stage's cost
        daemons = {"bare": start(procs, "bare", base, "--team", "perf"),
                   "budgets": start(procs, "budgets", base + BUDGETS, "--team", "perf"),
                   "control": start(procs, "control", base, "--team", "perf")}  # fmt: skip
        pids = {name: dict(procs.procs)[name].pid for name in daemons}
        p50s: dict[str, list[float]] = {name: [] for name in daemons}
        p99s: dict[str, list[float]] = {name: [] for name in daemons}
        cpu: dict[str, list[float]] = {name: [] for name in daemons}  # daemon CPU ms a call
        names = list(daemons)
        for rnd in range(args.rounds + 1):  # round 0 warms up
            for name in names[rnd % 3 :] + names[: rnd % 3]:  # each daemon first in turn
                port, key = daemons[name]
                before = cpu_seconds(pids[name])
                latencies = run_loop(port, request(key), args.seconds)[0]
                used = (cpu_seconds(pids[name]) - before) * 1000 / len(latencies)
                if rnd:
                    p50s[name].append(median(latencies))
                    p99s[name].append(percentile(latencies, 99))
                    cpu[name].append(used)
        rps: dict[str, list[float]] = {name: [] for name in daemons}
        for rnd in range(args.c32_rounds):
            for name in ["bare", "budgets"] if rnd % 2 else ["budgets", "bare"]:
                port, key = daemons[name]
                if wrk:
                    load = wrk_load(wrk, port, chat_body(False), key, args.c32_seconds, 32, procs.dir)
                else:
                    load = python_load(port, chat_body(False), key, args.c32_seconds, 32)
                if load["non2xx"] or load["socket_errors"]:
                    raise RuntimeError(f"{name}: {load['non2xx']} failed calls at concurrency 32")
                rps[name].append(load["rps"])
        print(f"concurrency 1: {args.rounds} alternating rounds of {args.seconds:g} s; concurrency 32: "
              f"{args.c32_rounds} of {args.c32_seconds:g} s ({'wrk' if wrk else 'Python threads'}); "
              "auth and tracing on\n")  # fmt: skip
        print(f"{'':10}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/call':>13}{'req/s c=32':>12}")
        for name in daemons:
            req_s = f"{median(rps[name]):12.0f}" if rps.get(name) else ""
            print(f"{name:10}{median(p50s[name]):9.3f}{median(p99s[name]):9.3f}{median(cpu[name]):13.3f}"
                  f"{req_s}")  # fmt: skip

        def paired(values: dict[str, list[float]], other: str = "budgets") -> float:
            return median([b - a for a, b in zip(values["bare"], values[other], strict=True)])

        added, ratio = paired(p50s), median([b / a for a, b in zip(rps["bare"], rps["budgets"], strict=True)])
        verdict = "PASS" if added <= TARGET_ADDED_P50_MS else "MISS"
        print(f"\nthe budget stage at c=1: {added:+.3f} ms p50 (target <= {TARGET_ADDED_P50_MS} ms: "
              f"{verdict}); daemon CPU {paired(cpu):+.3f} ms a call")  # fmt: skip
        print(f"  control, a second bare daemon: {paired(p50s, 'control'):+.3f} ms p50, daemon CPU "
              f"{paired(cpu, 'control'):+.3f} ms a call (this run's noise)")  # fmt: skip
        verdict = "PASS" if ratio >= TARGET_THROUGHPUT else "MISS"
        print(f"throughput at c=32 with budgets on every call: {ratio:.0%} of the bare run "
              f"(target >= {TARGET_THROUGHPUT:.0%}: {verdict})")  # fmt: skip
        print(check_ledger(procs.dir / "budgets" / "data" / "bench.db"))
    return 0


def check_ledger(db: Path) -> str:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        # One transaction, as a daemon's check-in: the ledger caught up to the newest trace and the
        # traces summed in the same snapshot (the daemon may still be writing the load's last ones).
        conn.execute("BEGIN IMMEDIATE")
        catch_up_ledger(conn)
        ledger = conn.execute(
            "SELECT spent_nanos, spent_tokens FROM budget_ledger"
            " WHERE subject = 'user:bench' AND period = 'day'"
        ).fetchone()  # fmt: skip
        traced = conn.execute(
            "SELECT sum(CAST(round(cost_usd * 1e9) AS INTEGER)),"
            " sum(prompt_tokens + completion_tokens), count(*)"
            " FROM traces WHERE user = 'bench'"
        ).fetchone()  # fmt: skip
        leased = conn.execute(
            "SELECT coalesce(sum(usd_nanos), 0) FROM budget_leases"
            " WHERE subject = 'user:bench' AND period = 'day'"
        ).fetchone()[0]
        conn.execute("COMMIT")
    finally:
        conn.close()
    same = tuple(ledger) == tuple(traced[:2])
    return (f"ledger {'equals' if same else 'DIFFERS FROM'} the sum of {traced[2]:,} traces "
            f"(${ledger[0] / 1e9:.6f}, {ledger[1]:,} tokens); the daemon's lease keeps ${leased / 1e9:.6f} "
            "of spare room")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
