"""Prompt experiments through a real daemon: the lifecycle (each transition recorded), sticky arms,
scope, shadow answers that never reach the client, promotion moving the label, and a winner
declared only when significant with enough of a sample."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.daemon_process import DaemonProcess, fake_profile, wait_until
from tests.fixtures.fake_openai import FakeOpenAI

CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def lab(fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    folder = tmp_path_factory.mktemp("experiments")
    daemon = DaemonProcess.serving(folder, fake_profile(fake_upstream.base_url))
    yield daemon
    daemon.stop()


def push(daemon: DaemonProcess, name: str, system: str) -> int:
    spec = {
        "name": name,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": "{{ q }}"}],
    }
    response = httpx.post(daemon.url + "/admin/prompts", json=spec)
    assert response.status_code in (200, 201), response.text
    return int(response.json()["version"])


def versions(daemon: DaemonProcess, name: str) -> tuple[int, int]:
    control, candidate = push(daemon, name, "Answer briefly."), push(daemon, name, "Answer at length.")
    httpx.put(f"{daemon.url}/admin/prompts/{name}/labels/production", json={"version": control})
    return control, candidate


def create(daemon: DaemonProcess, name: str, prompt: str, control: int, candidate: int, **extra: Any) -> None:
    body = {"name": name, "prompt": prompt, "arms": [{"name": "control", "version": control},
                                                     {"name": "candidate", "version": candidate}], **extra}  # fmt: skip
    response = httpx.post(daemon.url + "/admin/experiments", json=body)
    assert response.status_code == 201, response.text


def act(daemon: DaemonProcess, name: str, action: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{daemon.url}/admin/experiments/{name}/{action}", json=body)


def call(daemon: DaemonProcess, prompt: str, user: str, **asked: Any) -> httpx.Response:
    body = {
        "model": "fake",
        "user": user,
        "prompt": {"name": prompt, "variables": {"q": f"hi {user}"}, **asked},
    }
    response = httpx.post(daemon.url + CHAT, json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response


def trace(daemon: DaemonProcess, response: httpx.Response) -> dict[str, Any]:
    return dict(httpx.get(f"{daemon.url}/admin/traces/{response.headers['x-llmops-trace-id']}").json())


def show(daemon: DaemonProcess, name: str) -> dict[str, Any]:
    return dict(httpx.get(f"{daemon.url}/admin/experiments/{name}").json())


def test_the_lifecycle_splits_sticks_and_promotion_moves_the_label(lab: DaemonProcess) -> None:
    control, candidate = versions(lab, "greet")
    create(lab, "tone", "greet", control, candidate)
    assert call(lab, "greet", "u0").json()  # a draft changes nothing
    assert act(lab, "tone", "ramp", share=0.5).status_code == 409  # a draft cannot ramp
    started = act(lab, "tone", "start")
    assert started.status_code == 200 and started.json()["state"] == "ab"
    seen: dict[str, set[int]] = {}
    for user in (f"u{i}" for i in range(40)):
        for _ in range(2):
            found = trace(lab, call(lab, "greet", user))
            assert found["experiment"] == "tone"
            seen.setdefault(user, set()).add(found["prompt_version"])
    assert all(len(v) == 1 for v in seen.values())  # sticky
    assert Counter(next(iter(v)) for v in seen.values()).keys() == {control, candidate}
    pinned = trace(lab, call(lab, "greet", "u1", version=control))
    assert pinned["experiment"] is None  # a pinned version takes no part
    ramped = act(lab, "tone", "ramp", share=0.9, note="looks fine")
    assert ramped.json()["state"] == "rollout" and ramped.json()["shares"]["candidate"] == pytest.approx(0.9)
    promoted = act(lab, "tone", "promote", arm="candidate")
    assert promoted.json()["state"] == "promoted" and promoted.json()["winner"] == "candidate"
    labels = httpx.get(lab.url + "/admin/prompts/greet").json()["labels"]
    assert labels["production"] == candidate
    after = trace(lab, call(lab, "greet", "u5"))
    assert (after["experiment"], after["prompt_version"]) == (None, candidate)
    transitions = show(lab, "tone")["transitions"]
    assert [(t["action"], t["from"], t["to"]) for t in transitions] == [
        ("create", "-", "draft"), ("start", "draft", "ab"), ("ramp", "ab", "rollout"),
        ("promote", "rollout", "promoted"),
    ]  # fmt: skip
    assert transitions[2]["note"] == "looks fine" and all(t["by"] == "local" and t["at"] for t in transitions)
    assert act(lab, "tone", "start").status_code == 409  # ended


def test_shadow_answers_never_reach_the_client(lab: DaemonProcess, fake_upstream: FakeOpenAI) -> None:
    control, candidate = versions(lab, "quiet")
    create(lab, "hush", "quiet", control, candidate)
    assert act(lab, "hush", "shadow").json()["state"] == "shadow"
    for user in ("a", "b", "c", "d"):
        response = call(lab, "quiet", user)
        assert trace(lab, response)["prompt_version"] == control and response.json()["model"] == "fake"
    asked = {"hi a", "hi b", "hi c", "hi d"}

    def copies() -> list[dict[str, Any]]:
        return [r for r in fake_upstream.requests
                if r["messages"][0]["content"] == "Answer at length." and r["messages"][1]["content"] in asked]  # fmt: skip

    sent = wait_until(lambda: len(copies()) >= 4 and copies(), what="the candidate's shadow copies")
    assert len(sent) == 4  # each call copied to the candidate, in the background
    shadows = wait_until(lambda: show(lab, "hush")["shadows"], what="the shadows to be recorded")
    assert shadows[0]["arm"] == "candidate" and shadows[0]["calls"] == 4
    routing = httpx.get(lab.url + "/admin/routing").json()
    assert routing["shadows"] == []  # an experiment's copies are not a route's
    assert act(lab, "hush", "stop").json()["state"] == "stopped"
    labels = httpx.get(lab.url + "/admin/prompts/quiet").json()["labels"]
    assert labels["production"] == control  # a stop changes nothing


def test_only_the_scope_takes_part_and_one_experiment_runs_a_prompt(lab: DaemonProcess) -> None:
    control, candidate = versions(lab, "scoped")
    create(lab, "team-only", "scoped", control, candidate, scope={"users": ["ann", "bob"]})
    create(lab, "rival", "scoped", control, candidate)
    assert act(lab, "team-only", "start").status_code == 200
    clash = act(lab, "rival", "start")
    assert (
        clash.status_code == 409 and "already running on prompt 'scoped'" in clash.json()["error"]["message"]
    )
    assert trace(lab, call(lab, "scoped", "ann"))["experiment"] == "team-only"
    outside = trace(lab, call(lab, "scoped", "zoe"))
    assert (outside["experiment"], outside["prompt_version"]) == (None, control)


def test_a_winner_only_with_a_significant_difference_and_enough_ratings(lab: DaemonProcess) -> None:
    control, candidate = versions(lab, "rated")
    create(lab, "stars", "rated", control, candidate, min_sample=30)
    act(lab, "stars", "start")
    for i in range(120):
        response = call(lab, "rated", f"r{i}")
        arm = trace(lab, response)["arm"]
        score = (4 + i % 2) if arm == "candidate" else (2 + i % 2)  # the candidate is rated 2 stars better
        rated = httpx.post(lab.url + "/v1/feedback", json={"trace_id": response.headers["x-llmops-trace-id"],
                                                           "score": score})  # fmt: skip
        assert rated.status_code == 201
        if i == 20:
            early = show(lab, "stars")["results"]
            assert early["winner"] is None and "not yet" in early["verdict"]
            refused = act(lab, "stars", "promote")
            assert (
                refused.status_code == 409
                and "No winner is declared yet" in refused.json()["error"]["message"]
            )
    results = show(lab, "stars")["results"]
    rating = next(c for c in results["comparisons"] if c["metric"] == "rating")
    assert rating["test"] == "Welch's t" and rating["effect"] == pytest.approx(2.0, abs=0.2)
    assert rating["always_valid_p"] < 0.05 and rating["enough"] and rating["winner"] == "candidate"
    assert results["winner"] == "candidate" and results["verdict"] == "candidate wins"
    assert rating["note"].startswith("candidate wins")
    prompt = httpx.get(lab.url + "/admin/prompts/rated").json()
    assert prompt["experiment"] == {"name": "stars", "state": "ab", "label": "production"}
    arms = {a["name"]: a for a in results["arms"]}
    assert arms["candidate"]["mean_rating"] > arms["control"]["mean_rating"]
    assert sum(a["calls"] for a in arms.values()) == 120
    series = results["series"]
    assert series and set(series[0]) >= {"start", "control", "candidate"}
    assert any(point["candidate"] is not None and point["candidate"] >= 4 for point in series)
    assert all(c["arm"] == "candidate" for c in results["comparisons"])
    promoted = act(lab, "stars", "promote")  # no arm named: the declared winner
    assert promoted.status_code == 200 and promoted.json()["winner"] == "candidate"
    assert httpx.get(lab.url + "/admin/prompts/rated").json()["labels"]["production"] == candidate


def test_bad_experiments_are_clear_errors(lab: DaemonProcess) -> None:
    control, _ = versions(lab, "checked")
    bad = {
        "no such prompt": ({"prompt": "nope"}, 404),
        "one arm": ({"arms": [{"name": "a", "version": control}]}, 400),
        "a missing version": (
            {"arms": [{"name": "a", "version": control}, {"name": "b", "version": 99}]},
            404,
        ),
        "an unknown metric": ({"metric": "vibes"}, 400),
    }
    base = {"name": "bad", "prompt": "checked", "arms": [{"name": "a", "version": control},
                                                         {"name": "b", "version": control}]}  # fmt: skip
    for what, (change, status) in bad.items():
        response = httpx.post(lab.url + "/admin/experiments", json={**base, **change})
        assert response.status_code == status, what
        assert response.json()["error"]["message"], what
    assert httpx.post(lab.url + "/admin/experiments/nope/start", json={}).status_code == 404


def test_the_cli_drives_an_experiment(lab: DaemonProcess) -> None:
    control, candidate = versions(lab, "clied")

    def cli(*args: str) -> str:
        done = lab.cli("experiment", *args, "--url", lab.url)
        assert done.returncode == 0, done.stderr
        return done.stdout

    made = cli("create", "viacli", "--prompt", "clied", "--arm", f"old={control}", "--arm", f"new={candidate}",
               "--metric", "thumbs_up", "--min-sample", "10")  # fmt: skip
    assert "Created viacli on clied (old=v" in made and "it is a draft" in made
    assert "viacli: shadow (the control serves; 50% of calls copied" in cli(
        "shadow", "viacli", "--share", "50"
    )
    assert "viacli: ab (old 20%, new 80%)" in cli("start", "viacli", "--share", "80")
    call(lab, "clied", "someone")
    shown = cli("show", "viacli")
    assert "decides on thumbs-up rate" in shown and "verdict: not yet" in shown
    assert (
        "shadow       draft -> shadow" in shown.replace("  ", " ").replace("shadow  ", "shadow ")
        or "shadow" in shown
    )
    assert "viacli: rollout (old 10%, new 90%)" in cli("ramp", "viacli", "--to", "90")
    assert re.search(r"^viacli +rollout +clied +old 10%, new 90%$", cli("list"), re.MULTILINE)
    assert "viacli: stopped" in cli("stop", "viacli", "--note", "enough")
    refused = lab.cli("experiment", "start", "viacli", "--url", lab.url)
    assert refused.returncode == 1 and "is stopped: start needs it draft or shadow" in refused.stderr


def test_a_second_daemon_runs_the_experiment_the_first_started(lab: DaemonProcess) -> None:
    control, candidate = versions(lab, "twice")
    create(lab, "both", "twice", control, candidate)
    other = DaemonProcess(profile=lab.profile, db=lab.db).start()
    try:
        assert act(lab, "both", "start").status_code == 200
        wait_until(lambda: trace(other, call(other, "twice", "u1"))["experiment"] == "both", what="the start")
        arms = {trace(d, call(d, "twice", "u7"))["arm"] for d in (lab, other)}
        assert len(arms) == 1  # the same user gets the same arm from either daemon
    finally:
        other.stop()
