"""`llmops route fit DATA.jsonl | --from-traces ROUTE` and `route stats`: fit the complexity scorer
on labelled prompts or on a route's rated calls (offline, no daemon needed), and read a running
daemon's routing statistics through /admin/routing."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from daemon.cli_http import fetch
from daemon.settings import default_db_path, default_profile_path

MIN_RATED = 30  # rated calls below which a fit from traces would learn noise


def _fit(args: argparse.Namespace) -> int:
    from daemon import settings
    from daemon.pipeline.routing import FITTED
    from daemon.routing.fit import fit, format_report, hash_group, load_rows, write

    if (args.data is None) == (args.from_traces is None):
        print("llmops: give a JSONL file or --from-traces ROUTE (not both)", file=sys.stderr)
        return 2
    try:
        rows = load_rows(args.data) if args.data else _rated_rows(args)
    except (OSError, ValueError, KeyError, sqlite3.Error) as exc:
        print(f"llmops: cannot read {args.data or args.db}: {exc}", file=sys.stderr)
        return 1
    except LookupError as exc:
        print(f"llmops: {exc}", file=sys.stderr)
        return 1
    if len(set(rows.groups)) < args.folds:
        if args.data:
            print(f"llmops: {args.data} has {len(set(rows.groups))} groups: --folds {args.folds} needs as "
                  "many", file=sys.stderr)  # fmt: skip
            return 1
        users = len(set(rows.groups))
        print(f"(only {users} users rated calls: validating on held-out prompts instead of users)")
        rows = replace(rows, groups=[hash_group(prompt) for prompt in rows.prompts])
    model, report = fit(rows, folds=args.folds, seed=args.seed)
    out = Path(args.out) if args.out else settings.data_dir() / FITTED
    write(model, out)
    print(format_report(report))
    print(f"\nWrote the scorer to {out}.")
    if not args.out:
        print("A running daemon's complexity routes pick it up within seconds (routes with their own "
              "`scorer:` keep theirs).")  # fmt: skip
    return 0


def _rated_rows(args: argparse.Namespace) -> Any:
    """The route's rated calls as labelled rows; LookupError when there is too little to learn."""
    from daemon.config.loader import load_profile
    from daemon.config.routes import ComplexityRoute
    from daemon.routing.from_traces import rows_from_traces

    route = load_profile(Path(args.profile)).routes.get(args.from_traces)
    if not isinstance(route, ComplexityRoute):
        raise LookupError(f"{args.from_traces!r} is not a complexity route of {args.profile}")
    rows = rows_from_traces(Path(args.db), args.from_traces, route.tiers[0].name)
    needed = int((~rows.weak & rows.strong).sum())
    if len(rows.prompts) < MIN_RATED or needed == 0:
        raise LookupError(
            f"{len(rows.prompts)} rated calls of {args.from_traces!r} say something about its cheapest tier "
            f"({needed} rated bad): at least {MIN_RATED}, some of them bad, are needed to fit"
        )
    return rows


def _stats(args: argparse.Namespace) -> int:
    data = fetch(args, "/admin/routing", params={"window": args.window})
    if isinstance(data, int):
        return data
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
        "strong_correct, optional subject) or from a route's rated calls, and print its held-out metrics"
    )  # fmt: skip
    fit.add_argument("data", nargs="?", help="the JSONL file")
    fit.add_argument(
        "--from-traces", metavar="ROUTE", help="instead, the rated calls of this complexity route: a "
        "cheapest-tier answer rated good or bad says whether the prompt needed more"
    )  # fmt: skip
    fit.add_argument("--db", default=str(default_db_path()), help="the database (with --from-traces)")
    fit.add_argument(
        "--profile", default=str(default_profile_path()), help="its profile (with --from-traces)"
    )
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
