"""`llmops cache stats | clear [--fences] | evict | bad-hit`: the running daemon's cache, through
/admin/cache (the daemon holds the cache's index, so changes go through it)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from daemon.cli_http import call_daemon, fetch


def run_cache(args: argparse.Namespace) -> int:
    if args.cache_command == "stats":
        return _stats(args)
    if args.cache_command == "clear" and args.fences:
        done = call_daemon(args, "DELETE", "/admin/cache/fences")
        if done is not None:
            print(f"Cleared {done['cleared_fences']} fences: bad hits no longer hold any pair apart.")
    elif args.cache_command == "clear":
        done = call_daemon(
            args, "DELETE", "/admin/cache", params={"namespace": args.namespace} if args.namespace else {}
        )
        if done is not None:
            print(
                f"Cleared {done['cleared']} entries" + (f" of {args.namespace}." if args.namespace else ".")
            )
    elif args.cache_command == "evict":
        done = call_daemon(args, "DELETE", f"/admin/cache/entries/{args.entry}")
        if done is not None:
            print(f"Evicted {done['evicted']} ({done['namespace']}).")
    else:
        done = call_daemon(args, "POST", "/admin/cache/bad-hits", json={"trace_id": args.trace_id})
        if done is not None:
            fenced = " and fenced the pair: the two questions will not match again" if done["fenced"] else ""
            print(f"Marked a bad hit: evicted the entry for {done['question']!r}{fenced}.")
    return 0 if done is not None else 1


def _stats(args: argparse.Namespace) -> int:
    data = fetch(args, "/admin/cache", params={"window": args.window})
    if isinstance(data, int):
        return data
    if not data["enabled"]:
        print("The cache is off: add a `cache:` section to the profile.")
    rate = f"{data['hit_rate']:.0%}" if data["hit_rate"] is not None else "-"
    print(f"entries   {data['entries']} in {len(data['namespaces'])} namespaces; "
          f"{len(data['bad_hits'])} bad hits, {data['fences']} fences")  # fmt: skip
    print(f"{data['window']:9} {data['lookups']} lookups, {data['hits']} hits ({rate}), "
          f"saved ${data['saved_usd']:.6f} and {data['saved_tokens']} tokens")  # fmt: skip
    for hit in data["recent_hits"][:10]:
        when = time.strftime("%H:%M:%S", time.localtime(hit["ts"]))
        print(f"  {when}  {hit['user'] or '-':12} {hit['question'][:70]!r}")
    return 0


def add_cache_commands(sub: Any, add_key_options: Any, url_default: str) -> None:
    cache = sub.add_parser("cache", help="the running daemon's response cache")
    commands = cache.add_subparsers(dest="cache_command", required=True)
    stats = commands.add_parser("stats", help="entries, lookups, hits, savings and the latest hits")
    stats.add_argument("--window", default="today", choices=["today", "7d", "30d"])
    stats.add_argument("--json", action="store_true")
    clear = commands.add_parser("clear", help="remove every entry (or one namespace's)")
    clear.add_argument("--namespace", help="e.g. 'user:alice|local-smol' (see stats --json)")
    clear.add_argument(
        "--fences", action="store_true", help="instead, forget the fences bad hits set (the entries stay)"
    )
    evict = commands.add_parser("evict", help="remove one entry")
    evict.add_argument("entry", help="the entry's id (GET /admin/cache/entries)")
    bad = commands.add_parser(
        "bad-hit", help="mark a cached answer as wrong: its entry is evicted (a match by meaning is fenced)"
    )
    bad.add_argument("trace_id", help="the trace of the call the cache answered")
    for command in (stats, clear, evict, bad):
        command.add_argument("--url", default=url_default)
        add_key_options(command)
        command.set_defaults(func=run_cache)
