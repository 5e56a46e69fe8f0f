"""The cache stage's cost and an exact hit's speed, at concurrency 1.

Three daemons-worth of measurements on one fake upstream, in interleaved rounds (the order flips
each round, so the machine's drift cancels out): the upstream directly; a daemon without a cache
(the bare pipeline); and one with `cache:` in its profile, asked the same question again and
again (every call an exact hit) and a new question each time (every call a miss, stored).
Auth and durable tracing are on in both daemons.

Prints p50 / p99 a call, and the lines that matter:
- an exact hit, end to end (target p50 <= 0.5 ms);
- what the cache stage adds to a miss over the bare pipeline (the stage's own line: a lookup, a
  key hash and storing the answer in the trace's transaction);
- what a model outside the cache pays (nothing: the stage says nothing for it).

    .venv/bin/python benchmarks/cache.py [--rounds 6] [--seconds 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable

from _harness import (
    UPSTREAM_KEY,
    Client,
    Processes,
    create_key,
    free_port,
    median,
    percentile,
    run_loop,
    start_fake_upstream,
)
from gateway import MESSAGES, MODEL, PROFILE

TARGET_HIT_P50_MS = 0.5
CACHE = "cache:\n  scope: user\n  models: [{model}]\n"
UNCACHED = """\
  other-model:
    provider: openai
    base_url: "http://127.0.0.1:{port}/v1"
    api_key: "${{LLMOPS_BENCH_UPSTREAM_KEY}}"
"""


def start(procs: Processes, name: str, profile_text: str, *key_options: str) -> tuple[int, str]:
    folder = procs.dir / name
    (folder / "profile").mkdir(parents=True)
    (folder / "data").mkdir()
    profile, db = folder / "profile" / "bench.yaml", folder / "data" / "bench.db"
    profile.write_text(profile_text)
    key = create_key(db, "bench", *key_options)
    port = free_port()
    args = [sys.executable, "-m", "daemon", "serve", "--profile", str(profile), "--db", str(db),
            "--port", str(port), "--log-level", "warning"]  # fmt: skip
    procs.start(name, args, {"LLMOPS_BENCH_UPSTREAM_KEY": UPSTREAM_KEY})
    procs.wait_http(name, port, "/health")
    return port, key


def request(key: str, model: str = MODEL, question: str | None = None) -> bytes:
    messages = MESSAGES if question is None else [{"role": "user", "content": question}]
    body = json.dumps({"model": model, "messages": messages}).encode()
    return Client.build("POST", "/v1/chat/completions", body, {"authorization": f"Bearer {key}"})


def run_each(port: int, make: Callable[[], bytes], seconds: float) -> list[float]:
    """Concurrency 1 with a new request each time (each a cache miss)."""
    latencies = []
    with Client(port) as client:
        deadline = time.perf_counter() + seconds
        while (started := time.perf_counter()) < deadline:
            raw = make()
            started = time.perf_counter()
            status, _, _ = client.send(raw)
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"a request failed with {status}")
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0, help="per cell and round")
    args = parser.parse_args()
    with Processes() as procs:
        upstream = start_fake_upstream(procs)
        base = PROFILE.format(model=MODEL, port=upstream) + UNCACHED.format(port=upstream)
        bare_port, bare_key = start(procs, "bare", base)
        cached_port, cached_key = start(procs, "cached", base + CACHE.format(model=MODEL))
        counter = itertools.count()
        cells: dict[str, Callable[[], list[float]]] = {
            "upstream directly": lambda: run_loop(upstream, request(UPSTREAM_KEY), args.seconds)[0],
            "bare pipeline": lambda: run_loop(bare_port, request(bare_key), args.seconds)[0],
            "cache: exact hit": lambda: run_loop(cached_port, request(cached_key), args.seconds)[0],
            "cache: miss (stored)": lambda: run_each(
                cached_port, lambda: request(cached_key, question=f"question {next(counter)}"), args.seconds
            ),
            "bare: new questions": lambda: run_each(
                bare_port, lambda: request(bare_key, question=f"question {next(counter)}"), args.seconds
            ),
            "cache: uncached model": lambda: run_loop(
                cached_port, request(cached_key, "other-model"), args.seconds
            )[0],
            "bare: the same model": lambda: run_loop(
                bare_port, request(bare_key, "other-model"), args.seconds
            )[0],
        }
        samples: dict[str, list[float]] = {name: [] for name in cells}
        p50s: dict[str, list[float]] = {name: [] for name in cells}
        names = list(cells)
        for rnd in range(args.rounds + 1):  # round 0 warms up (and stores the hit's entry)
            for name in names if rnd % 2 else reversed(names):
                latencies = cells[name]()
                if rnd:
                    samples[name] += latencies
                    p50s[name].append(median(latencies))
        print(f"{args.rounds} rounds of {args.seconds:g} s a cell, concurrency 1, auth and tracing on\n")
        print(f"{'':24}{'p50 ms':>9}{'p99 ms':>9}{'calls':>8}")
        for name in names:
            values = samples[name]
            print(f"{name:24}{median(p50s[name]):9.3f}{percentile(values, 99):9.3f}{len(values):8}")

        def diff(a: str, b: str) -> float:
            return median([x - y for x, y in zip(p50s[a], p50s[b], strict=True)])

        hit = median(p50s["cache: exact hit"])
        verdict = "PASS" if hit <= TARGET_HIT_P50_MS else "MISS"
        print(f"\nan exact hit, end to end: p50 {hit:.3f} ms (target <= {TARGET_HIT_P50_MS} ms: {verdict}); "
              f"{diff('bare pipeline', 'cache: exact hit'):+.3f} ms faster than a call upstream")  # fmt: skip
        miss, outside = (
            diff("cache: miss (stored)", "bare: new questions"),
            diff("cache: uncached model", "bare: the same model"),
        )
        print(f"the cache stage on a miss: {miss:+.3f} ms over the bare pipeline")
        print(f"a model outside the cache: {outside:+.3f} ms over the bare pipeline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
