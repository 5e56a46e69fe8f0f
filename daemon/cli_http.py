"""The commands that act on a running daemon call its admin API: one way to call it, and to fail."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def call_daemon(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
    """The daemon's JSON answer, or None once the failure is printed."""
    import httpx

    headers = {"authorization": f"Bearer {args.key}"} if args.key else {}
    try:
        response = httpx.request(
            method, f"{args.url.rstrip('/')}{path}", headers=headers, timeout=10, **kwargs
        )
    except httpx.HTTPError as exc:
        print(f"llmops: no daemon answering at {args.url} ({type(exc).__name__}). Start one: llmops serve",
              file=sys.stderr)  # fmt: skip
        return None
    body: dict[str, Any] = response.json()
    if response.status_code >= 400:
        print(f"llmops: {response.status_code}: {body.get('error', {}).get('message')}", file=sys.stderr)
        return None
    return body


def fetch(args: argparse.Namespace, path: str, **kwargs: Any) -> dict[str, Any] | int:
    """GET `path` for a command to show: its JSON, or the exit code once it is printed as is
    (`--json`) or its failure is."""
    data = call_daemon(args, "GET", path, **kwargs)
    if data is None:
        return 1
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2))
        return 0
    return data
