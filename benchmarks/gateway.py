"""Gateway overhead: direct-to-upstream vs through the daemon, measured in the same run.

Starts the fake OpenAI-compatible upstream and the daemon (auth on, tracing always on) as separate
processes, then for non-streaming and streaming chat measures
  - p50 / p99 latency at concurrency 1 (a tight keep-alive loop in this process),
  - req/s at concurrency 32 (wrk with a Lua script; a Python fallback without wrk),
alternating direct and gateway runs over several rounds, and checks that every request was traced.

    .venv/bin/python benchmarks/gateway.py [--rounds 3] [--c1-seconds 3] [--c32-seconds 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _harness import (
    UPSTREAM_KEY,
    Client,
    Processes,
    cpu_seconds,
    create_key,
    median,
    percentile,
    run_loop,
    start_daemon,
    start_fake_upstream,
)

MODEL = "bench-model"
MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Say hello to the benchmark in a few words, please."},
]
TARGET_ADDED_P50_MS = 1.0
TARGET_RPS = 1000.0
OVERHEAD = "x-llmops-overhead-ms"  # the daemon's own account of its time

PROFILE = """\
name: bench
default_model: {model}
models:
  {model}:
    provider: openai
    base_url: "http://127.0.0.1:{port}/v1"
    api_key: "${{LLMOPS_BENCH_UPSTREAM_KEY}}"
    price: {{input: 0.15, output: 0.60}}
