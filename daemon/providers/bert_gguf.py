"""Convert a sentence-transformers BERT model (safetensors + tokenizer.json) into a llama.cpp GGUF.

It writes what llama.cpp's own converter (convert_hf_to_gguf.py, `BertModel`) writes: the same
`general.*`, `bert.*` and `tokenizer.ggml.*` keys, the WordPiece vocabulary in llama.cpp's form and
the same tensor names and types. It needs neither torch nor transformers: the weights come out of the
safetensors file by hand (an 8-byte header length, a JSON header, raw little-endian data) as numpy
arrays, and the `gguf` library writes the file.
"""

from __future__ import annotations

import json
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import numpy.typing as npt

WEIGHTS_FILE = "model.safetensors"

# safetensors dtype names -> numpy; the format is little-endian whatever the machine
_SAFETENSORS_DTYPES: dict[str, str] = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}

# Tensors llama.cpp has no use for, dropped as the official converter drops them: `position_ids` is
# an index buffer, the pooler is BERT's [CLS] head for next-sentence prediction, unused for embeddings.
_DROPPED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")

# Matrices the official converter never stores below F32, whatever the output type (its list of
# always-F32 tensors); the shared Q8_0 file keeps them F32 too.
_KEPT_F32 = ("position_embd.weight", "token_types.weight")

# llama.cpp's WordPiece tokenizer marks the start of a word with U+2581 ("phantom space") and looks
# continuation pieces up bare, the reverse of BERT's "##" prefix on continuations.
_WORD_START = "\u2581"
_CONTINUATION = "##"

_SPECIAL_TOKENS = ("bos", "eos", "unk", "sep", "pad", "mask")
# llama.cpp reads this key (its default is to lowercase); gguf 0.19 has no constant for it yet
_NORMALIZER_LOWERCASE = "tokenizer.ggml.normalizer.lowercase"

Array = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class DerivedMetadata:
    """What the official converter derives with transformers or from the model's folder name.

    Neither is at hand here, so the caller states them. `tokenizer_pre` is the name llama.cpp gives
    the pre-tokenizer whose hash matches the HF tokenizer's output on a test text; llama.cpp's
    WordPiece tokenizer does not read it, it is written so the file matches the official one.
    """

    name: str
    basename: str
    version: str
    organization: str
    size_label: str
    tokenizer_pre: str


def read_safetensors(blob: bytes) -> dict[str, Array]:
    """The tensors of a safetensors file, by name in header order (read-only views on `blob`)."""
    (header_length,) = struct.unpack_from("<Q", blob, 0)
    header: dict[str, Any] = json.loads(blob[8 : 8 + header_length])
    data_start = 8 + header_length
    tensors: dict[str, Array] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"{WEIGHTS_FILE}: tensor {name!r} has unsupported dtype {entry['dtype']!r}")
        begin, end = entry["data_offsets"]
        count = (end - begin) // np.dtype(dtype).itemsize
        if data_start + end > len(blob):
            raise ValueError(f"{WEIGHTS_FILE} is truncated: tensor {name!r} ends past the file")
        array = np.frombuffer(blob, dtype=dtype, count=count, offset=data_start + begin)
        tensors[name] = array.reshape(entry["shape"])
    return tensors


def convert_zip(archive_path: Path, out_path: Path, metadata: DerivedMetadata) -> None:
    """Write the GGUF of the sentence-transformers model zipped at `archive_path` to `out_path`.

    The small JSON files go to a temporary folder because `gguf.SpecialVocab` (the official
    converter's reading of special tokens) reads a folder; the weights are read in memory.
    """
    with zipfile.ZipFile(archive_path) as archive, tempfile.TemporaryDirectory(prefix="llmops-bert-") as tmp:
        folder = Path(tmp)
        for member in archive.namelist():
            if member.endswith(".json"):
                archive.extract(member, folder)
        weights = read_safetensors(archive.read(WEIGHTS_FILE))
        write_bert_gguf(folder, weights, out_path, metadata)


