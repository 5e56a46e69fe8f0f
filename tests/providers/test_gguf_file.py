"""is_complete_gguf: a whole GGUF passes, one cut anywhere does not."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from daemon.providers.gguf_file import is_complete_gguf


def small_gguf(path: Path, alignment: int | None = None) -> bytes:
    writer = gguf.GGUFWriter(path, "bert")
    if alignment is not None:
        writer.add_custom_alignment(alignment)
    writer.add_token_list(["[PAD]", "\u2581hello", "world"])
    writer.add_token_types([3, 1, 1])
    writer.add_layer_norm_eps(1e-12)
    writer.add_tensor("token_embd.weight", np.ones((3, 8), dtype=np.float16))
    writer.add_tensor("token_embd_norm.bias", np.ones(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


@pytest.mark.parametrize("alignment", [None, 64])
def test_a_whole_file_is_complete(tmp_path: Path, alignment: int | None) -> None:
    path = tmp_path / "small.gguf"
    small_gguf(path, alignment)
    assert is_complete_gguf(path)


def test_a_file_cut_anywhere_is_not(tmp_path: Path) -> None:
    whole = small_gguf(tmp_path / "small.gguf")
    last_tensor_end = len(whole.rstrip(b"\0"))  # zero padding follows the last tensor (1.0f ends in 0x3f)
    cut = tmp_path / "cut.gguf"
    for length in range(0, last_tensor_end, 7):
        cut.write_bytes(whole[:length])
        assert not is_complete_gguf(cut), length


def test_other_files_are_not(tmp_path: Path) -> None:
    assert not is_complete_gguf(tmp_path / "absent.gguf")
    not_gguf = tmp_path / "junk.gguf"
    not_gguf.write_bytes(b"PK\x03\x04" + bytes(100))
    assert not is_complete_gguf(not_gguf)
    assert not is_complete_gguf(tmp_path)  # a folder
