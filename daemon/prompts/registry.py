"""The prompt registry in memory: every version (its spec and compiled templates) and every label,
mirrored from the database, which is the truth. Calls resolve here without I/O; changes go to the
database first (storage/prompts.py) and land here once committed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daemon.errors import NotFound
from daemon.prompts.render import Compiled, compile_spec
from daemon.prompts.spec import PromptSpec, parse

DEFAULT_LABELS = ("production", "latest")  # a call that names neither label nor version gets the first


class PromptNotFound(NotFound):
    code = "prompt_not_found"


@dataclass(frozen=True, slots=True)
class Version:
    name: str
    version: int
    hash: str
    spec: PromptSpec
    compiled: Compiled
    source: str
    created_at: float
    created_by: str | None

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "hash": self.hash, "source": self.source,
            "created_at": self.created_at, "created_by": self.created_by,
            "variables": sorted(self.compiled.variables), "description": self.spec.description,
            "model": self.spec.model,
        }  # fmt: skip


class Registry:
    def __init__(self) -> None:
        self.versions: dict[str, dict[int, Version]] = {}
        self.labels: dict[str, dict[str, int]] = {}

    def load(self, versions: list[dict[str, Any]], labels: list[dict[str, Any]]) -> None:
        """From the database's rows (storage/prompts.py load_all)."""
        self.versions, self.labels = {}, {}
        for row in versions:
            self.add(row)
        for row in labels:
            self.labels.setdefault(row["name"], {})[row["label"]] = row["version"]

    def add(self, row: dict[str, Any]) -> Version:
        spec = parse({"name": row["name"], **row["content"]}, f"{row['name']}@{row['version']}")
        version = Version(
            row["name"], row["version"], row["hash"], spec, compile_spec(spec), row["source"],
            row["created_at"], row.get("created_by"),
        )  # fmt: skip
        self.versions.setdefault(version.name, {})[version.version] = version
        return version

    def set_label(self, name: str, label: str, version: int) -> None:
        self.labels.setdefault(name, {})[label] = version

    def resolve(
        self, name: str, label: str | None = None, version: int | None = None
    ) -> tuple[Version, str | None]:
        """The version a call asks for, and the label it went through (None: by number)."""
        versions = self.versions.get(name)
        if not versions:
            known = ", ".join(sorted(self.versions)) or "none yet"
            raise PromptNotFound(f"There is no prompt {name!r}. Prompts: {known}.", param="prompt.name")
        if version is not None:
            found = versions.get(version)
            if found is None:
                raise PromptNotFound(
                    f"Prompt {name!r} has no version {version} (it has 1-{max(versions)}).",
                    param="prompt.version",
                )
            return found, None
        labels = self.labels.get(name, {})
        if label is None:
            label = next((candidate for candidate in DEFAULT_LABELS if candidate in labels), "latest")
        number = labels.get(label)
        if number is None:
            known = ", ".join(sorted(labels)) or "none"
            raise PromptNotFound(
                f"Prompt {name!r} has no label {label!r} (labels: {known}).", param="prompt.label"
            )
        return versions[number], label

    def labels_of(self, name: str) -> dict[str, int]:
        return dict(self.labels.get(name, {}))
