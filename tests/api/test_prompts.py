"""The prompt registry through a real daemon: files in the prompt folder (hot-reloaded), versions,
labels and rollback, rendering and its errors, the sandbox, the trace, the cache, the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.daemon_process import DaemonProcess, fake_profile, wait_until
from tests.fixtures.fake_openai import FakeOpenAI

CHAT = "/v1/chat/completions"
SUMMARIZE = """
name: summarize
description: Summarize a text
params: {{temperature: 0.2, max_tokens: 50}}
messages:
  - role: system
    content: {system}
  - role: user
    content: |
      Summarize in {{{{ sentences }}}} sentences:
      {{{{ text }}}}
labels: [production]
"""
CACHED = """
cache: {scope: global}
"""


def write_summarize(folder: Path, system: str = "You are concise.") -> None:
    (folder / "summarize.yaml").write_text(SUMMARIZE.format(system=system))


@pytest.fixture(scope="module")
def prompted(fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    folder = tmp_path_factory.mktemp("prompts")
    (folder / "prompts").mkdir()
    write_summarize(folder / "prompts")
    daemon = DaemonProcess.serving(folder, fake_profile(fake_upstream.base_url) + CACHED)
    yield daemon
    daemon.stop()


def prompts_dir(daemon: DaemonProcess) -> Path:
    return daemon.profile.parent / "prompts"


def chat(daemon: DaemonProcess, prompt: dict[str, Any] | None = None, **body: Any) -> httpx.Response:
    if prompt is not None:
        body["prompt"] = prompt
    return httpx.post(daemon.url + CHAT, json={"model": "fake", **body}, timeout=10)


def admin(daemon: DaemonProcess, path: str) -> Any:
    return httpx.get(daemon.url + "/admin/prompts" + path, timeout=10).json()


def trace(daemon: DaemonProcess, response: httpx.Response) -> dict[str, Any]:
    return dict(httpx.get(f"{daemon.url}/admin/traces/{response.headers['x-llmops-trace-id']}").json())


VARIABLES = {"sentences": 2, "text": "The cat sat on the mat."}


def test_a_call_gets_the_rendered_prompt_before_its_own_messages(
    prompted: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    extra = [{"role": "user", "content": "And in French?"}]
    response = chat(prompted, {"name": "summarize", "variables": VARIABLES}, messages=extra)
    assert response.status_code == 200, response.text
    sent = fake_upstream.requests[-1]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "user"]
    assert sent["messages"][1]["content"] == "Summarize in 2 sentences:\nThe cat sat on the mat.\n"
    assert sent["messages"][2]["content"] == "And in French?"
    assert (sent["temperature"], sent["max_tokens"]) == (0.2, 50)  # the prompt's parameters
    assert "prompt" not in sent
    found = trace(prompted, response)
    assert (found["prompt_name"], found["prompt_label"]) == ("summarize", "production")
    assert found["prompt_version"] == admin(prompted, "/summarize")["labels"]["production"]
    assert "Summarize in 2 sentences" in found["request"]["messages"][1]["content"]


def test_the_calls_own_parameters_win(prompted: DaemonProcess, fake_upstream: FakeOpenAI) -> None:
    assert chat(prompted, {"name": "summarize", "variables": VARIABLES}, temperature=0.9).status_code == 200
    assert fake_upstream.requests[-1]["temperature"] == 0.9


def test_the_openai_sdk_names_a_prompt_in_extra_body_or_a_header(
    prompted: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    client = openai.OpenAI(base_url=prompted.url + "/v1", api_key="x", max_retries=0)
    client.chat.completions.create(
        model="fake", messages=[], extra_body={"prompt": {"name": "summarize", "variables": VARIABLES}}
    )
    assert fake_upstream.requests[-1]["messages"][0]["content"] == "You are concise."
    httpx.post(prompted.url + "/admin/prompts", json={
        "name": "hello", "messages": [{"role": "user", "content": "Say hello."}],
    })  # fmt: skip
    client.chat.completions.create(
        model="fake",
        messages=[{"role": "user", "content": "twice"}],
        extra_headers={"x-llmops-prompt": "hello@1"},
    )
    assert [m["content"] for m in fake_upstream.requests[-1]["messages"]] == ["Say hello.", "twice"]


@pytest.mark.parametrize(
    ("prompt", "status", "param", "words"),
    [
        ({"name": "nope"}, 404, "prompt.name", "There is no prompt 'nope'"),
        ({"name": "summarize", "version": 99, "variables": VARIABLES}, 404, "prompt.version", "no version 99"),
        ({"name": "summarize", "label": "gold", "variables": VARIABLES}, 404, "prompt.label", "no label 'gold'"),
        ({"name": "summarize", "variables": {"text": "x"}}, 400, "prompt.variables", "missing variable(s): sentences"),
        (
            {"name": "summarize", "variables": {**VARIABLES, "tone": "dry"}}, 400, "prompt.variables",
            "unknown variable(s): tone (the template uses sentences, text)",
        ),
        ({"name": "summarize", "label": "production", "version": 1}, 400, "prompt", "not both"),
        ({"name": "summarize", "variables": ["x"]}, 400, "prompt.variables", "expected an object"),
        ("summarize", 400, "prompt", "expected an object with 'name'"),
    ],
)  # fmt: skip
def test_a_bad_prompt_reference_is_a_clear_error(
    prompted: DaemonProcess, prompt: Any, status: int, param: str, words: str
) -> None:
    response = chat(prompted, prompt)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param and words in error["message"]


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ x.__class__.__base__.__subclasses__() }}",
    ],
)
def test_the_sandbox_refuses_python_internals_with_a_400_and_no_leak(
    prompted: DaemonProcess, template: str
) -> None:
    name = f"evil{abs(hash(template)) % 1000}"
    pushed = httpx.post(prompted.url + "/admin/prompts", json={
        "name": name, "messages": [{"role": "user", "content": template}],
    })  # fmt: skip
    assert pushed.status_code == 201, pushed.text
    variables = {"x": "a"} if "x." in template else {}
    response = chat(prompted, {"name": name, "variables": variables})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "the sandbox forbids" in message
    assert "class" not in message and "object" not in message and "globals" not in message


def test_variables_are_text_never_templates(prompted: DaemonProcess, fake_upstream: FakeOpenAI) -> None:
    response = chat(prompted, {"name": "summarize", "variables": {"sentences": 1, "text": "{{ 7 * 7 }}"}})
    assert response.status_code == 200
    assert fake_upstream.requests[-1]["messages"][1]["content"].endswith("{{ 7 * 7 }}\n")


def test_an_edited_file_is_a_new_version_an_unchanged_one_is_not(prompted: DaemonProcess) -> None:
    before = admin(prompted, "/summarize")
    write_summarize(prompts_dir(prompted), "You are concise.")  # the same content, saved again
    other = prompts_dir(prompted) / "other.yaml"
    other.write_text("name: other\nmessages: [{role: user, content: hi}]\n")  # a change the watcher sees
    wait_until(
        lambda: "other" in [p["name"] for p in admin(prompted, "")["data"]], what="the folder's reload"
    )
    assert admin(prompted, "/summarize")["versions"] == before["versions"]
    write_summarize(prompts_dir(prompted), "You are very concise.")
    latest = before["labels"]["latest"] + 1
    after = wait_until(
        lambda: (found := admin(prompted, "/summarize"))["labels"]["latest"] == latest and found,
        what="the edited file's new version",
    )
    assert after["labels"]["production"] == latest  # the file's `labels` move with its new version
    diff = admin(prompted, f"/summarize/diff?from={latest - 1}&to={latest}")["diff"]
    assert "-    content: You are concise." in diff or "-  content: You are concise." in diff
    assert "+  content: You are very concise." in diff


def test_a_label_moves_back_for_a_rollback_and_stays(
    prompted: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    labels = admin(prompted, "/summarize")["labels"]
    newest = labels["latest"]
    assert newest >= 2, "an earlier test made a second version"
    moved = httpx.put(prompted.url + "/admin/prompts/summarize/labels/production", json={"version": 1})
    assert moved.status_code == 200 and moved.json()["previous"] == labels["production"]
    assert chat(prompted, {"name": "summarize", "variables": VARIABLES}).status_code == 200
    assert fake_upstream.requests[-1]["messages"][0]["content"] == "You are concise."  # version 1's
    # The folder reloads (another file changes): the rollback stays, as the summarize file did not change.
    (prompts_dir(prompted) / "other.yaml").write_text("name: other\nmessages: [{role: user, content: bye}]\n")
    wait_until(lambda: admin(prompted, "/other")["labels"]["latest"] == 2, what="the reload")
    assert admin(prompted, "/summarize")["labels"]["production"] == 1
    unknown = httpx.put(prompted.url + "/admin/prompts/summarize/labels/production", json={"version": 42})
    assert unknown.status_code == 404
    moves = admin(prompted, "/summarize")["moves"]
    assert (moves[0]["label"], moves[0]["version"], moves[0]["by"]) == ("production", 1, "local")


def test_a_broken_file_is_reported_and_the_saved_versions_keep_serving(prompted: DaemonProcess) -> None:
    (prompts_dir(prompted) / "broken.yaml").write_text(
        "name: broken\nmessages: [{role: user, content: '{{ x'}]\n"
    )
    wait_until(
        lambda: any(
            "broken.yaml" in e for e in httpx.get(prompted.url + "/admin/status").json()["prompts"]["errors"]
        ),
        what="the error to show in the status",
    )
    assert chat(prompted, {"name": "summarize", "variables": VARIABLES}).status_code == 200
    (prompts_dir(prompted) / "broken.yaml").unlink()


def test_each_prompt_version_has_its_own_cache_namespace(prompted: DaemonProcess) -> None:
    # Two versions that send the very same call (only their descriptions differ) share no answer.
    for description in ("first", "second"):
        spec = {
            "name": "twin",
            "description": description,
            "messages": [{"role": "user", "content": "Hi {{ n }}"}],
        }
        assert httpx.post(prompted.url + "/admin/prompts", json=spec).status_code == 201
    ask = {"name": "twin", "variables": {"n": 1}}
    first, again = chat(prompted, {**ask, "version": 1}), chat(prompted, {**ask, "version": 1})
    assert (first.headers["x-llmops-cache"], again.headers["x-llmops-cache"]) == ("miss", "hit-exact")
    assert chat(prompted, {**ask, "version": 2}).headers["x-llmops-cache"] == "miss"


def test_pushing_the_same_content_makes_no_version(prompted: DaemonProcess) -> None:
    spec = {"name": "pushed", "messages": [{"role": "user", "content": "Hi {{ who }}"}]}
    first = httpx.post(prompted.url + "/admin/prompts", json=spec)
    again = httpx.post(prompted.url + "/admin/prompts", json=spec)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["version"] == again.json()["version"] == 1 and not again.json()["created"]
    bad = httpx.post(
        prompted.url + "/admin/prompts", json={"name": "x", "messages": [{"role": "user", "content": "{{"}]}
    )
    assert bad.status_code == 400 and "template error" in bad.json()["error"]["message"]


def test_the_cli_lists_shows_diffs_labels_pushes_and_renders(prompted: DaemonProcess, tmp_path: Path) -> None:
    def cli(*args: str) -> str:
        done = prompted.cli("prompt", *args, "--url", prompted.url)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "summarize" in cli("list")
    assert "production -> v" in cli("show", "summarize")
    assert "You are concise." in cli("show", "summarize@1")
    assert "+  content: You are very concise." in cli("diff", "summarize", "1", "2")
    assert "summarize:staging -> v2" in cli("label", "summarize", "2", "staging")
    assert "You are very concise." in cli("show", "summarize:staging")
    rendered = cli("render", "summarize:staging", "--var", "sentences=4", "--var", "text=hello")
    assert "Summarize in 4 sentences:\nhello" in rendered
    file = tmp_path / "greet.yaml"
    file.write_text("name: greet\nmessages: [{role: user, content: 'Hello {{ name }}'}]\n")
    assert "greet: version 1" in cli("push", str(file))
    assert "unchanged, the same as version 1" in cli("push", str(file))
    missing = prompted.cli("prompt", "render", "greet", "--url", prompted.url)
    assert missing.returncode == 1 and "missing variable(s): name" in missing.stderr


def test_a_second_daemon_on_the_same_database_follows_the_first(prompted: DaemonProcess) -> None:
    other = DaemonProcess(profile=prompted.profile, db=prompted.db).start()
    try:
        mine, theirs = admin(prompted, "/summarize"), admin(other, "/summarize")
        assert theirs["labels"] == mine["labels"]
        assert [v["hash"] for v in theirs["versions"]] == [v["hash"] for v in mine["versions"]]
        # Changes made through one reach the other within seconds: a push, and a label's move.
        spec = {"name": "shared", "messages": [{"role": "user", "content": "one"}]}
        assert httpx.post(prompted.url + "/admin/prompts", json=spec).status_code == 201
        wait_until(
            lambda: "shared" in [p["name"] for p in admin(other, "")["data"]], what="the push to reach it"
        )
        httpx.put(prompted.url + "/admin/prompts/summarize/labels/canary", json={"version": 1})
        wait_until(
            lambda: admin(other, "/summarize")["labels"].get("canary") == 1, what="the label to reach it"
        )
    finally:
        other.stop()
