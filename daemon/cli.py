"""The daemon's commands: serve, keys, status. `llmops` (llmops/cli.py) adds the console's."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daemon.settings import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    Settings,
    add_key_options,
    default_db_path,
    default_profile_path,
    resolve_keys,
)


def _gateway_server(config: Any, app: Any) -> Any:
    import uvicorn

    class GatewayServer(uvicorn.Server):
        """Tells the daemon at the first SIGINT/SIGTERM, so event streams end instead of holding up
        the graceful shutdown (which waits for every open connection)."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            services = getattr(app.state, "services", None)
            if services is not None:
                services.loop.call_soon_threadsafe(services.bus.close)
            super().handle_exit(sig, frame)

    return GatewayServer(config)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from daemon.api.http_protocol import GatewayHttpProtocol
    from daemon.app import create_app, prepare_database
    from daemon.config.loader import ProfileError, load_profile
    from daemon.storage import db
    from daemon.storage.keys import list_keys

    settings = Settings(
        profile_path=Path(args.profile).expanduser().resolve(), db_path=Path(args.db).expanduser().resolve(),
        host=args.host, port=args.port, watch_profile=not args.no_watch,
    )  # fmt: skip
    try:
        profile = load_profile(settings.profile_path)
    except ProfileError as exc:
        print(f"llmops: {exc}", file=sys.stderr)
        return 2
    prepare_database(settings.db_path)
    if not settings.loopback:
        conn = db.connect_sync(settings.db_path)
        active = [k for k in list_keys(conn) if not k["revoked_at"]]
        conn.close()
        if not active:
            print(
                f"llmops: refusing to listen on {settings.host}: there are no API keys, so anyone who can "
                "reach this address could use it. Create one first (llmops keys create NAME --admin) "
                "or bind 127.0.0.1.",
                file=sys.stderr,
            )
            return 2
    app = create_app(settings, profile)
    # httptools with deadlines for slow clients, a connection cap and OpenAI-shaped errors of its
    # own; they are the profile's `server:` settings as they are now (a reload does not change them).
    http = GatewayHttpProtocol.configured(profile.server)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, loop="uvloop", http=http,
        log_level=args.log_level, access_log=False, timeout_graceful_shutdown=30, lifespan="on",
    )  # fmt: skip
    server = _gateway_server(config, app)
    server.run()
    return 0 if server.started else 1


