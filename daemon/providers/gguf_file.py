"""Whether a GGUF file is whole: its header parses and the file reaches the end of its last tensor.

It reads the header only (0.6 MB for MiniLM, milliseconds), where `gguf.GGUFReader` maps every
array and takes a second. It catches a truncated file, a file of another format and a header cut
short; it does not check the tensor data itself.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

MAGIC = b"GGUF"
_ALIGNMENT_KEY = "general.alignment"
_DEFAULT_ALIGNMENT = 32

# GGUF value types: fixed-size scalars by their byte size, then the two variable-size ones
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_UINT32 = 4
_STRING = 8
_ARRAY = 9


def is_complete_gguf(path: Path) -> bool:
    """True when `path` is a GGUF (v2 or v3) whose tensors all lie inside the file."""
    try:
        with path.open("rb") as file:
            end = _declared_end(file)
            size = os.fstat(file.fileno()).st_size
    except (OSError, ValueError, KeyError, struct.error, UnicodeDecodeError):
        return False
    return size >= end


def _declared_end(file: BinaryIO) -> int:
    if file.read(4) != MAGIC:
        raise ValueError("not a GGUF file")
    version = _unpack(file, "<I")
    if version not in (2, 3):  # version 1 had 32-bit counts; nothing writes it any more
        raise ValueError(f"unsupported GGUF version {version}")
    tensor_count = _unpack(file, "<Q")
    kv_count = _unpack(file, "<Q")
    alignment = _DEFAULT_ALIGNMENT
    for _ in range(kv_count):
        key = _read_string(file)
        value_type = _unpack(file, "<I")
        if key == _ALIGNMENT_KEY and value_type == _UINT32:
            alignment = _unpack(file, "<I")
        else:
            _skip_value(file, value_type)
    data_end = 0
    for _ in range(tensor_count):
        _read_string(file)  # the tensor's name
        n_dims = _unpack(file, "<I")
        shape = [_unpack(file, "<Q") for _ in range(n_dims)]
        ggml_type = GGMLQuantizationType(_unpack(file, "<I"))
        offset = _unpack(file, "<Q")
        data_end = max(data_end, offset + _tensor_bytes(ggml_type, shape))
    data_start = -(-file.tell() // alignment) * alignment
    return data_start + data_end


def _tensor_bytes(ggml_type: GGMLQuantizationType, shape: list[int]) -> int:
    block_size, block_bytes = GGML_QUANT_SIZES[ggml_type]
    elements = 1
    for dim in shape:
        elements *= dim
    return elements // block_size * block_bytes


def _skip_value(file: BinaryIO, value_type: int) -> None:
    if value_type == _STRING:
        file.seek(_unpack(file, "<Q"), os.SEEK_CUR)
    elif value_type == _ARRAY:
        item_type = _unpack(file, "<I")
        count = _unpack(file, "<Q")
        if item_type in _SCALAR_SIZES:
            file.seek(count * _SCALAR_SIZES[item_type], os.SEEK_CUR)
        else:
            for _ in range(count):
                _skip_value(file, item_type)
    elif value_type in _SCALAR_SIZES:
        file.seek(_SCALAR_SIZES[value_type], os.SEEK_CUR)
    else:
        raise ValueError(f"unknown GGUF value type {value_type}")


def _read_string(file: BinaryIO) -> str:
    length = _unpack(file, "<Q")
    data = file.read(length)
    if len(data) != length:
        raise ValueError("GGUF header cut short")
    return data.decode("utf-8")


def _unpack(file: BinaryIO, layout: str) -> int:
    size = struct.calcsize(layout)
    data = file.read(size)
    if len(data) != size:
        raise ValueError("GGUF header cut short")
    (value,) = struct.unpack(layout, data)
    return int(value)