def write_bert_gguf(
    folder: Path, weights: dict[str, Array], out_path: Path, metadata: DerivedMetadata
) -> None:
    """Write the GGUF for the model whose JSON files are in `folder` and whose tensors are `weights`."""
    config = _read_json(folder / "config.json")
    writer = gguf.GGUFWriter(out_path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    try:
        _add_general(writer, metadata)
        _add_hyperparameters(writer, config, _pooling_type(folder))
        _add_vocabulary(writer, folder, config, metadata.tokenizer_pre)
        _add_tensors(writer, weights, config["num_hidden_layers"])
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()


def _add_general(writer: gguf.GGUFWriter, metadata: DerivedMetadata) -> None:
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(metadata.name)
    writer.add_version(metadata.version)
    writer.add_organization(metadata.organization)
    writer.add_basename(metadata.basename)
    writer.add_size_label(metadata.size_label)


def _add_hyperparameters(
    writer: gguf.GGUFWriter, config: dict[str, Any], pooling: gguf.PoolingType | None
) -> None:
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_causal_attention(False)
    if pooling is not None:
        writer.add_pooling_type(pooling)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _pooling_type(folder: Path) -> gguf.PoolingType | None:
    """The pooling sentence-transformers applies (modules.json -> the Pooling module's config)."""
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return None
    modules: list[dict[str, Any]] = json.loads(modules_file.read_text(encoding="utf-8"))
    pooling_dir = next(
        (m["path"] for m in modules if m.get("type") == "sentence_transformers.models.Pooling"), None
    )
    if pooling_dir is None:
        return None
    pooling = _read_json(folder / pooling_dir / "config.json")
    if pooling.get("pooling_mode_mean_tokens"):
        return gguf.PoolingType.MEAN
    if pooling.get("pooling_mode_cls_token"):
        return gguf.PoolingType.CLS
    if pooling.get("pooling_mode_lasttoken"):
        return gguf.PoolingType.LAST
    raise ValueError(f"{pooling_dir}/config.json: only mean, CLS and last-token pooling have a GGUF form")


def _add_vocabulary(writer: gguf.GGUFWriter, folder: Path, config: dict[str, Any], pre: str) -> None:
    tokenizer = _read_json(folder / "tokenizer.json")
    tokens, types = wordpiece_vocabulary(tokenizer, config["vocab_size"])
    writer.add_token_type_count(config.get("type_vocab_size", 1))
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    # [CLS] as BOS and [SEP] as EOS, and whether to add them, from tokenizer.json's post-processor;
    # GGUF has no key of its own for [CLS] (BOS is it), so it is not asked for
    special = gguf.SpecialVocab(folder, special_token_types=_SPECIAL_TOKENS, n_vocab=len(tokens))
    special.add_to_gguf(writer, quiet=True)
    # llama.cpp lowercases (and strips accents) unless told otherwise: say what the model was trained on
    normalizer = tokenizer.get("normalizer") or {}
    if normalizer.get("type") == "BertNormalizer":
        writer.add_bool(_NORMALIZER_LOWERCASE, bool(normalizer.get("lowercase")))


def wordpiece_vocabulary(tokenizer: dict[str, Any], vocab_size: int) -> tuple[list[str], list[int]]:
    """Token texts in llama.cpp's form and token types, by id, from a WordPiece tokenizer.json.

    Special added tokens ([CLS], [SEP] ...) are CONTROL and keep their text; every other token gets
    the phantom-space form. Ids the tokenizer lacks up to the embedding size are padding, as in the
    official converter.
    """
    model = tokenizer["model"]
    if model.get("type") != "WordPiece":
        raise ValueError(f"tokenizer.json: a WordPiece model is needed, not {model.get('type')!r}")
    texts: dict[int, str] = {token_id: text for text, token_id in model["vocab"].items()}
    added: dict[int, dict[str, Any]] = {entry["id"]: entry for entry in tokenizer.get("added_tokens", [])}
    tokens: list[str] = []
    types: list[int] = []
    for token_id in range(max(vocab_size, len(texts))):
        text = texts.get(token_id)
        if text is None:
            tokens.append(_phantom(f"[PAD{token_id}]"))
            types.append(gguf.TokenType.UNUSED)
        elif token_id in added and added[token_id].get("special"):
            tokens.append(text)
            types.append(gguf.TokenType.CONTROL)
        else:
            tokens.append(_phantom(text))
            types.append(gguf.TokenType.USER_DEFINED if token_id in added else gguf.TokenType.NORMAL)
    return tokens, types


def _phantom(text: str) -> str:
    return text.removeprefix(_CONTINUATION) if text.startswith(_CONTINUATION) else _WORD_START + text


def _add_tensors(writer: gguf.GGUFWriter, weights: dict[str, Array], block_count: int) -> None:
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, block_count)
    # in name order, the order of the official converter's file
    for source_name in sorted(weights):
        if source_name in _DROPPED:
            continue
        name = names.get_name(source_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ValueError(f"{WEIGHTS_FILE}: no llama.cpp BERT tensor for {source_name!r}")
        writer.add_tensor(name, stored_form(name, weights[source_name]))


def stored_form(name: str, array: Array) -> Array:
    """The tensor as written: F16 for the 2-D weight matrices, F32 for the rest.

    F16 halves the file (46 MB instead of 91) and loses nothing that shows: MiniLM's embeddings
    keep a cosine of 0.999998 or more with the original model's on the reference texts, where the
    official Q8_0 file (25 MB, and quantizing would be slow numpy work here) falls to 0.998. Which
    tensors stay F32 (norms, biases, position and token-type embeddings) is the official
    converter's rule for an F16 output.
    """
    matrix = array.ndim >= 2 and name.endswith(".weight")
    if matrix and not name.endswith("_norm.weight") and name not in _KEPT_F32:
        return array.astype(np.float16)
    return array.astype(np.float32)


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
