"""Every error the gateway answers, in the OpenAI shape with the right status, and traced."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.daemon_process import DaemonProcess, fake_profile
from tests.fixtures.fake_openai import FakeOpenAI

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hi"}]


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def post(daemon: DaemonProcess, path: str = CHAT, **kwargs: object) -> httpx.Response:
    return httpx.post(daemon.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_malformed_json(gateway: DaemonProcess) -> None:
    error = error_of(
        post(
            gateway, content=b'{"model": "fake", "messages": [', headers={"content-type": "application/json"}
        ),
        400,
    )
    assert "not valid JSON" in error["message"] and error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"model": 3, "messages": HELLO}, "model", "string"),
        ({"model": "fake", "messages": "hi"}, "messages", "array"),
        ({"model": "fake", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", "wizard"),
        ({"model": "fake", "messages": HELLO, "temperature": "hot"}, "temperature", "number"),
        ({"model": "fake", "messages": HELLO, "temperature": 3}, "temperature", "between"),
        ({"model": "fake", "messages": HELLO, "max_tokens": 0}, "max_tokens", "at least 1"),
        ({"model": "fake", "messages": HELLO, "n": 2}, "n", "n=1"),
        ({"model": "fake", "messages": HELLO, "stream": "yes"}, "stream", "boolean"),
        ({"model": "fake", "messages": HELLO, "stop": [1]}, "stop", "strings"),
        (
            {"model": "fake", "messages": HELLO, "stream_options": {"include_usage": True}},
            "stream_options",
            "stream",
        ),
        ([1, 2], None, "JSON object"),
    ],
)
def test_invalid_fields_name_the_field(
    gateway: DaemonProcess, body: object, param: str | None, words: str
) -> None:
    error = error_of(post(gateway, json=body), 400)
    assert error["param"] == param
    assert words in error["message"]


def test_invalid_embeddings_input(gateway: DaemonProcess) -> None:
    error = error_of(post(gateway, "/v1/embeddings", json={"model": "fake-embed", "input": 5}), 400)
    assert error["param"] == "input"


def test_a_request_without_model_uses_the_default_model(gateway: DaemonProcess) -> None:
    response = post(gateway, json={"messages": HELLO})
    assert response.status_code == 200 and response.headers["x-llmops-model"] == "fake"  # default_model: fake


def test_without_model_or_default_model_is_a_404_that_says_so(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url).replace("default_model: fake\n", ""))
    new_daemon.start()
    error = error_of(post(new_daemon, json={"messages": HELLO}), 404)
    assert (
        error["param"] == "model"
        and "names no model" in error["message"]
        and "default_model" in error["message"]
    )


def test_unknown_model_lists_available(gateway: DaemonProcess) -> None:
    error = error_of(post(gateway, json={"model": "gpt-9", "messages": HELLO}), 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "gpt-9" in error["message"] and "fake" in error["message"] and "fake-embed" in error["message"]
    # the SDK maps it to its NotFoundError
    with pytest.raises(openai.NotFoundError):
        openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0).chat.completions.create(
            model="gpt-9", messages=HELLO
        )


def test_body_over_limit_is_413(gateway: DaemonProcess) -> None:
    huge = {"model": "fake", "messages": [{"role": "user", "content": "x" * (5 * 1024 * 1024)}]}
    error = error_of(post(gateway, json=huge), 413)
    assert "limit" in error["message"] or "at most" in error["message"]

    def chunked():  # no content-length: the limit holds while reading
        yield b'{"model": "fake", "messages": [{"role": "user", "content": "'
        for _ in range(80):
            yield b"y" * 65536
        yield b'"}]}'

    error_of(post(gateway, content=chunked()), 413)


def test_unknown_route_and_method(gateway: DaemonProcess) -> None:
    error_of(httpx.get(gateway.url + "/v1/nothing"), 404)
    error_of(httpx.get(gateway.url + CHAT), 405)


def test_upstream_4xx_is_not_retried(gateway: DaemonProcess, fake_upstream: FakeOpenAI) -> None:
    fake_upstream.inject(status=400, count=1)
    before = len(fake_upstream.requests)
    error_of(post(gateway, json={"model": "fake", "messages": HELLO}), 502)
    assert len(fake_upstream.requests) - before == 1


def test_missing_gguf_is_503_and_daemon_keeps_serving(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    from tests.daemon_process import fake_profile

    extra = """
  ghost:
    provider: llama_cpp
    path: /nonexistent/ghost.gguf
    chat_format: gemma
    load: eager
"""
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url, extra=extra))
    new_daemon.start()
    error = error_of(post(new_daemon, json={"model": "ghost", "messages": HELLO}), 503)
    assert "ghost" in error["message"] and "/nonexistent/ghost.gguf" in error["message"]
    assert post(new_daemon, json={"model": "fake", "messages": HELLO}).status_code == 200
