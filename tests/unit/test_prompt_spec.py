"""A prompt's spec, hash, diff and rendering, pure."""

from __future__ import annotations

import pytest

from daemon.prompts.reference import parse_reference
from daemon.prompts.registry import PromptNotFound, Registry
from daemon.prompts.render import RenderError, compile_spec
from daemon.prompts.spec import SpecError, diff, parse, parse_yaml

BASE = {
    "name": "s",
    "messages": [{"role": "user", "content": "Hi {{ who }}"}],
    "params": {"temperature": 0.1},
}


def test_the_hash_is_the_content_not_its_labels_nor_key_order() -> None:
    one = parse(BASE)
    assert parse({**BASE, "labels": ["production"]}).content_hash() == one.content_hash()
    assert parse(dict(reversed(list(BASE.items())))).content_hash() == one.content_hash()
    assert parse({**BASE, "params": {"temperature": 0.2}}).content_hash() != one.content_hash()
    assert parse({**BASE, "description": "x"}).content_hash() != one.content_hash()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"messages": BASE["messages"]}, "name:"),
        ({"name": "s", "messages": []}, "messages: a non-empty list"),
        ({"name": "s", "messages": [{"role": "robot", "content": "x"}]}, "messages[0]: role one of"),
        ({**BASE, "params": {"tools": []}}, "params: only"),
        ({**BASE, "colour": "red"}, "unknown keys colour"),
        ({**BASE, "name": "has space"}, "name: letters"),
    ],
)
def test_a_bad_spec_names_its_field(data: dict, words: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SpecError) as raised:
        parse(data, "f.yaml")
    assert words in str(raised.value) and str(raised.value).startswith("f.yaml")


def test_rendering_checks_variables_both_ways() -> None:
    compiled = compile_spec(parse(BASE))
    assert compiled.render({"who": "Ann"}) == [{"role": "user", "content": "Hi Ann"}]
    with pytest.raises(RenderError, match="missing variable"):
        compiled.render({})
    with pytest.raises(RenderError, match="unknown variable"):
        compiled.render({"who": "Ann", "extra": 1})
    loops = compile_spec(
        parse(
            {
                "name": "l",
                "messages": [{"role": "user", "content": "{% for i in items %}{{ i }}{% endfor %}"}],
            }
        )
    )
    assert loops.variables == {"items"} and loops.render({"items": [1, 2]})[0]["content"] == "12"


def test_the_sandbox_and_bad_templates() -> None:
    for template in (
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__ }}",
    ):
        with pytest.raises(RenderError, match="sandbox forbids"):
            compile_spec(parse({"name": "e", "messages": [{"role": "user", "content": template}]})).render({})
    with pytest.raises(SpecError, match="template error on line 1"):
        compile_spec(parse({"name": "e", "messages": [{"role": "user", "content": "{{ x"}]}))
    immutable = compile_spec(
        parse({"name": "m", "messages": [{"role": "user", "content": "{{ xs.append(1) }}"}]})
    )
    with pytest.raises(RenderError):
        immutable.render({"xs": []})


def test_a_diff_reads_as_yaml_with_blocks() -> None:
    old = parse_yaml('name: s\nmessages:\n  - {role: user, content: "line one\\nline two"}\n')
    new = parse_yaml('name: s\nmessages:\n  - {role: user, content: "line one\\nline 2"}\n')
    text = diff(old, new, "s@1", "s@2")
    assert "-    line two" in text and "+    line 2" in text and "content: |" in text


def test_references_and_the_default_label() -> None:
    assert parse_reference("s:staging") == {"name": "s", "label": "staging"}
    assert parse_reference("s@12") == {"name": "s", "version": 12}
    registry = Registry()
    row = {"name": "s", "hash": "h", "source": "api", "created_at": 0.0, "content": parse(BASE).content()}
    registry.load(
        [{**row, "version": 1}, {**row, "version": 2}], [{"name": "s", "label": "latest", "version": 2}]
    )
    assert registry.resolve("s")[0].version == 2  # no production label: latest
    registry.set_label("s", "production", 1)
    assert registry.resolve("s")[0].version == 1 and registry.resolve("s")[1] == "production"
    with pytest.raises(PromptNotFound, match="has no version 3"):
        registry.resolve("s", version=3)


def test_a_variable_with_a_default_may_be_left_out() -> None:
    text = "{{ text }} in {{ n | default(2) }}{% if tone is defined %} ({{ tone }}){% endif %}"
    compiled = compile_spec(parse({"name": "d", "messages": [{"role": "user", "content": text}]}))
    assert compiled.optional == {"n", "tone"}
    assert compiled.render({"text": "t"})[0]["content"] == "t in 2"
    assert compiled.render({"text": "t", "n": 5, "tone": "dry"})[0]["content"] == "t in 5 (dry)"
    with pytest.raises(RenderError, match="missing variable"):
        compiled.render({"n": 1})


def test_the_shipped_example_prompt_is_valid() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "profiles" / "prompts" / "summarize.yaml"
    compiled = compile_spec(parse_yaml(path.read_text(), str(path)))
    assert "Summarize this text in 2 sentences" in compiled.render({"text": "x"})[1]["content"]
