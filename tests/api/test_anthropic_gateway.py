"""The openai SDK through the daemon to a fake Anthropic Messages API: translation both ways."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.daemon_process import DaemonProcess
from tests.fixtures.fake_anthropic import FakeAnthropic, Reply
from tests.fixtures.fake_openai import FakeOpenAI

ANTHROPIC_KEY = "sk-ant-fake-secret"


@pytest.fixture(scope="module")
def claude(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, FakeAnthropic]]:
    fake = FakeAnthropic(api_key=ANTHROPIC_KEY).start()
    folder = tmp_path_factory.mktemp("anthropic")
    profile = folder / "profile.yaml"
    profile.write_text(f"""
name: claude
models:
  claude:
    provider: anthropic
    base_url: "{fake.base_url}"
    api_key: "${{ANTHROPIC_KEY}}"
    upstream_model: claude-3-5-haiku-latest
    price: {{input: 0.8, output: 4.0, cached_input: 0.08}}
""")
    daemon = DaemonProcess(profile=profile, db=folder / "t.db", env={"ANTHROPIC_KEY": ANTHROPIC_KEY}).start()
    yield daemon, fake
    daemon.stop()
    fake.stop()


def sdk(daemon: DaemonProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=daemon.url + "/v1", api_key="x", max_retries=0)


def test_chat_translates_both_ways_and_traces_cost(claude: tuple[DaemonProcess, FakeAnthropic]) -> None:
    daemon, fake = claude
    fake.reply = Reply.text("Bonjour!", input_tokens=20, output_tokens=5, cache_read_input_tokens=10)
    raw = sdk(daemon).chat.completions.with_raw_response.create(
        model="claude",
        max_tokens=64,
        messages=[{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hello"}],
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Bonjour!"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 30 and completion.usage.completion_tokens == 5
    sent = fake.requests[-1].body
    assert sent["system"] == "Answer in French." and sent["model"] == "claude-3-5-haiku-latest"
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    assert sent["max_tokens"] == 64
    row = httpx.get(f"{daemon.url}/admin/traces/{raw.headers['x-llmops-trace-id']}").json()
    assert row["provider"] == "anthropic" and row["cached_tokens"] == 10
    assert row["cost_usd"] == pytest.approx((20 * 0.8 + 10 * 0.08 + 5 * 4.0) / 1e6)


def test_streaming_with_usage(claude: tuple[DaemonProcess, FakeAnthropic]) -> None:
    daemon, fake = claude
    fake.reply = Reply.text("one two three", input_tokens=9, output_tokens=3)
    chunks = list(
        sdk(daemon).chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert chunks[-1].usage.completion_tokens == 3 and chunks[-1].usage.prompt_tokens == 9
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]


def test_tool_calls(claude: tuple[DaemonProcess, FakeAnthropic]) -> None:
    daemon, fake = claude
    fake.reply = Reply.tool_use("get_weather", {"city": "Oslo"})
    completion = sdk(daemon).chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "weather in Oslo?"}],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and call.function.arguments == '{"city":"Oslo"}'
    assert completion.choices[0].finish_reason == "tool_calls"
    assert fake.requests[-1].body["tools"][0]["input_schema"]["properties"]["city"] == {"type": "string"}


def test_a_cascade_judges_an_answer_without_logprobs_by_its_text(
    claude: tuple[DaemonProcess, FakeAnthropic], fake_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    """Anthropic gives no token probabilities: a hedging or empty answer escalates, a plain one is served."""
    _, fake = claude
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"""
models:
  claude:
    provider: anthropic
    base_url: "{fake.base_url}"
    api_key: "${{ANTHROPIC_KEY}}"
  gpt:
    provider: openai
    base_url: "{fake_upstream.base_url}"
    api_key: "${{FAKE_KEY}}"
routes:
  careful: {{strategy: cascade, models: [claude, gpt], min_confidence: 0.6}}
""")
    daemon = DaemonProcess(
        profile=profile, db=tmp_path / "t.db", env={"ANTHROPIC_KEY": ANTHROPIC_KEY}
    ).start()
    try:
        served = {}
        for text in ("Paris is the capital of France.", "I'm not sure; it may be Lyon.", ""):
            fake.reply = Reply.text(text)
            completion = sdk(daemon).chat.completions.with_raw_response.create(
                model="careful", messages=[{"role": "user", "content": "What is the capital of France?"}]
            )
            served[text] = completion.headers["x-llmops-model"]
        assert served == {"Paris is the capital of France.": "claude", "I'm not sure; it may be Lyon.": "gpt",
                          "": "gpt"}  # fmt: skip
    finally:
        daemon.stop()
