"""`llmops route fit`: from a JSONL file or from a route's rated calls, written where a running
daemon's complexity routes pick it up."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daemon.core.complexity import load
from tests.daemon_process import DaemonProcess, wait_until
from tests.fixtures.fake_openai import FakeOpenAI

ROUTE = """
routes:
  auto:
    strategy: complexity
    tiers:
      - {{name: cheap, models: [fake], below: {below}}}
      - {{name: best, models: [fake]}}
"""


def synthetic(path: Path, rows: int = 600) -> None:
    """Prompts judging several statements at once need the strong model; plain questions do not."""
    rng = random.Random(7)
    words = [
        "river",
        "cell",
        "market",
        "law",
        "music",
        "engine",
        "poem",
        "tax",
        "planet",
        "virus",
        "court",
        "code",
    ]
    with path.open("w") as out:
        for i in range(rows):
            topic = " ".join(rng.sample(words, 4))
            hard = i % 3 == 0
            prompt = (f"Statement 1 | The {topic} holds. Statement 2 | The {topic} fails. A. True, True "
                      "B. False, False C. True, False D. False, True") if hard else f"What is a {topic}?"  # fmt: skip
            weak, strong = (rng.random() < 0.3, rng.random() < 0.9) if hard else (rng.random() < 0.8, True)
            out.write(json.dumps({"prompt": prompt, "weak_correct": weak, "strong_correct": strong,
                                  "subject": f"s{i % 10}"}) + "\n")  # fmt: skip


@pytest.fixture(params=[0.5])
def routed(
    fake_upstream: FakeOpenAI, new_daemon: DaemonProcess, request: pytest.FixtureRequest
) -> Iterator[DaemonProcess]:
    from tests.daemon_process import fake_profile

    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url) + ROUTE.format(below=request.param))
    new_daemon.env["LLMOPS_DATA_DIR"] = str(new_daemon.db.parent / "data")
    yield new_daemon.start()


def ask(daemon: DaemonProcess, text: str, user: str = "u") -> httpx.Response:
    body = {"model": "auto", "user": user, "messages": [{"role": "user", "content": text}]}
    response = httpx.post(daemon.url + "/v1/chat/completions", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response


def decision(daemon: DaemonProcess, response: httpx.Response) -> str:
    trace = httpx.get(f"{daemon.url}/admin/traces/{response.headers['x-llmops-trace-id']}").json()
    return str(next(d["reason"] for d in trace["decisions"] if d["stage"] == "routing"))


def test_a_fit_prints_held_out_metrics_and_a_running_daemon_picks_it_up(routed: DaemonProcess) -> None:
    data = routed.db.parent / "rows.jsonl"
    synthetic(data)
    done = routed.cli("route", "fit", str(data))
    assert done.returncode == 0, done.stderr
    assert "10 groups, 5 folds with whole groups held out" in done.stdout
    scorer_line = next(line for line in done.stdout.splitlines() if line.startswith("complexity scorer "))
    assert float(scorer_line.split()[2]) > 0.6  # APGR: the statements cue separates them
    written = routed.db.parent / "data" / "routing" / "complexity.json"
    assert f"Wrote the scorer to {written}" in done.stdout
    fitted = load(written)
    question = "What is a river made of?"
    expected = f"complexity {fitted.score(question):.2f} "
    wait_until(lambda: decision(routed, ask(routed, question)).startswith(expected), timeout=15,
               what="the daemon to use the fitted scorer")  # fmt: skip


@pytest.mark.parametrize("routed", [0.99], indirect=True)  # nearly every call on the cheap tier
def test_a_fit_from_a_routes_rated_calls(routed: DaemonProcess) -> None:
    too_few = routed.cli("route", "fit", "--from-traces", "auto", "--db", str(routed.db), "--profile",
                         str(routed.profile))  # fmt: skip
    assert too_few.returncode == 1 and "0 rated calls of 'auto'" in too_few.stderr
    rng = random.Random(3)
    for i in range(60):
        hard = i % 2 == 0
        text = f"Statement 1 | claim {i} holds. Statement 2 | it fails. Which is true?" if hard else f"hi {i}"
        response = ask(routed, text, user=f"user-{i % 6}")
        cheap = "-> tier cheap" in decision(routed, response)
        good = not hard if cheap else rng.random() < 0.9
        rating = {"trace_id": response.headers["x-llmops-trace-id"], "thumbs": "up" if good else "down"}
        assert httpx.post(routed.url + "/v1/feedback", json=rating).status_code == 201
    out = routed.db.parent / "from-traces.json"
    done = routed.cli("route", "fit", "--from-traces", "auto", "--db", str(routed.db), "--profile",
                      str(routed.profile), "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "6 groups, 5 folds with whole groups held out" in done.stdout
    assert out.exists() and load(out).metrics["rows"] >= 30


def test_fit_refuses_what_it_cannot_use(routed: DaemonProcess, tmp_path: Path) -> None:
    both = routed.cli("route", "fit", "x.jsonl", "--from-traces", "auto")
    assert both.returncode == 2 and "not both" in both.stderr
    missing = routed.cli("route", "fit", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    not_complexity = routed.cli("route", "fit", "--from-traces", "fake", "--db", str(routed.db), "--profile",
                                str(routed.profile))  # fmt: skip
    assert not_complexity.returncode == 1 and "'fake' is not a complexity route" in not_complexity.stderr