"""

WRK_LUA = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {{"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d}}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def chat_body(stream: bool) -> bytes:
    body: dict[str, Any] = {"model": MODEL, "messages": MESSAGES}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def wrk_load(
    wrk: str, port: int, body: bytes, key: str, seconds: float, conns: int, tmp: Path
) -> dict[str, Any]:
    script = tmp / f"post-{port}-{len(body)}.lua"
    script.write_text(WRK_LUA.format(body=body.decode(), key=key))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [wrk, "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script),
         f"http://127.0.0.1:{port}/v1/chat/completions"],
        capture_output=True, text=True, timeout=seconds + 60,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["loadgen_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


def python_load(port: int, body: bytes, key: str, seconds: float, conns: int) -> dict[str, Any]:
    """Fallback without wrk: threads with keep-alive clients (costs this process a lot of CPU)."""
    raw = Client.build("POST", "/v1/chat/completions", body, {"authorization": f"Bearer {key}"})
    counts, failures = [0] * conns, [0] * conns
    deadline = time.perf_counter() + seconds

    def worker(i: int) -> None:
        with Client(port) as client:
            while time.perf_counter() < deadline:
                status, _, _ = client.send(raw)
                counts[i] += 1
                failures[i] += status != 200

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"requests": sum(counts), "rps": sum(counts) / elapsed, "non2xx": sum(failures),
            "socket_errors": 0, "loadgen_cpu_s": float("nan")}  # fmt: skip


class Bench:
    def __init__(self, args: argparse.Namespace, procs: Processes, wrk: str | None) -> None:
        self.args, self.procs, self.wrk = args, procs, wrk
        self.c1: dict[tuple[str, str], list[float]] = {}
        self.rps: dict[tuple[str, str], list[float]] = {}
        self.cpu: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        self.overhead_header: list[float] = []
        self.gateway_requests = 0
        self.failures = 0
        self.last_trace_id = ""

    def setup(self) -> None:
        up_port = start_fake_upstream(self.procs)
        # Profile and database in separate folders, as by default: the profile watcher watches its folder.
        (self.procs.dir / "profile").mkdir()
        (self.procs.dir / "data").mkdir()
        profile, self.db = self.procs.dir / "profile" / "bench.yaml", self.procs.dir / "data" / "bench.db"
        profile.write_text(PROFILE.format(model=MODEL, port=up_port))
        self.key = create_key(self.db, "bench")
        self.admin_key = create_key(self.db, "bench-admin", "--admin")
        gw_port = start_daemon(self.procs, profile, self.db, {"LLMOPS_BENCH_UPSTREAM_KEY": UPSTREAM_KEY})
        self.targets = {"direct": (up_port, UPSTREAM_KEY), "gateway": (gw_port, self.key)}
        self.pids = {name: proc.pid for name, proc in self.procs.procs}

    def c1_run(self, target: str, mode: str, seconds: float) -> None:
        port, key = self.targets[target]
        raw = Client.build("POST", "/v1/chat/completions", chat_body(mode == "streaming"),
                           {"authorization": f"Bearer {key}"})  # fmt: skip
        latencies, headers, failures = run_loop(port, raw, seconds)
        self.failures += failures
        self.c1.setdefault((target, mode), []).extend(latencies)
        if target == "gateway":
            self.gateway_requests += len(latencies)
            self.overhead_header += [float(h[OVERHEAD]) for h in headers if OVERHEAD in h]
            self.last_trace_id = headers[-1].get("x-llmops-trace-id", "")

    def c32_run(self, target: str, mode: str, seconds: float) -> dict[str, Any]:
        port, key = self.targets[target]
        body = chat_body(mode == "streaming")
        before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        if self.wrk:
            result = wrk_load(self.wrk, port, body, key, seconds, 32, self.procs.dir)
        else:
            result = python_load(port, body, key, seconds, 32)
        spent = {name: cpu_seconds(pid) - before[name] for name, pid in self.pids.items()}
        self.failures += result["non2xx"] + result["socket_errors"]
        if target == "gateway":
            self.gateway_requests += result["requests"]
        self.rps.setdefault((target, mode), []).append(result["rps"])
        self.cpu.setdefault((target, mode), []).append(
            (spent["daemon"] / seconds, spent["upstream"] / seconds, result["loadgen_cpu_s"] / seconds)
        )
        return result

    def flame_graphs(self, out: str) -> None:
        """Extra gateway c=32 runs (not in the figures) with py-spy recording the daemon."""
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if spy is None:
            print("py-spy not found: .venv/bin/pip install py-spy")
            return
        port, key = self.targets["gateway"]
        for mode in ("non-streaming", "streaming"):
            path = Path(out).with_name(f"{Path(out).stem}-{mode}.svg")
            seconds = self.args.c32_seconds
            command = [spy, "record", "--pid", str(self.pids["daemon"]), "-d", str(seconds), "-r", "200"]
            rec = subprocess.Popen(
                [*command, "-o", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
            )
            body = chat_body(mode == "streaming")
            if self.wrk:
                result = wrk_load(self.wrk, port, body, key, seconds, 32, self.procs.dir)
            else:
                result = python_load(port, body, key, seconds, 32)
            self.gateway_requests += result["requests"]
            rec.wait()
            print(f"  py-spy flame graph of the daemon ({mode}, c=32, slowed by sampling): {path}")

    def run(self) -> None:
        a = self.args
        for target in ("direct", "gateway"):  # warm up connections, code paths, the writer
            for mode in ("non-streaming", "streaming"):
                port, key = self.targets[target]
                raw = Client.build("POST", "/v1/chat/completions", chat_body(mode == "streaming"),
                                   {"authorization": f"Bearer {key}"})  # fmt: skip
                n = len(run_loop(port, raw, 0.5)[0])
                self.gateway_requests += n if target == "gateway" else 0
        for r in range(a.rounds):
            order = ("direct", "gateway") if r % 2 == 0 else ("gateway", "direct")
            for mode in ("non-streaming", "streaming"):
                for target in order:
                    self.c1_run(target, mode, a.c1_seconds)
                for target in order:
                    res = self.c32_run(target, mode, a.c32_seconds)
                    print(f"  round {r + 1}/{a.rounds} {mode:13} {target:7} c=32: {res['rps']:8.0f} req/s",
                          flush=True)  # fmt: skip

    def traces(self) -> dict[str, Any]:
        time.sleep(1.0)  # streams cut off when wrk stopped are written without waiting
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        rows = conn.execute("SELECT status, stream, count(*) FROM traces GROUP BY 1, 2").fetchall()
        conn.close()
        port = self.targets["gateway"][0]
        with Client(port) as client:
            status, _, body = client.get(f"/admin/traces/{self.last_trace_id}",
                                         {"authorization": f"Bearer {self.admin_key}"})  # fmt: skip
        found = status == 200 and json.loads(body).get("id") == self.last_trace_id
        return {"rows": rows, "total": sum(r[2] for r in rows), "ok": sum(r[2] for r in rows if r[0] == "ok"),
                "last_found": found}  # fmt: skip


def report(b: Bench) -> bool:
    print()
    print(f"{'':28}{'direct':>12}{'gateway':>12}{'ratio':>9}{'added':>11}   target")
    passed = True
    for mode in ("non-streaming", "streaming"):
        d, g = b.c1[("direct", mode)], b.c1[("gateway", mode)]
        for q in (50, 99):
            dq, gq = percentile(d, q), percentile(g, q)
            target = ""
            if q == 50:
                ok = gq - dq <= TARGET_ADDED_P50_MS
                passed &= ok
                target = f"added <= {TARGET_ADDED_P50_MS:g} ms: {'PASS' if ok else 'FAIL'}"
            label = f"{mode} c=1 p{q} (ms)"
            print(f"{label:28}{dq:12.3f}{gq:12.3f}{gq / dq:8.2f}x{gq - dq:+10.3f}   {target}")
        dr, gr = median(b.rps[("direct", mode)]), median(b.rps[("gateway", mode)])
        ok = gr >= TARGET_RPS
        passed &= ok
        print(f"{mode + ' c=32 req/s':28}{dr:12.0f}{gr:12.0f}{gr / dr:8.2f}x{'':10}   "
              f">= {TARGET_RPS:g} req/s: {'PASS' if ok else 'FAIL'}")  # fmt: skip
    print()
    print("CPU during c=32 runs, in cores (median over rounds): daemon / upstream / wrk")
    for key, samples in sorted(b.cpu.items()):
        cols = [median([s[i] for s in samples]) for i in range(3)]
        print(f"  {key[1]:13} {key[0]:7}  {cols[0]:.2f} / {cols[1]:.2f} / {cols[2]:.2f}")
    n = {k: len(v) for k, v in b.c1.items()}
    print(
        f"c=1 samples per cell: {min(n.values())}-{max(n.values())}; gateway's own x-llmops-overhead-ms "
        f"p50 {percentile(b.overhead_header, 50):.3f} ms, p99 {percentile(b.overhead_header, 99):.3f} ms"
    )
    t = b.traces()
    traced = t["total"] >= b.gateway_requests
    verified = traced and t["last_found"]
    print(
        f"traces: {t['total']} rows ({t['ok']} ok) for {b.gateway_requests} gateway responses the clients "
        f"completed; by (status, stream): {t['rows']}; last trace via /admin/traces/{{id}}: "
        f"{'found' if t['last_found'] else 'MISSING'} -> tracing {'' if verified else 'NOT '}verified"
    )
    if b.failures:
        print(f"FAILED requests (non-200 or socket errors): {b.failures}")
    print("targets:", "all met" if passed and traced and not b.failures else "NOT all met")
    return passed and traced and not b.failures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating direct/gateway rounds")
    parser.add_argument("--c1-seconds", type=float, default=3.0, help="per concurrency-1 run")
    parser.add_argument("--c32-seconds", type=int, default=5, help="per concurrency-32 run")
    parser.add_argument(
        "--py-spy",
        metavar="OUT.svg",
        help="also record flame graphs of the daemon under "
        "c=32 load, in extra runs (needs py-spy: .venv/bin/pip install py-spy)",
    )
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator, not wrk")
    args = parser.parse_args()
    wrk = None if args.python_load else shutil.which("wrk")
    if wrk is None and not args.python_load:
        print("wrk not found: install it (Debian/Ubuntu: sudo apt-get install -y wrk; "
              "macOS: brew install wrk).\n"
              "Falling back to a Python load generator, which competes with the daemon for CPU: "
              "c=32 figures will be low.")  # fmt: skip
    started = time.time()
    with Processes() as procs:
        bench = Bench(args, procs, wrk)
        bench.setup()
        print(
            f"upstream :{bench.targets['direct'][0]}, daemon :{bench.targets['gateway'][0]} (auth on, "
            f"tracing on), load: {'wrk' if wrk else 'python threads'}, {args.rounds} rounds",
            flush=True,
        )
        bench.run()
        if args.py_spy:
            bench.flame_graphs(args.py_spy)
        ok = report(bench)
    print(f"({time.time() - started:.0f} s, {time.strftime('%Y-%m-%d %H:%M')})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
