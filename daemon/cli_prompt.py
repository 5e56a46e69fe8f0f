"""`llmops prompt list | show NAME[@VERSION|:LABEL] | diff NAME V1 V2 | label NAME VERSION LABEL |
push FILE | render NAME --var k=v`: the running daemon's prompt registry, through /admin/prompts."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from daemon.cli_http import call_daemon, fetch


def _list(args: argparse.Namespace) -> int:
    data = fetch(args, "/admin/prompts")
    if isinstance(data, int):
        return data
    if not data["data"]:
        print("No prompts yet: add YAML files to the profile's prompt folder, or `llmops prompt push FILE`.")
    for p in data["data"]:
        labels = ", ".join(f"{label}@{v}" for label, v in sorted(p["labels"].items()))
        versions = f"v{p['version']:<4} {p['versions']:3} versions"
        print(f"{p['name']:24} {versions}  {labels:32} {p['description'][:50]}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from daemon.prompts.reference import parse_reference

    ref = parse_reference(args.ref)
    name = ref["name"]
    if "version" in ref or "label" in ref:
        version = ref.get("version") or _label_version(args, name, ref["label"])
        if version is None:
            return 1
        data = fetch(args, f"/admin/prompts/{name}/versions/{version}")
        if not isinstance(data, int):
            print(f"# {name}@{data['version']} ({data['source']}, {_when(data['created_at'])})")
            print(data["yaml"], end="")
        return data if isinstance(data, int) else 0
    data = fetch(args, f"/admin/prompts/{name}")
    if isinstance(data, int):
        return data
    labels = data["labels"]
    print(f"{name}: {len(data['versions'])} versions; labels: "
          + ", ".join(f"{label} -> v{v}" for label, v in sorted(labels.items())))  # fmt: skip
    for v in data["versions"]:
        marks = ", ".join(label for label, n in labels.items() if n == v["version"])
        usage = v["usage"] or {}
        said = f"{usage.get('calls', 0)} calls"
        if usage.get("stars"):
            said += f", {usage['mean_stars']:.2f} stars ({usage['stars']})"
        if usage.get("thumbs"):
            said += f", {usage['thumbs_up_share']:.0%} thumbs up ({usage['thumbs']})"
        print(f"  v{v['version']:<4} {_when(v['created_at'])}  {v['source']:24} {said:40} {marks}")
    print()
    print(data["latest"]["yaml"], end="")
    return 0


def _label_version(args: argparse.Namespace, name: str, label: str) -> int | None:
    data = call_daemon(args, "GET", f"/admin/prompts/{name}")
    if data is None:
        return None
    version = data["labels"].get(label)
    if version is None:
        print(f"llmops: {name} has no label {label!r} (labels: {', '.join(data['labels'])})", file=sys.stderr)
    return version  # type: ignore[no-any-return]


def _diff(args: argparse.Namespace) -> int:
    data = fetch(args, f"/admin/prompts/{args.name}/diff", params={"from": args.v1, "to": args.v2})
    if isinstance(data, int):
        return data
    print(data["diff"] or f"{args.name}: versions {args.v1} and {args.v2} are the same", end="")
    return 0


def _label(args: argparse.Namespace) -> int:
    done = call_daemon(
        args, "PUT", f"/admin/prompts/{args.name}/labels/{args.label}", json={"version": args.version}
    )
    if done is None:
        return 1
    was = f" (was v{done['previous']})" if done["previous"] is not None else ""
    print(f"{args.name}:{args.label} -> v{args.version}{was}")
    return 0


def _push(args: argparse.Namespace) -> int:
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"llmops: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    done = call_daemon(args, "POST", "/admin/prompts", json={"yaml": text})
    if done is None:
        return 1
    if done["created"]:
        print(f"{done['name']}: version {done['version']} ({', '.join(done['labels_moved'])} moved to it)")
    else:
        print(f"{done['name']}: unchanged, the same as version {done['version']}")
    return 0


def _render(args: argparse.Namespace) -> int:
    from daemon.prompts.reference import parse_reference

    ref = parse_reference(args.ref)
    variables = {}
    for item in args.var or []:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"llmops: --var {item!r}: expected KEY=VALUE", file=sys.stderr)
            return 2
        variables[key] = value
    body = {k: v for k, v in ref.items() if k != "name"} | {"variables": variables}
    data = call_daemon(args, "POST", f"/admin/prompts/{ref['name']}/render", json=body)
    if data is None:
        return 1
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"# {data['name']}@{data['version']}" + (f" ({data['label']})" if data["label"] else ""))
    for message in data["messages"]:
        print(f"[{message['role']}]\n{message['content']}\n")
    return 0


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


COMMANDS = {"list": _list, "show": _show, "diff": _diff, "label": _label, "push": _push, "render": _render}


def run_prompt(args: argparse.Namespace) -> int:
    return COMMANDS[args.prompt_command](args)


def add_prompt_commands(sub: Any, add_key_options: Any, url_default: str) -> None:
    prompt = sub.add_parser("prompt", help="the prompt registry: versions, labels, diff, push, render")
    commands = prompt.add_subparsers(dest="prompt_command", required=True)
    listed = commands.add_parser("list", help="every prompt with its latest version and labels")
    show = commands.add_parser("show", help="a prompt's versions with their use and ratings, or one version")
    show.add_argument("ref", help="NAME, NAME@VERSION or NAME:LABEL")
    diff = commands.add_parser("diff", help="what changed between two versions")
    diff.add_argument("name")
    diff.add_argument("v1", type=int)
    diff.add_argument("v2", type=int)
    label = commands.add_parser("label", help="point a label at a version (a release, or a rollback)")
    label.add_argument("name")
    label.add_argument("version", type=int)
    label.add_argument("label")
    push = commands.add_parser("push", help="save a prompt file as a new version (none if unchanged)")
    push.add_argument("file")
    render = commands.add_parser("render", help="the messages a call would send")
    render.add_argument("ref", help="NAME, NAME@VERSION or NAME:LABEL")
    render.add_argument(
        "--var", action="append", metavar="KEY=VALUE", help="a template variable (repeatable)"
    )
    render.add_argument("--json", action="store_true")
    for command in (listed, show, diff, label, push, render):
        command.add_argument("--url", default=url_default)
        add_key_options(command)
        command.set_defaults(func=run_prompt)
    for command in (listed, show, diff):
        command.add_argument("--json", action="store_true")
