"""Routing: what the stage costs, and what routes save on a mixed workload. One command:

    .venv/bin/python benchmarks/routing.py [--rounds 10] [--seconds 1.5] [--calls 300]

1. The routing stage's added latency at concurrency 1: a daemon without routes against one whose
   calls go through a route (`weighted`, no scorer; `complexity`, the scorer on every call), every
   route's models being the same fake upstream, in interleaved rounds (the order flips each round,
   so this shared machine's drift cancels out). Auth and tracing on in both.
2. A mixed workload (MMLU questions from ../shared beside short everyday requests) through an
   `auto` (complexity) route and a `careful` (cascade) route, against a fake upstream with the
   profile's prices: the cost against sending everything to the dearest model, the share per tier,
   and the cascade's escalation rate. The fake's cheap model is less sure of longer questions
   (each token's logprob falls with the prompt's length), so the cascade escalates some.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import httpx
from _harness import REPO, Processes, median, run_loop, start_fake_upstream
from cache import request, start
from gateway import MODEL, PROFILE

ROUTES = f"""\
routes:
  split: {{strategy: weighted, weights: {{{MODEL}: 1}}}}
  auto:
    strategy: complexity
    tiers:
      - {{name: cheap, models: [{MODEL}], below: 0.3}}
      - {{name: balanced, models: [{MODEL}], below: 0.7}}
      - {{name: best, models: [{MODEL}]}}
"""

# USD per 1M tokens (input, output): gpt-4o-mini, gpt-4.1-mini, gpt-4o.
TIERS = {"cheap": (0.15, 0.60), "balanced": (0.40, 1.60), "best": (2.50, 10.00)}
MIXED = """\
name: mixed
models:
{models}
routes:
  auto:
    strategy: complexity
    tiers:
      - {{name: cheap, models: [cheap], below: 0.3}}
      - {{name: balanced, models: [balanced], below: 0.7}}
      - {{name: best, models: [best]}}
  careful: {{strategy: cascade, models: [cheap, best], min_confidence: 0.6}}
"""
MODEL_ENTRY = """\
  {name}:
    provider: openai
    base_url: "http://127.0.0.1:{port}/v1"
    api_key: "${{LLMOPS_BENCH_UPSTREAM_KEY}}"
    price: {{input: {price_in}, output: {price_out}}}
"""
EVERYDAY = [
    "hi", "Thanks!", "Good morning!", "Say hello to Anna.", "What time is it in Tokyo?",
    "Name three colours.", "Translate 'good night' into French.", "Give me a synonym for happy.",
    "What is the capital of Canada?", "Suggest a name for a grey cat.", "How do I boil an egg?",
    "Write a one-line birthday wish for my sister.", "Is it going to be cold in winter in Oslo?",
    "Spell 'necessary'.", "What does HTTP stand for?", "Recommend a short book for a train ride.",
    "Convert 5 km to miles.", "What's a good stretch for a stiff neck?", "List two fruits that are red.",
    "Summarize: the meeting moved to Tuesday at 3 pm.",
]  # fmt: skip
MMLU = REPO.parent / "shared" / "data" / "routing" / "mmlu_routellm.jsonl"


def stage_latency(procs: Processes, upstream: int, rounds: int, seconds: float) -> None:
    base = PROFILE.format(model=MODEL, port=upstream)
    daemons = {"bare": start(procs, "bare", base), "routed": start(procs, "routed", base + ROUTES)}
    cells = {"no route": ("bare", MODEL), "weighted": ("routed", "split"), "complexity": ("routed", "auto")}
    p50s: dict[str, list[float]] = {cell: [] for cell in cells}
    for rnd in range(rounds + 1):  # round 0 warms up
        for cell in list(cells) if rnd % 2 else reversed(list(cells)):
            daemon, model = cells[cell]
            port, key = daemons[daemon]
            latencies = run_loop(port, request(key, model), seconds)[0]
            if rnd:
                p50s[cell].append(median(latencies))
    print(f"1. the routing stage at concurrency 1 ({rounds} interleaved rounds of {seconds:g} s; auth and "
          "tracing on)\n")  # fmt: skip
    print(f"{'':14}{'p50 ms':>9}{'added':>10}")
    bare = p50s["no route"]
    for cell, values in p50s.items():
        added = median([b - a for a, b in zip(bare, values, strict=True)])
        print(f"{cell:14}{median(values):9.3f}{added:+10.3f}")
    print()


def workload(calls: int, seed: int) -> tuple[list[str], str]:
    rng = random.Random(seed)
    prompts = [rng.choice(EVERYDAY) for _ in range(calls // 3)]
    if MMLU.exists():
        with MMLU.open() as rows:
            questions = [json.loads(line)["prompt"] for line in rows]
        prompts += rng.sample(questions, calls - len(prompts))
        said = f"{calls - calls // 3} MMLU questions and {calls // 3} everyday requests"
    else:
        prompts += [rng.choice(EVERYDAY) + " Explain why, step by step." for _ in range(calls - len(prompts))]
        said = f"{calls} everyday requests (../shared is missing: no MMLU questions)"
    rng.shuffle(prompts)
    return prompts, said


def mixed(procs: Processes, upstream: int, calls: int, seed: int) -> None:
    models = "".join(
        MODEL_ENTRY.format(name=name, port=upstream, price_in=p[0], price_out=p[1])
        for name, p in TIERS.items()
    )
    port, key = start(procs, "mixed", MIXED.format(models=models), "--admin")
    prompts, said = workload(calls, seed)
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
        # The cheap model grows unsure with the question's length: exp(-0.001 * chars), 0.6 at 510.
        httpx.post(f"http://127.0.0.1:{upstream}/_fault", json={"logprob": {"per_char": 0.001}})
        cost: dict[str, float] = {}
        for route in ("best", "auto", "careful"):
            total = 0.0
            for prompt in prompts:
                response = client.post("/v1/chat/completions", json={
                    "model": route, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}],
                })  # fmt: skip
                response.raise_for_status()
                total += trace_cost(client, response)
            cost[route] = total
        stats = client.get("/admin/routing").json()
    routes = {r["name"]: r for r in stats["routes"]}
    print(f"2. a mixed workload: {said}, through each route ({len(prompts)} calls each)\n")
    print(f"   everything to `best` (gpt-4o prices):   ${cost['best']:.4f}")
    auto, careful = routes["auto"], routes["careful"]
    shares = ", ".join(f"{tier} {count / auto['calls']:.0%}" for tier, count in sorted(auto["tiers"].items()))
    print(f"   `auto` (complexity):                    ${cost['auto']:.4f} = "
          f"{cost['auto'] / cost['best']:.0%} of it; tiers: {shares}")  # fmt: skip
    served = ", ".join(f"{m} {n / careful['calls']:.0%}" for m, n in sorted(careful["models"].items()))
    print(f"   `careful` (cascade cheap -> best):      ${cost['careful']:.4f} = "
          f"{cost['careful'] / cost['best']:.0%} of it; served by {served}; escalation rate "
          f"{careful['escalation_rate']:.0%} (its cheap answers are paid for too)")  # fmt: skip


def trace_cost(client: httpx.Client, response: httpx.Response) -> float:
    trace: dict[str, Any] = client.get(f"/admin/traces/{response.headers['x-llmops-trace-id']}").json()
    return float(trace["cost_usd"])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--calls", type=int, default=300, help="calls of the mixed workload, per route")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with Processes() as procs:
        upstream = start_fake_upstream(procs)
        stage_latency(procs, upstream, args.rounds, args.seconds)
        mixed(procs, upstream, args.calls, args.seed)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
