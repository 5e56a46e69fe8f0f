"""`llmops budget show | set | unset | reset`: budgets through the running daemon's /admin/budgets,
and the `--budget 5usd/day` spec that `llmops keys create` also takes."""

from __future__ import annotations

import argparse
import re
from typing import Any

from daemon.cli_http import call_daemon, fetch
from daemon.core.budget import PERIODS, duration, money

SPEC = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>usd|\$|tokens?)\s*/\s*(?P<period>\w+)$", re.I)


def parse_spec(text: str) -> tuple[str, float | None, int | None]:
    """`5usd/day`, `0.5$/week`, `200000tokens/month`, `10usd/total` -> (period, usd, tokens)."""
    found = SPEC.match(text.strip())
    if found is None or found["period"].lower() not in PERIODS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected AMOUNT usd|tokens / day|week|month|total: 5usd/day, 200000tokens/month"
        )
    amount, period = found["amount"], found["period"].lower()
    if found["unit"].lower().startswith("token"):
        if "." in amount or int(amount) < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: a token budget is a whole number of at least 1")
        return period, None, int(amount)
    if float(amount) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a budget is above $0")
    return period, float(amount), None


def merge_specs(specs: list[tuple[str, float | None, int | None]]) -> dict[str, dict[str, Any]]:
    """Specs of one period (`5usd/day` and `100000tokens/day`) make one budget."""
    merged: dict[str, dict[str, Any]] = {}
    for period, usd, tokens in specs:
        entry = merged.setdefault(period, {"per": period})
        if usd is not None:
            entry["usd"] = usd
        if tokens is not None:
            entry["tokens"] = tokens
    return merged


def run_budget(args: argparse.Namespace) -> int:
    command = args.budget_command
    if command == "show":
        return _show(args)
    if command == "set":
        if args.usd is None and args.tokens is None:
            print("llmops: say how much: --usd, --tokens or both")
            return 2
        body = {"per": args.per, "usd": args.usd, "tokens": args.tokens, "warn_at": args.warn_at}
        done = call_daemon(args, "PUT", f"/admin/budgets/{args.subject}", json=body)
        if done is not None:
            print(f"Set the {args.per} budget of {args.subject}: {_limit(done)} (set here, it wins over the "
                  "profile's, if the profile has one).")  # fmt: skip
    elif command == "unset":
        done = call_daemon(args, "DELETE", f"/admin/budgets/{args.subject}", params=_per(args))
        if done is not None:
            print(f"Removed {done['removed']} budget(s) of {args.subject} set through the API; "
                  "the profile's apply again.")  # fmt: skip
    else:
        done = call_daemon(args, "POST", f"/admin/budgets/{args.subject}/reset", json=_per(args))
        if done is not None:
            print(f"Reset {args.subject} ({', '.join(done['periods'])}): its windows start again now.")
    return 0 if done is not None else 1


def _show(args: argparse.Namespace) -> int:
    params = {"subject": args.subject} if args.subject else {}
    data = fetch(args, "/admin/budgets", params=params)
    if isinstance(data, int):
        return data
    if not data["enabled"]:
        print("Budgets are off: add a `budgets:` section to the profile (it may be empty: `budgets: {}`).")
        return 0
    print(f"Budgets (windows in {data['timezone']}); spent + reserved of the limit:")
    for b in data["budgets"]:
        resets = f"resets in {duration(b['resets_in_s'])}" if b["resets_in_s"] is not None else "never resets"
        warning = "  WARNING" if b["warning"] else ""
        share = f"{b['used_share']:.0%}"
        print(
            f"  {b['name']:24} {b['period']:5} {_usage(b):44} {share:>5}  {resets:24} {b['source']}{warning}"
        )
    if not data["budgets"]:
        print("  (none yet: `llmops budget set user:NAME --per day --usd 5`, or the profile's budgets:)")
    rejected = sum(r["rate_limited"] + r["over_budget"] for r in data["rejections"])
    print(f"Refused {data['window']}: {rejected} calls "
          f"({sum(r['over_budget'] for r in data['rejections'])} over budget, "
          f"{sum(r['rate_limited'] for r in data['rejections'])} rate limited)")  # fmt: skip
    if data["top_spenders"]:
        print(f"Top spenders {data['window']}:")
        for row in data["top_spenders"][:5]:
            spent, user = money(row["cost_usd"]), row["user"] or "-"
            print(f"  {user:24} {spent:>12} {row['tokens']:>10,} tokens {row['requests']:>6} calls")
    return 0


def _usage(b: dict[str, Any]) -> str:
    parts = []
    if b["usd"] is not None:
        parts.append(f"{money(b['spent_usd'])}+{money(b['reserved_usd'])} of {money(b['usd'])}")
    if b["tokens"] is not None:
        parts.append(f"{b['spent_tokens']:,}+{b['reserved_tokens']:,} of {b['tokens']:,} tokens")
    return "; ".join(parts)


def _limit(body: dict[str, Any]) -> str:
    parts = [money(body["usd"])] if body.get("usd") is not None else []
    parts += [f"{body['tokens']:,} tokens"] if body.get("tokens") is not None else []
    return " and ".join(parts)


def _per(args: argparse.Namespace) -> dict[str, str]:
    return {"per": args.per} if args.per else {}


def add_budget_commands(sub: Any, add_key_options: Any, url_default: str) -> None:
    budget = sub.add_parser("budget", help="budgets per key, user and team: show, set, unset, reset")
    commands = budget.add_subparsers(dest="budget_command", required=True)
    subject_help = "user:NAME, team:NAME, key:NAME or default (every user without a budget of their own)"
    show = commands.add_parser("show", help="every budget: spent, reserved, its window and reset, its source")
    show.add_argument("subject", nargs="?", help=subject_help)
    show.add_argument("--window", default="today", choices=["today", "7d", "30d"], help="refusals, spenders")
    show.add_argument("--json", action="store_true")
    set_ = commands.add_parser(
        "set", help="set a budget (it wins over the profile's of that subject and period)"
    )
    set_.add_argument("subject", help=subject_help)
    set_.add_argument("--per", required=True, choices=PERIODS)
    set_.add_argument("--usd", type=float)
    set_.add_argument("--tokens", type=int)
    set_.add_argument("--warn-at", type=float, help="the share that warns (default: the profile's, 0.8)")
    unset = commands.add_parser("unset", help="remove a budget set here: the profile's applies again")
    reset = commands.add_parser("reset", help="start a budget's current window again, from now")
    for command in (unset, reset):
        command.add_argument("subject", help=subject_help)
        command.add_argument("--per", choices=PERIODS, help="default: every period")
    for command in (show, set_, unset, reset):
        command.add_argument("--url", default=url_default)
        add_key_options(command)
        command.set_defaults(func=run_budget)
