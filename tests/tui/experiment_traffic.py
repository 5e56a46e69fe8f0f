"""Prompt versions, an experiment and rated calls through a real daemon's API: what the prompts and
experiments views' tests (and a person trying the console) need. Run it against a daemon:

    python -m tests.tui.experiment_traffic http://127.0.0.1:9302            # fill it
    python -m tests.tui.experiment_traffic http://127.0.0.1:9302 --record   # the snapshots' answers
"""

from __future__ import annotations

import sys
from typing import Any

import httpx

SUMMARIZE_V1 = {
    "name": "summarize",
    "description": "A short summary of a support ticket",
    "messages": [
        {"role": "system", "content": "You summarise support tickets."},
        {"role": "user", "content": "Summarise: {{ ticket }}"},
    ],
    "params": {"temperature": 0.2},
    "labels": ["production"],
}
SUMMARIZE_V2 = {
    **SUMMARIZE_V1,
    "messages": [
        {"role": "system", "content": "You summarise support tickets in one sentence, for an engineer."},
        {"role": "user", "content": "Ticket:\n{{ ticket }}\n\nOne sentence: what is wrong, and for whom?"},
    ],
    "params": {"temperature": 0.0, "max_tokens": 80},
    "labels": ["staging"],
}
CLASSIFY = {
    "name": "classify",
    "description": "Route a ticket to a team",
    "messages": [{"role": "user", "content": "Which team handles this? {{ ticket }}"}],
}
EXPERIMENT = {
    "name": "summary-wording",
    "prompt": "summarize",
    "arms": [{"name": "control", "version": 1}, {"name": "concise", "version": 2}],
    "metric": "rating",
    "min_sample": 20,
}


def push_prompts(http: httpx.Client) -> None:
    for body in (SUMMARIZE_V1, SUMMARIZE_V2, CLASSIFY):
        http.post("/admin/prompts", json=body).raise_for_status()


def create_experiment(http: httpx.Client, **changes: Any) -> dict[str, Any]:
    response = http.post("/admin/experiments", json={**EXPERIMENT, **changes})
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def act(http: httpx.Client, name: str, action: str, **body: Any) -> dict[str, Any]:
    response = http.post(f"/admin/experiments/{name}/{action}", json=body)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def call(http: httpx.Client, user: str, prompt: str = "summarize") -> str:
    """One call naming the prompt; returns its trace id."""
    body = {
        "model": "fake",
        "user": user,
        "prompt": {"name": prompt, "variables": {"ticket": f"{user} cannot log in since the update"}},
    }
    response = http.post("/v1/chat/completions", json=body)
    response.raise_for_status()
    return response.headers["x-llmops-trace-id"]


def rate_by_arm(http: httpx.Client, trace_id: str, n: int) -> None:
    """Stars for most calls and thumbs for some: the concise arm's answers are liked better."""
    trace = http.get(f"/admin/traces/{trace_id}").json()
    better = trace.get("arm") == "concise"
    if n % 4 == 3:
        thumbs = "up" if better or n % 8 == 7 else "down"
        http.post("/v1/feedback", json={"trace_id": trace_id, "thumbs": thumbs}).raise_for_status()
    else:
        score = (4, 5, 5, 4, 5)[n % 5] if better else (3, 2, 4, 3, 3)[n % 5]
        http.post("/v1/feedback", json={"trace_id": trace_id, "score": score}).raise_for_status()


def rated_traffic(http: httpx.Client, users: int = 60, prompt: str = "summarize") -> list[str]:
    ids = []
    for n in range(users):
        trace_id = call(http, f"u{n + 1}", prompt)
        rate_by_arm(http, trace_id, n)
        ids.append(trace_id)
    return ids


def populate(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        push_prompts(http)
        rated_traffic(http, 6)  # before the experiment: version 1 (production) serves
        create_experiment(http)
        act(http, EXPERIMENT["name"], "start", note="first trial of the one-sentence wording")
        rated_traffic(http, 60)
        for n in range(5):
            call(http, f"c{n}", "classify")


# -- recording the snapshots' answers ---------------------------------------------------------------

TIME_KEYS = ("created_at", "at", "since", "start")


def shifted(value: Any, by: float) -> Any:
    """`value` with every time in it moved by `by` seconds (a recording made at any hour, as of FROZEN_NOW)."""
    if isinstance(value, dict):
        return {
            k: (v + by if k in TIME_KEYS and isinstance(v, float) else shifted(v, by))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [shifted(item, by) for item in value]
    return value


def record(url: str) -> None:
    """Write recorded_prompts.py and recorded_experiments.py from a daemon `populate` filled."""
    import pprint
    from pathlib import Path

    from tests.tui.conftest import FROZEN_NOW

    folder = Path(__file__).parent
    with httpx.Client(base_url=url, timeout=10) as http:
        experiment = http.get(f"/admin/experiments/{EXPERIMENT['name']}").json()
        by = FROZEN_NOW - 20 * 60 - experiment["transitions"][-1]["at"]  # started 20 minutes before
        answers: dict[str, Any] = {"/admin/prompts": http.get("/admin/prompts").json()}
        for prompt in answers["/admin/prompts"]["data"]:
            name = prompt["name"]
            answers[f"/admin/prompts/{name}"] = http.get(f"/admin/prompts/{name}").json()
            for v in range(1, prompt["version"] + 1):
                answers[f"/admin/prompts/{name}/versions/{v}"] = http.get(
                    f"/admin/prompts/{name}/versions/{v}"
                ).json()
                if v > 1:
                    answers[f"/admin/prompts/{name}/diff?from={v - 1}&to={v}"] = http.get(
                        f"/admin/prompts/{name}/diff", params={"from": v - 1, "to": v}
                    ).json()
        experiments = {
            "/admin/experiments": http.get("/admin/experiments").json(),
            f"/admin/experiments/{EXPERIMENT['name']}": experiment,
        }
    for file, constant, recorded in (
        ("recorded_prompts.py", "PROMPTS_ANSWERS", answers),
        ("recorded_experiments.py", "EXPERIMENTS_ANSWERS", experiments),
    ):
        text = (
            f'"""Answers of a real daemon that tests/tui/experiment_traffic.py `populate`d (two versions of\n'
            f"summarize, one of classify, the experiment summary-wording started and 60 users' calls rated),\n"
            f"by path, with times moved to 20 minutes before FROZEN_NOW. Made by `record` there; the tests\n"
            f'check that they keep the shape of a real daemon\'s answers."""\n\n'
            f"from __future__ import annotations\n\nfrom typing import Any\n\n{constant}: dict[str, Any] = {pprint.pformat(shifted(recorded, by), width=110, sort_dicts=False)}\n"
        )
        (folder / file).write_text(text)


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:9302"
    record(target) if sys.argv[2:] == ["--record"] else populate(target)
