"""`llmops route fit DATA.jsonl | stats`: fit the complexity scorer on labelled prompts (offline,
no daemon needed), and read a running daemon's routing statistics through /admin/routing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from daemon.cli_http import call_daemon


def _fit(args: argparse.Namespace) -> int:
    from daemon import settings
    from daemon.pipeline.routing import FITTED
    from daemon.routing.fit import fit, format_report, load_rows, write

    try:
        rows = load_rows(args.data)
    except (OSError, ValueError, KeyError) as exc:
        print(f"llmops: cannot read {args.data}: {exc}", file=sys.stderr)
        return 1
    if len(set(rows.groups)) < args.folds:
        print(f"llmops: {args.data} has {len(set(rows.groups))} groups: --folds {args.folds} needs as many",
              file=sys.stderr)  # fmt: skip
        return 1
    model, report = fit(rows, folds=args.folds, seed=args.seed)
    out = Path(args.out) if args.out else settings.data_dir() / FITTED
    write(model, out)
    print(format_report(report))
    print(f"\nWrote the scorer to {out}.")
    if not args.out:
        print("A running daemon's complexity routes pick it up within seconds (routes with their own "
              "`scorer:` keep theirs).")  # fmt: skip
    return 0


def _stats(args: argparse.Namespace) -> int:
    data = call_daemon(args, "GET", "/admin/routing", params={"window": args.window})
    if data is None:
        return 1
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    if not data["routes"]:
        print("No routes: add a `routes:` section to the profile.")
    for route in data["routes"]:
        print(_route_line(route))
        calls = route["calls"]
        for name, count in sorted(route["models"].items(), key=lambda kv: -kv[1]):
            print(f"    {name:22} {count:6} calls  {count / calls:6.1%}")
        if route["tiers"]:
            said = ", ".join(f"{tier} {count / calls:.0%}" for tier, count in route["tiers"].items())
            print(f"    tiers: {said}")
    for shadow in data["shadow_totals"]:
        print(f"shadow {shadow['route']} -> {shadow['model']}: {shadow['calls']} calls, {shadow['errors']} "
              f"errors, ${shadow['cost_usd']:.6f}, mean {shadow['mean_latency_ms']:.0f} ms")  # fmt: skip
    return 0


def _route_line(route: dict[str, Any]) -> str:
    strategy = route["strategy"] or "removed"
    line = f"{route['name']} ({strategy}): {route['calls']} calls, ${route['cost_usd']:.6f}"
    if route["escalation_rate"] is not None and route["strategy"] == "cascade":
        line += f", escalated {route['escalation_rate']:.0%}"
    if route["fallback_rate"]:
        line += f", fell back {route['fallback_rate']:.0%}"
    return line


def run_route(args: argparse.Namespace) -> int:
    return _fit(args) if args.route_command == "fit" else _stats(args)


def add_route_commands(sub: Any, add_key_options: Any, url_default: str) -> None:
    route = sub.add_parser("route", help="routing: fit the complexity scorer, routing statistics")
    commands = route.add_subparsers(dest="route_command", required=True)
    fit = commands.add_parser(
        "fit", help="learn the complexity scorer from labelled prompts (JSONL: prompt, weak_correct, "
        "strong_correct, optional subject) and print its held-out metrics"
    )  # fmt: skip
    fit.add_argument("data", help="the JSONL file")
    fit.add_argument("--out", help="where to write the scorer; default: the data dir, which routes use")
    fit.add_argument("--folds", type=int, default=5, help="cross-validation folds, whole subjects held out")
    fit.add_argument("--seed", type=int, default=0)
    fit.set_defaults(func=run_route)
    stats = commands.add_parser("stats", help="traffic per route, model and tier; escalations; shadows")
    stats.add_argument("--window", default="today", choices=["today", "7d", "30d"])
    stats.add_argument("--json", action="store_true")
    stats.add_argument("--url", default=url_default)
    add_key_options(stats)
    stats.set_defaults(func=run_route)
