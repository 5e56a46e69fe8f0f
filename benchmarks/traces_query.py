"""/admin/traces over 1,000,000 traces: first page, filters, combinations and deep paging via HTTP.

Fills a database once (straight through the daemon's migrations + executemany, not HTTP) and
caches it in benchmarks/.cache/; then starts the daemon on it and times each query through
HTTP (p50 / max of --repeat runs). Anything over 200 ms is flagged with its EXPLAIN QUERY PLAN.

    .venv/bin/python benchmarks/traces_query.py [--rows 1000000] [--repeat 5] [--pages 10] [--regenerate]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from _harness import REPO, Client, Processes, create_key, median, start_daemon

sys.path.insert(0, str(REPO))
from daemon.storage.db import connect_sync  # noqa: E402
from daemon.storage.migrate import migrate  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache"
GENERATOR_VERSION = 3  # bump when the generated data changes
LIMIT_MS = 200.0
DAY = 86_400.0

# (model, provider, weight, USD per 1M input, output). `auto` requests are routed elsewhere.
MODELS = [
    ("gpt-4o-mini", "openai", 40, 0.15, 0.60), ("local-gemma", "llama_cpp", 25, 0.0, 0.0),
    ("claude-haiku", "anthropic", 15, 0.80, 4.00), ("gpt-4o", "openai", 9, 2.50, 10.0),
    ("text-embedding-3-small", "openai", 10, 0.02, 0.0), ("claude-sonnet", "anthropic", 1, 3.0, 15.0),
]  # fmt: skip
TEAMS = ["research", "support", "platform", "growth", "legal", "finance"]
USERS = [f"user{i:02d}" for i in range(40)]  # user00 is the heaviest (Zipf-like weights)
RARE_TEAM, RARE_USER = "interns", "intern01"  # ~0.05 % of the traffic
RETIRED = ("gpt-3.5-turbo", "openai", 0, 0.50, 1.50)  # 10 % of the traffic in the first 3 days only
TOPICS = ["invoice", "refund", "lighthouse", "kubernetes", "contract", "migration", "latency", "budget",
          "onboarding", "password", "shipment", "forecast", "schema", "tax", "roadmap", "outage"]  # fmt: skip
WORDS = ["the", "a", "of", "to", "and", "in", "for", "on", "with", "is", "be", "by", "this", "that", "it",
         "from", "or", "can", "will", "please", "customer", "order", "account", "service", "team", "report",
         "data", "model", "error", "request", "time", "update", "plan"]  # fmt: skip
ERRORS = [(502, "Upstream 'gpt-4o-mini' answered HTTP 500: internal error"),
          (504, "Upstream 'claude-haiku' timed out (https://api.anthropic.com)."),
          (429, "Budget exceeded for team 'growth'."), (400, "Invalid 'messages[0].role'.")]  # fmt: skip


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _pools(rng: random.Random) -> tuple[list[str], list[str]]:
    prompts = [f"About the {rng.choice(TOPICS)} {_sentence(rng, 6)}: {_sentence(rng, rng.randint(20, 90))}?"
               for _ in range(4000)]  # fmt: skip
    replies = [f"{_sentence(rng, rng.randint(30, 160))}." for _ in range(4000)]
    return prompts, replies


def generate(path: Path, rows: int, seed: int = 7) -> dict[str, Any]:
    """Rows in arrival order over the last 30 days; indices (from the migrations) built at the end."""
    rng = random.Random(seed)
    prompts, replies = _pools(rng)
    t1 = time.time()
    t0 = t1 - 30 * DAY
    conn = connect_sync(path)
    migrate(conn)
    indices = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'traces' "
                           "AND sql IS NOT NULL").fetchall()  # fmt: skip
    for name, _ in indices:
        conn.execute(f"DROP INDEX {name}")
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    model_weights = [m[2] for m in MODELS]
    user_weights = [1 / (i + 1) for i in range(len(USERS))] + [0.002]
    columns = ("id", "ts", "endpoint", "key_id", "user", "team", "requested_model", "served_model",
               "provider", "stream", "status", "http_status", "error", "request", "response",
               "finish_reason", "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "ttft_ms",
               "overhead_ms")  # fmt: skip
    sql = f"INSERT INTO traces ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    step = (t1 - t0) / rows
    batch: list[tuple[Any, ...]] = []
    for i in range(rows):
        ts = t0 + i * step + rng.random() * step
        model, provider, _, p_in, p_out = rng.choices(MODELS, model_weights)[0]
        if ts < t0 + 3 * DAY and rng.random() < 0.1:
            model, provider, _, p_in, p_out = RETIRED
        user_index = rng.choices(range(len(USERS) + 1), user_weights)[0]
        user, team = (USERS[user_index], TEAMS[user_index % len(TEAMS)]) if user_index < len(USERS) else (
            RARE_USER, RARE_TEAM)  # fmt: skip
        embedding = model.startswith("text-embedding")
        prompt = f"{prompts[rng.randrange(4000)]} (ticket #{rng.randrange(100_000):05d})"
        roll = rng.random()
        status, http, error = ("ok", 200, None) if roll < 0.955 else ("cancelled", 499, "client disconnected")
        if roll >= 0.965:
            status, (http, error) = "error", rng.choice(ERRORS)
        stream = not embedding and rng.random() < 0.5
        reply = None if embedding or status == "error" else replies[rng.randrange(4000)]
        pt = len(prompt) // 4 + 12
        ct = 0 if reply is None else len(reply) // 4
        latency = rng.lognormvariate(6.5, 0.8) if provider != "llama_cpp" else rng.lognormvariate(7.5, 0.6)
        messages = [{"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": prompt}]  # fmt: skip
        request = json.dumps({"messages": messages, "params": {"temperature": 0.7}})
        requested = "auto" if rng.random() < 0.05 else model
        batch.append((
            f"tr_{int(ts * 1000):012x}{rng.getrandbits(48):012x}", ts, "embeddings" if embedding else "chat",
            f"key{user_index:02d}", user, team, requested, model,
            provider, int(stream), status, http, error, request, reply, "stop" if reply else None, pt, ct,
            (pt * p_in + ct * p_out) / 1e6, latency, latency * 0.2 if stream else None, rng.uniform(0.2, 1.5),
        ))  # fmt: skip
        if len(batch) == 50_000 or i == rows - 1:
            conn.execute("BEGIN")
            conn.executemany(sql, batch)
            conn.execute("COMMIT")
            batch.clear()
            print(f"\r  {i + 1:,} rows", end="", flush=True)
    print("\n  building indices", flush=True)
    for _, index_sql in indices:
        conn.execute(index_sql)
    # A bulk load fills the search index in one pass, as the daemon's writer would step by step.
    print("  building the search index", flush=True)
    conn.execute("INSERT INTO traces_fts (traces_fts) VALUES ('rebuild')")
    conn.execute("UPDATE traces_fts_state SET indexed_seq = (SELECT max(seq) FROM traces)")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return {"rows": rows, "t0": t0, "t1": t1, "seed": seed}


def cached_database(rows: int, regenerate: bool) -> tuple[Path, dict[str, Any]]:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"traces-{rows}-v{GENERATOR_VERSION}.db"
    meta_path = path.with_suffix(".json")
    if regenerate or not meta_path.exists():
        for stale in CACHE.glob(f"{path.name}*"):
            stale.unlink()
        print(f"generating {rows:,} traces into {path} (once; cached for later runs)", flush=True)
        started = time.perf_counter()
        meta = generate(path, rows)
        meta["seconds"] = round(time.perf_counter() - started, 1)
        meta_path.write_text(json.dumps(meta))
    meta = json.loads(meta_path.read_text())
    print(f"database: {path} ({path.stat().st_size / 1e9:.2f} GB, {meta['rows']:,} traces, "
          f"generated in {meta['seconds']} s)", flush=True)  # fmt: skip
    return path, meta


def queries(meta: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    t1 = meta["t1"]
    day20 = {"since": t1 - 20 * DAY, "until": t1 - 19 * DAY}
    return [
        ("first page", {}),
        ("model=gpt-4o-mini (40%)", {"model": "gpt-4o-mini"}),
        ("model=claude-sonnet (1%)", {"model": "claude-sonnet"}),
        ("model=auto (requested only, 5%)", {"model": "auto"}),
        ("user=user00 (top user)", {"user": "user00"}),
        ("user=user39 (rare user)", {"user": "user39"}),
        ("model=gpt-3.5-turbo (retired 27 d ago)", {"model": "gpt-3.5-turbo"}),
        ("model=gpt-4o-typo (no such model)", {"model": "gpt-4o-typo"}),
        ("team=legal (no index)", {"team": "legal"}),
        ("team=interns (rare team, no index)", {"team": RARE_TEAM}),
        ("status=ok (95.5%, no index)", {"status": "ok"}),
        ("status=error (3.5%)", {"status": "error"}),
        ("status=cancelled (1%)", {"status": "cancelled"}),
        ("q=lighthouse (common word)", {"q": "lighthouse"}),
        ("q=ticket #04242 (~10 rows)", {"q": "ticket #04242"}),
        ("q=no-such-text (no match)", {"q": "no-such-text"}),
        ("since=last hour", {"since": t1 - 3600}),
        ("since=7 days ago", {"since": t1 - 7 * DAY}),
        ("one day, 20 days ago", day20),
        ("one week, 10 to 3 days ago", {"since": t1 - 10 * DAY, "until": t1 - 3 * DAY}),
        ("model=gpt-4o + status=error", {"model": "gpt-4o", "status": "error"}),
        ("user=user05 + model=claude-haiku", {"user": "user05", "model": "claude-haiku"}),
        ("model=gpt-4o-mini + day 20 days ago", {"model": "gpt-4o-mini", **day20}),
        ("user=user00 + q=refund", {"user": "user00", "q": "refund"}),
        ("status=error + last 24 h", {"status": "error", "since": t1 - DAY}),
        ("team=legal + status=cancelled", {"team": "legal", "status": "cancelled"}),
        ("user=user39 + status=error + day 20", {"user": "user39", "status": "error", **day20}),
    ]


class Admin:
    def __init__(self, port: int, key: str) -> None:
        self.client = Client(port, timeout=600)
        self.headers = {"authorization": f"Bearer {key}"}

    def get(self, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        path = "/admin/traces" + (f"?{urlencode(params)}" if params else "")
        started = time.perf_counter()
        status, _, body = self.client.get(path, self.headers)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
        return elapsed, json.loads(body)


def explain(db: Path, params: dict[str, Any]) -> list[str]:
    """The daemon's own SQL for these filters, through its query builder, explained."""
    try:
        from daemon.api.admin import trace_query
        from daemon.storage.traces import SCAN_TEXT, SUMMARY_COLUMNS, _where

        query = trace_query({k: str(v) for k, v in params.items()})
        text = (SCAN_TEXT, [query.text] * 3) if query.text else None  # the plan without the index
        where, args = _where(query, None, text)
        columns = ", ".join(SUMMARY_COLUMNS)
        sql = f"SELECT seq, {columns} FROM traces{where} ORDER BY ts DESC, seq DESC LIMIT ?"
        conn = connect_sync(db)
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", [*args, query.limit + 1])]
        conn.close()
        return plan
    except Exception as exc:  # the daemon's internals changed: the timing still stands
        return [f"(could not explain: {type(exc).__name__}: {exc})"]


