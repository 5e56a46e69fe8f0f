"""`llmops experiment create | list | show | shadow | start | ramp | promote | stop`: prompt
experiments on the running daemon, through /admin/experiments."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from daemon.cli_http import call_daemon, fetch

ACTIONS = ("shadow", "start", "ramp", "promote", "stop")


def _create(args: argparse.Namespace) -> int:
    arms = []
    for spec in args.arm:
        name, sep, rest = spec.partition("=")
        version, _, model = rest.partition(":")
        if not sep or not version.isdigit():
            print(f"llmops: --arm {spec!r}: expected NAME=VERSION or NAME=VERSION:MODEL", file=sys.stderr)
            return 2
        arms.append({"name": name, "version": int(version), **({"model": model} if model else {})})
    scope = {
        k: v.split(",") for k, v in (("keys", args.keys), ("users", args.users), ("teams", args.teams)) if v
    }
    body = {
        "name": args.name, "prompt": args.prompt, "arms": arms, "metric": args.metric,
        "min_sample": args.min_sample, "alpha": args.alpha, "label": args.label, "scope": scope,
    }  # fmt: skip
    done = call_daemon(args, "POST", "/admin/experiments", json=body)
    if done is None:
        return 1
    listed = ", ".join(_arm(a) for a in done["arms"])
    print(f"Created {done['name']} on {done['prompt']} ({listed}); it is a draft: "
          f"`llmops experiment shadow {done['name']}` or `start` it.")  # fmt: skip
    return 0


def _arm(arm: dict[str, Any]) -> str:
    return f"{arm['name']}=v{arm['version']}" + (f" on {arm['model']}" if arm["model"] else "")


def _list(args: argparse.Namespace) -> int:
    data = fetch(args, "/admin/experiments")
    if isinstance(data, int):
        return data
    if not data["data"]:
        print(
            "No experiments yet: llmops experiment create NAME --prompt P --arm control=1 --arm candidate=2"
        )
    for e in data["data"]:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in e["shares"].items())
        winner = f", winner {e['winner']}" if e["winner"] else ""
        print(f"{e['name']:20} {e['state']:9} {e['prompt']:20} {shares}{winner}")
    return 0


def _show(args: argparse.Namespace) -> int:
    data = fetch(
        args, f"/admin/experiments/{args.name}", params={"window": args.window} if args.window else {}
    )
    if isinstance(data, int):
        return data
    results = data["results"]
    print(f"{data['name']}: {data['state']}, prompt {data['prompt']}, label {data['label']}; decides on "
          f"{results['metric_label']} (min {data['min_sample']} per arm, alpha {data['alpha']})")  # fmt: skip
    print(f"verdict: {results['verdict']}\n")
    print(f"{'arm':14}{'share':>7}{'calls':>8}{'rating':>14}{'thumbs up':>14}{'p50 ms':>9}{'p95 ms':>9}"
          f"{'$/call':>11}{'errors':>8}")  # fmt: skip
    for arm in results["arms"]:
        rating = f"{arm['mean_rating']:.2f} ({arm['ratings']})" if arm["mean_rating"] is not None else "-"
        thumbs = (
            f"{arm['thumbs_up_rate']:.0%} ({arm['thumbs']})" if arm["thumbs_up_rate"] is not None else "-"
        )
        print(f"{arm['name']:14}{data['shares'][arm['name']]:>7.0%}{arm['calls']:>8}{rating:>14}{thumbs:>14}"
              f"{_num(arm['latency_p50_ms']):>9}{_num(arm['latency_p95_ms']):>9}"
              f"{_num(arm['cost_per_call_usd'], '.6f'):>11}{arm['errors']:>8}")  # fmt: skip
    print()
    for c in results["comparisons"]:
        effect = f"{c['effect']:+.4g}" if c["effect"] is not None else "-"
        interval = c["effect_interval"]
        ci = f"[{interval[0]:+.3g}, {interval[1]:+.3g}]" if interval else ""
        p = f"p {c['p_value']:.3g}" if c["p_value"] is not None else "p -"
        valid = f"always-valid p {c['always_valid_p']:.3g}" if c["always_valid_p"] is not None else ""
        print(f"  {c['label']:26} {c['test']:28} {effect:>10} {ci:24} {p:10} {valid:24} {c['note']}")
    if data["transitions"]:
        print("\ntransitions:")
        for t in data["transitions"]:
            print(
                f"  {t['action']:8} {t['from']:>8} -> {t['to']:9} by {t['by'] or '-'}"
                + (f": {t['note']}" if t["note"] else "")
            )
    return 0


def _num(value: float | None, spec: str = ".0f") -> str:
    return format(value, spec) if value is not None else "-"


def _act(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if getattr(args, "share", None) is not None:
        body["share"] = args.share / 100
    if getattr(args, "arm", None):
        body["arm"] = args.arm
    if args.note:
        body["note"] = args.note
    done = call_daemon(args, "POST", f"/admin/experiments/{args.name}/{args.experiment_command}", json=body)
    if done is None:
        return 1
    shares = ", ".join(f"{name} {share:.0%}" for name, share in done["shares"].items())
    said = f"{done['name']}: {done['state']}"
    if done["state"] in ("ab", "rollout"):
        said += f" ({shares})"
    if done["state"] == "shadow":
        said += f" (the control serves; {done['shadow_share']:.0%} of calls copied to the others)"
    if done["state"] == "promoted":
        winner = next(a for a in done["arms"] if a["name"] == done["winner"])
        said += f": {done['prompt']}:{done['label']} -> v{winner['version']} ({done['winner']})"
    print(said)
    return 0


def run_experiment(args: argparse.Namespace) -> int:
    command = args.experiment_command
    return {"create": _create, "list": _list, "show": _show}.get(command, _act)(args)


def add_experiment_commands(sub: Any, add_key_options: Any, url_default: str) -> None:
    experiment = sub.add_parser(
        "experiment", help="prompt experiments: create, shadow, start, ramp, promote, stop"
    )
    commands = experiment.add_subparsers(dest="experiment_command", required=True)
    create = commands.add_parser("create", help="a draft experiment on a prompt's versions")
    create.add_argument("name")
    create.add_argument("--prompt", required=True)
    create.add_argument("--arm", action="append", required=True, metavar="NAME=VERSION[:MODEL]",
                        help="an arm (repeat; the first is the control)")  # fmt: skip
    metrics = ["rating", "thumbs_up", "error_rate", "cost", "latency", "cache_hit"]
    create.add_argument("--metric", default="rating", choices=metrics)
    create.add_argument(
        "--min-sample", type=int, default=100, help="per arm, before a winner may be declared"
    )
    create.add_argument("--alpha", type=float, default=0.05)
    create.add_argument("--label", default="production", help="the label it stands in for, and promote moves")
    create.add_argument("--keys", help="only these keys (comma-separated)")
    create.add_argument("--users", help="only these users")
    create.add_argument("--teams", help="only these teams")
    listed = commands.add_parser("list", help="every experiment with its state and split")
    listed.add_argument("--json", action="store_true")
    show = commands.add_parser("show", help="per arm figures, the tests, the verdict, the transitions")
    show.add_argument("name")
    show.add_argument("--window", choices=["today", "7d", "30d"], help="default: the whole experiment")
    show.add_argument("--json", action="store_true")
    parsers = [create, listed, show]
    for action in ACTIONS:
        parser = commands.add_parser(action, help=_HELP[action])
        parser.add_argument("name")
        if action in ("shadow", "start", "ramp"):
            flag = "--to" if action == "ramp" else "--share"
            parser.add_argument(flag, dest="share", type=float, required=action == "ramp", metavar="PERCENT",
                                help=_SHARE[action])  # fmt: skip
        if action in ("ramp", "promote"):
            parser.add_argument("--arm", help="default: the last arm (ramp) or the declared winner (promote)")
        parser.add_argument("--note", help="why, kept with the transition")
        parsers.append(parser)
    for parser in parsers:
        parser.add_argument("--url", default=url_default)
        add_key_options(parser)
        parser.set_defaults(func=run_experiment)


_HELP = {
    "shadow": "the control serves; the other arms answer a share of calls in the background",
    "start": "split the traffic between the arms (A/B)",
    "ramp": "raise an arm's share of the traffic",
    "promote": "move the label to the winner's version and end the experiment",
    "stop": "end the experiment, changing nothing",
}
_SHARE = {
    "shadow": "the share of calls copied to the other arms (default 100)",
    "start": "the candidate's share (default: the arms' weights)",
    "ramp": "the arm's new share",
}
