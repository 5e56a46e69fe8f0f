"""The prompts a daemon serves: the registry, kept in step with the database, and the prompt folder
(`prompts:` in the profile, default `prompts/` beside it) synced into it at start and on every
change (hot reload). A file that does not parse is reported and skipped: the versions already
saved keep serving."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import aiosqlite

from daemon.prompts.registry import Registry
from daemon.prompts.render import compile_spec
from daemon.prompts.spec import PromptSpec, SpecError, parse_yaml
from daemon.settings import beside
from daemon.storage import prompts as store
from daemon.storage.writer import Writer

log = logging.getLogger(__name__)
SUFFIXES = (".yaml", ".yml")


def read_folder(folder: Path) -> tuple[list[tuple[PromptSpec, str]], list[str]]:
    """Each file's prompt and its source, and the errors of those that cannot be used."""
    found: list[tuple[PromptSpec, str]] = []
    errors: list[str] = []
    seen: dict[str, Path] = {}
    paths = sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES) if folder.is_dir() else []
    for path in paths:
        try:
            spec = parse_yaml(path.read_text(encoding="utf-8"), str(path))
        except (OSError, SpecError) as exc:
            errors.append(str(exc))
            continue
        try:
            compile_spec(spec)
        except SpecError as exc:
            errors.append(f"{path}: {exc}")
            continue
        if spec.name in seen:
            errors.append(f"{path}: the prompt {spec.name!r} is already defined in {seen[spec.name]}")
            continue
        seen[spec.name] = path
        found.append((spec, f"file:{path.name}"))
    return found, errors


class PromptBook:
    def __init__(self, reader: aiosqlite.Connection, writer: Writer) -> None:
        self.reader = reader
        self.writer = writer
        self.registry = Registry()
        self.errors: list[str] = []  # the prompt folder's files that could not be used
        self.mark: tuple[Any, ...] = ()  # the database's state when last read (store.mark)
        # A change here and a reload are never interleaved: a reload that read the database just
        # before a change would otherwise put the old state back in memory.
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        async with self._lock:
            await self._load()

    async def _load(self) -> None:
        self.mark = await store.mark(self.reader)
        self.registry.load(*await store.load_all(self.reader))

    async def catch_up(self) -> bool:
        """Reload if the database changed since (another daemon pushed a version or moved a label,
        or a promotion here did)."""
        async with self._lock:
            if await store.mark(self.reader) == self.mark:
                return False
            await self._load()
            return True

    async def save(
        self, spec: PromptSpec, source: str, by: str | None, labels: tuple[str, ...] = ()
    ) -> store.Saved:
        """A new version (unless its content exists already), then the registry."""
        async with self._lock:
            saved: store.Saved = await self.writer.run(store.save_job(spec, source, by, labels))
            self._add(spec, saved, source, by)
        return saved

    def _add(self, spec: PromptSpec, saved: store.Saved, source: str, by: str | None) -> None:
        if saved.created:
            self.registry.add({
                "name": spec.name, "version": saved.version, "hash": spec.content_hash(),
                "content": spec.content(), "source": source, "created_at": time.time(), "created_by": by,
            })  # fmt: skip
            for label in saved.moved:
                self.registry.set_label(spec.name, label, saved.version)

    async def label(self, name: str, label: str, version: int, by: str | None) -> int | None:
        async with self._lock:
            previous: int | None = await self.writer.run(store.label_job(name, label, version, by))
            self.registry.set_label(name, label, version)
        return previous

    async def sync_folder(self, folder: Path) -> list[store.Saved]:
        """Save each file's prompt: an edited file becomes a new version (taking `latest` and the
        file's `labels`); an unchanged one, nothing."""
        found, self.errors = read_folder(folder)
        for error in self.errors:
            log.error("prompt file rejected, its saved versions keep serving: %s", error)
        saved = []
        for spec, source in found:
            result = await self.save(spec, source, "file", spec.labels)
            if result.created:
                log.info("prompt %s: version %d from %s", spec.name, result.version, source)
            saved.append(result)
        return saved


def folder_of(profile_path: Path | None, setting: str | None) -> Path | None:
    """The prompt folder: the profile's `prompts:` (relative to the profile), else `prompts/` beside it."""
    return beside(profile_path, setting or "prompts") if profile_path is not None else None
