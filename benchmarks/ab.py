"""A/B of the gateway's added latency at concurrency 1: this checkout against another revision.

Between two runs of gateway.py this shared machine's speed moves by more than most single changes
(+-0.1 ms added p50). Here both run in one process: a daemon from a git worktree of REV (A) and one
from this checkout (B), with auth and tracing on, on one fake upstream, in interleaved rounds (the
order flips each round), so drift cancels out. Prints the added p50 and the daemon's CPU per call.

    .venv/bin/python benchmarks/ab.py REV [--rounds 6] [--seconds 2] [--mode streaming]
        [--profile-extra budgets.yaml]   (a stage's section added to both profiles: its path A/B)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _harness import (
    PYTHON,
    REPO,
    UPSTREAM_KEY,
    Client,
    Processes,
    cpu_seconds,
    create_key,
    free_port,
    median,
    run_loop,
    start_fake_upstream,
)
from gateway import MODEL, PROFILE, chat_body

MODES = ("non-streaming", "streaming")


def start_daemon_from(
    procs: Processes, name: str, checkout: Path, upstream: int, extra: str = ""
) -> tuple[int, str, int]:
    """A daemon whose `daemon` package is the one in `checkout` (`python -m` puts its cwd first)."""
    found = subprocess.run([PYTHON, "-c", "import daemon; print(daemon.__file__)"], cwd=checkout,
                           capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    if not Path(found).resolve().is_relative_to(checkout.resolve()):
        raise RuntimeError(f"{name} would run {found}, not the code in {checkout}")
    folder = procs.dir / name
    (folder / "profile").mkdir(parents=True)
    (folder / "data").mkdir()
    profile, db = folder / "profile" / "bench.yaml", folder / "data" / "bench.db"
    profile.write_text(PROFILE.format(model=MODEL, port=upstream) + extra)
    key = create_key(db, "bench", cwd=checkout)
    port = free_port()
    args = [PYTHON, "-m", "daemon", "serve", "--profile", str(profile), "--db", str(db),
            "--port", str(port), "--log-level", "warning"]  # fmt: skip
    proc = procs.start(name, args, {"LLMOPS_BENCH_UPSTREAM_KEY": UPSTREAM_KEY}, cwd=checkout)
    procs.wait_http(name, port, "/health")
    return port, key, proc.pid


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rev", help="the revision to compare against (A), e.g. HEAD~1")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0, help="per run of one daemon in one mode")
    parser.add_argument("--mode", action="append", choices=MODES, help="default: both")
    parser.add_argument("--profile-extra", type=Path, help="YAML added to both profiles (a stage's section)")
    args = parser.parse_args()
    modes = args.mode or list(MODES)
    with tempfile.TemporaryDirectory(prefix="llmops-ab-") as tmp:
        worktree = Path(tmp) / "a"
        subprocess.run(["git", "worktree", "add", "--quiet", "--detach", str(worktree), args.rev],
                       cwd=REPO, check=True)  # fmt: skip
        try:
            return compare(args, modes, worktree)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, check=False)


def compare(args: argparse.Namespace, modes: list[str], worktree: Path) -> int:
    with Processes() as procs:
        upstream = start_fake_upstream(procs)
        targets = {"direct": (upstream, UPSTREAM_KEY, 0)}
        extra = args.profile_extra.read_text() if args.profile_extra else ""
        targets["A"] = start_daemon_from(procs, "A", worktree, upstream, extra)
        targets["B"] = start_daemon_from(procs, "B", REPO, upstream, extra)
        p50: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        for rnd in range(args.rounds + 1):  # round 0 warms up
            order = ["direct", "A", "B"] if rnd % 2 else ["direct", "B", "A"]
            for mode in modes:
                for target in order:
                    port, key, pid = targets[target]
                    raw = Client.build("POST", "/v1/chat/completions", chat_body(mode == "streaming"),
                                       {"authorization": f"Bearer {key}"})  # fmt: skip
                    before = cpu_seconds(pid) if pid else 0.0
                    latencies, _, failures = run_loop(port, raw, args.seconds)
                    if failures:
                        raise RuntimeError(f"{target} answered {failures} requests with an error")
                    if rnd:
                        p50.setdefault((mode, target), []).append(median(latencies))
                        if pid:
                            spent = (cpu_seconds(pid) - before) / len(latencies) * 1000
                            cpu.setdefault((mode, target), []).append(spent)
        print(f"A = {args.rev} (worktree), B = this checkout; {args.rounds} rounds of {args.seconds:g} s")
        for mode in modes:
            direct = p50[(mode, "direct")]
            added = {t: [g - d for g, d in zip(p50[(mode, t)], direct, strict=True)] for t in ("A", "B")}
            a, b = median(added["A"]), median(added["B"])
            cpu_a, cpu_b = median(cpu[(mode, "A")]), median(cpu[(mode, "B")])
            print(f"{mode:14} added p50  A {a:+.3f} ms  B {b:+.3f} ms  B-A {b - a:+.3f} ms   "
                  f"CPU a call  A {cpu_a:.3f} ms  B {cpu_b:.3f} ms")  # fmt: skip
            print(f"{'':14} per round  A {' '.join(f'{x:+.3f}' for x in added['A'])}")
            print(f"{'':14}            B {' '.join(f'{x:+.3f}' for x in added['B'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
