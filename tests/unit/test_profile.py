from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config.loader import ProfileError, load_profile, parse_profile
from daemon.config.schema import LlamaCppModel, OpenAIModel

REPO = Path(__file__).resolve().parents[2]

ISSUE_SHAPE = """
models:
  local-gemma: {provider: llama_cpp, path: "package:gemma3-270m", chat_format: gemma, shadow_price: gpt-4o-mini}
  gpt-4o-mini: {provider: openai, base_url: "https://api.openai.com/v1", api_key: "${OPENAI_API_KEY}", price: {input: 0.15, output: 0.60}}
"""


def test_the_issue_shape_validates() -> None:
    profile = parse_profile(ISSUE_SHAPE)
    assert isinstance(profile.models["local-gemma"], LlamaCppModel)
    remote = profile.models["gpt-4o-mini"]
    assert isinstance(remote, OpenAIModel) and remote.price is not None and remote.price.output == 0.60


@pytest.mark.parametrize("name", ["default.yaml", "openai.yaml", "team.yaml"])
def test_shipped_profiles_validate(name: str) -> None:
    assert load_profile(REPO / "profiles" / name).models


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "models: {m: {provider: openai, base_url: 'http://x', colour: red}}",
            "models.m.colour: unknown key",
        ),
        ("models: {m: {provider: openai, base_url: 'http://x', api_key: sk-123}}", "models.m.api_key"),
        ("models: {m: {provider: openai, base_url: 'ftp://x'}}", "models.m.base_url: must start with http"),
        ("models: {m: {provider: nope}}", "models.m"),
        ("models: {m: {provider: llama_cpp, path: x.gguf, n_ctx: 1}}", "models.m.n_ctx"),
        (
            "models: {m: {provider: openai, base_url: 'http://x', price: {input: -1, output: 0}}}",
            "models.m.price.input",
        ),
        ("models: {m: {provider: llama_cpp, path: x.gguf, shadow_price: gpt-99}}", "models.m.shadow_price"),
        ("default_model: z\nmodels: {m: {provider: llama_cpp, path: x.gguf}}", "default_model"),
        ("models: {}", "at least one model"),
        ("- a list", "top level must be a mapping"),
        ("models: [unclosed", "not valid YAML"),
    ],
)
def test_invalid_profiles_name_key_and_reason(text: str, expected: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, source="team.yaml")
    assert str(caught.value).startswith("team.yaml: ")
    assert expected in str(caught.value)


def test_literal_secret_is_not_echoed() -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile("models: {m: {provider: openai, base_url: 'http://x', api_key: sk-secret-123}}")
    assert "sk-secret-123" not in str(caught.value)


def test_missing_file() -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(Path("/nonexistent/profile.yaml"))