def _keys_db(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from daemon.app import prepare_database
    from daemon.storage import db

    path = Path(args.db).expanduser().resolve()
    prepare_database(path)
    return db.connect_sync(path)


def _keys_create(args: argparse.Namespace) -> int:
    from daemon.cli_budget import merge_specs
    from daemon.storage.budgets import set_limit
    from daemon.storage.keys import create_key

    conn = _keys_db(args)
    try:
        conn.execute("BEGIN IMMEDIATE")  # the key and its budget, or neither
        secret, row = create_key(conn, args.name, args.user or args.name, args.team, args.admin)
        for period, limit in merge_specs(args.budget).items():
            set_limit(conn, f"key:{row['id']}", period, limit.get("usd"), limit.get("tokens"), None, "cli")
        conn.execute("COMMIT")
    except Exception as exc:  # sqlite3/sqlean IntegrityError: the name is taken
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        print(f"llmops: cannot create key {args.name!r}: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    role = "admin" if args.admin else "user"
    print(
        f"Created {role} key {row['name']!r} for user {row['user']!r}"
        + (f" (team {row['team']})" if row["team"] else "")
    )
    for period, limit in merge_specs(args.budget).items():
        amounts = " and ".join(
            f"${v:g}" if k == "usd" else f"{v:,} tokens" for k, v in limit.items() if k != "per"
        )
        print(f"Its {period} budget: {amounts} (budgets: `llmops budget show key:{row['name']}`)")
    print("Store it now; it is not shown again:")
    print(secret)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from daemon.storage.keys import list_keys

    conn = _keys_db(args)
    rows = list_keys(conn)
    conn.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'NAME':20} {'ID':12} {'PREFIX':11} {'USER':14} {'TEAM':12} {'ROLE':6} {'CREATED':16} STATE")
    for r in rows:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"]))
        state = "revoked" if r["revoked_at"] else "active"
        role = "admin" if r["is_admin"] else "user"
        print(
            f"{r['name']:20} {r['id']:12} {r['prefix']:11} {r['user']:14} {r['team'] or '-':12} "
            f"{role:6} {created:16} {state}"
        )
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from daemon.storage.keys import list_keys, revoke_key

    conn = _keys_db(args)
    done = revoke_key(conn, args.name)
    active = sum(1 for key in list_keys(conn) if not key["revoked_at"])
    conn.close()
    if not done:
        print(f"llmops: no active key named {args.name!r}.", file=sys.stderr)
        return 1
    print(f"Revoked {args.name}.")
    if not active:
        print(
            "No active key remains: the daemon now refuses every call (it does not fall back to keyless "
            "local mode). Create a key (llmops keys create NAME --admin), or delete every key "
            "(llmops keys delete NAME) to return to local mode.",
            file=sys.stderr,
        )
    return 0


def _keys_delete(args: argparse.Namespace) -> int:
    from daemon.storage.keys import delete_key, list_keys

    conn = _keys_db(args)
    done = delete_key(conn, args.name)
    left = len(list_keys(conn))
    conn.close()
    if not done:
        print(f"llmops: no key named {args.name!r}.", file=sys.stderr)
        return 1
    back = "" if left else " No keys remain: the daemon is back in keyless local mode."
    print(f"Deleted {args.name}.{back}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from daemon.cli_models import run_models

    return run_models(args)


def _status(args: argparse.Namespace) -> int:
    import httpx

    headers = {"authorization": f"Bearer {args.key}"} if args.key else {}
    try:
        response = httpx.get(f"{args.url.rstrip('/')}/admin/status", headers=headers, timeout=5)
    except httpx.HTTPError as exc:
        print(
            f"llmops: no daemon answering at {args.url} ({type(exc).__name__}). Start one: llmops serve",
            file=sys.stderr,
        )
        return 1
    data = response.json()
    if response.status_code != 200:
        print(f"llmops: {response.status_code}: {data.get('error', {}).get('message')}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    profile = data["profile"]
    print(f"daemon    ok, llmops {data['version']}, up {data['uptime_s']:.0f} s, auth: {data['auth']}")
    print(f"profile   {profile['name']} ({profile['path']}), reloads: {profile['reloads']}")
    if profile["error"]:
        print(f"          last reload REJECTED: {profile['error']}")
    print(f"database  {data['database']}")
    print("models")
    for m in data["models"]:
        loaded = {True: "loaded", False: "not loaded yet", None: "remote"}[m["loaded"]]
        if m.get("load_error"):
            loaded = f"FAILED to load: {m['load_error']}"
        elif m["loaded"] and m.get("load_seconds") is not None:
            loaded += f" in {m['load_seconds']:.1f} s"
        kind = "embedding" if m["embedding"] else "chat"
        print(f"  {m['name']:24} {m['provider']:10} {kind:9} {loaded}")
    if data.get("routes"):
        print("routes")
        for r in data["routes"]:
            print(f"  {r['name']:24} {r['strategy']:10} {', '.join(r['models'])}")
    breakers = data.get("breakers") or []
    if breakers:
        enabled = breakers[0]["enabled"]
        print("circuit breakers" + ("" if enabled else " (off: no circuit_breaker in the profile)"))
        for b in breakers:
            print(f"  {b['model']:24} {breaker_line(b)}")
    return 0


def breaker_line(b: dict[str, Any]) -> str:
    """`closed, p95 412 ms (100 calls)`; `OPEN for 12 s after 5 failures: ...`."""
    if b["state"] == "open":
        said = f"circuit OPEN, probe in {b['retry_in_s']:.0f} s, after {b['failures']} failures"
    elif b["state"] == "half_open":
        said = "circuit HALF-OPEN, probing"
    else:
        said = "circuit closed" + (f", {b['failures']} failures in a row" if b["failures"] else "")
    if b["samples"]:
        said += f"; p50 {b['p50_ms'] or 0:.0f} ms, p95 {b['p95_ms'] or 0:.0f} ms ({b['samples']} calls)"
    if b["state"] != "closed" and b.get("last_error"):
        said += f"; last: {b['last_error'][:80]}"
    return said


def add_commands(sub: Any) -> None:
    """Register the daemon's commands (serve, keys, status) on the `llmops` parser."""
    from daemon.cli_budget import add_budget_commands, parse_spec

    url_default = os.environ.get("LLMOPS_URL", f"http://{DEFAULT_HOST}:{DEFAULT_PORT}")

    serve = sub.add_parser("serve", help="run the daemon in the foreground")
    serve.add_argument("--profile", default=str(default_profile_path()), help="profile YAML (hot-reloaded)")
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--db", default=str(default_db_path()), help="SQLite database file")
    serve.add_argument("--no-watch", action="store_true", help="do not hot-reload the profile")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=_serve)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    for name, func, helptext in (
        ("create", _keys_create, "create a key and print it once"),
        ("list", _keys_list, "list keys (never their secrets)"),
        ("revoke", _keys_revoke, "revoke a key by name or id"),
        ("delete", _keys_delete, "delete a key (revoked or not); with none left, local mode returns"),
    ):
        p = keys.add_parser(name, help=helptext)
        p.add_argument("--db", default=str(default_db_path()))
        p.set_defaults(func=func)
        if name in ("create", "revoke", "delete"):
            p.add_argument("name")
        if name == "create":
            p.add_argument("--user", help="the user the key acts as (default: NAME)")
            p.add_argument("--team")
            p.add_argument("--admin", action="store_true", help="may use /admin and the console")
            p.add_argument("--budget", action="append", type=parse_spec, default=[], metavar="SPEC",
                           help="its own budget: 5usd/day, 200000tokens/month... (repeatable)")  # fmt: skip
        if name == "list":
            p.add_argument("--json", action="store_true")

    models = sub.add_parser("models", help="a profile's models: where each comes from, its size, its state")
    models.add_argument("--profile", default=str(default_profile_path()), help="profile YAML")
    models.add_argument("--url", default=url_default, help="a running daemon to ask for each model's state")
    add_key_options(models)
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=_models)

    from daemon.cli_cache import add_cache_commands
    from daemon.cli_experiment import add_experiment_commands
    from daemon.cli_prompt import add_prompt_commands
    from daemon.cli_route import add_route_commands

    add_cache_commands(sub, add_key_options, url_default)
    add_budget_commands(sub, add_key_options, url_default)
    add_route_commands(sub, add_key_options, url_default)
    add_prompt_commands(sub, add_key_options, url_default)
    add_experiment_commands(sub, add_key_options, url_default)

    status = sub.add_parser("status", help="daemon health, profile, models")
    status.add_argument("--url", default=url_default)
    add_key_options(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)


def build_parser() -> argparse.ArgumentParser:
    """The daemon's commands alone (`python -m daemon`); `llmops` adds the console's."""
    parser = argparse.ArgumentParser(prog="python -m daemon", description="The llmops gateway daemon.")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request: noise under a command's output
    if hasattr(args, "key_file"):
        resolve_keys(args)
    return int(args.func(args))


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))