def blocked_probe(admin: Admin, port: int, key: str, params: dict[str, Any]) -> tuple[float, float]:
    """While a slow query runs, how long does /v1/models take for a key the daemon has not cached?"""
    runner = threading.Thread(target=admin.get, args=(params,))
    runner.start()
    time.sleep(0.05)
    with Client(port) as other:
        started = time.perf_counter()
        other.get("/v1/models", {"authorization": f"Bearer {key}"})
        probe = (time.perf_counter() - started) * 1000
    runner.join()
    with Client(port) as other:
        started = time.perf_counter()
        other.get("/v1/models", {"authorization": f"Bearer {key}"})
        idle = (time.perf_counter() - started) * 1000
    return probe, idle


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query")
    parser.add_argument("--pages", type=int, default=10, help="pages deep to follow next_cursor")
    parser.add_argument("--regenerate", action="store_true", help="rebuild the cached database")
    args = parser.parse_args()
    started = time.time()
    db, meta = cached_database(args.rows, args.regenerate)
    slow: list[tuple[str, dict[str, Any], float]] = []
    with Processes() as procs:
        (procs.dir / "profile").mkdir()
        profile = procs.dir / "profile" / "traces.yaml"
        profile.write_text(
            "name: bench-traces\nmodels:\n  m: {provider: openai, base_url: 'http://127.0.0.1:9'}\n"
        )
        stamp = int(time.time() * 1000)
        key = create_key(db, f"bench-admin-{stamp}", "--admin")
        user_key = create_key(db, f"bench-user-{stamp}")  # for the probe: not in the daemon's key cache
        port = start_daemon(procs, profile, db, timeout=600)
        admin = Admin(port, key)
        print(f"\n{'query (limit 50)':40}{'rows':>6}{'p50 ms':>9}{'max ms':>9}")
        for label, params in queries(meta):
            times, found = [], 0
            for _ in range(args.repeat):
                elapsed, page = admin.get(params)
                times.append(elapsed)
                found = len(page["data"])
            flag = "  SLOW" if max(times) > LIMIT_MS else ""
            print(f"{label:40}{found:6d}{median(times):9.1f}{max(times):9.1f}{flag}", flush=True)
            if flag:
                slow.append((label, params, median(times)))
        t1 = meta["t1"]
        week = {"since": t1 - 10 * DAY, "until": t1 - 3 * DAY}
        print(f"\n{'paging via next_cursor':40}{'pages':>6}{'p50 ms':>9}{'max ms':>9}{'last ms':>9}")
        for label, params in [("all traces", {}), ("model=gpt-4o-mini", {"model": "gpt-4o-mini"}),
                              ("status=error", {"status": "error"}), ("user=user39", {"user": "user39"}),
                              ("model=claude-sonnet", {"model": "claude-sonnet"}),
                              ("team=legal", {"team": "legal"}), ("team=interns", {"team": RARE_TEAM}),
                              ("one week, 10 to 3 days ago", week)]:  # fmt: skip
            times, cursor = [], None
            for _ in range(args.pages):
                elapsed, page = admin.get({**params, **({"cursor": cursor} if cursor else {})})
                times.append(elapsed)
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            flag = "  SLOW" if max(times) > LIMIT_MS else ""
            print(
                f"{label:40}{len(times):6d}{median(times):9.1f}{max(times):9.1f}{times[-1]:9.1f}{flag}",
                flush=True,
            )
            if flag:
                slow.append((f"paging {label}", params, max(times)))
        if slow:
            probe, idle = blocked_probe(admin, port, user_key, slow[0][1])
            print(
                f"\nan authenticated GET /v1/models took {probe:.0f} ms while '{slow[0][0]}' ran "
                f"({idle:.1f} ms otherwise): the daemon's one reader connection serialises reads"
            )
        admin.client.close()
    print(f"\n{len(slow)} over {LIMIT_MS:.0f} ms" + (":" if slow else ""))
    for label, params, _ in slow:
        print(f"  {label}  {params}")
        for line in explain(db, params):
            print(f"      {line}")
    print(f"({time.time() - started:.0f} s, {time.strftime('%Y-%m-%d %H:%M')})")
    return 0 if not slow else 1


if __name__ == "__main__":
    raise SystemExit(main())
