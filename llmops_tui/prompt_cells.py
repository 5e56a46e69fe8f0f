"""How the prompt registry reads in the console: each prompt with its latest version and labels,
each version with the labels on it, its calls, errors, ratings and cost, and a diff between two
versions in colour. Pure functions over /admin/prompts' JSON."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text

from llmops_tui import format as fmt
from llmops_tui.routing_cells import Palette

PROMPT_COLUMNS = ("prompt", "latest", "versions", "labels", "description")
VERSION_COLUMNS = ("version", "created", "by", "labels", "calls", "errors", "stars (n)", "thumbs up (n)",
                   "cost", "latency")  # fmt: skip
IMPLICIT = "latest"  # a label every prompt has, on its newest version; never moved by hand
DEFAULT_LABEL = "production"


def named_labels(labels: dict[str, int]) -> dict[str, int]:
    """The labels someone set (`latest` aside), in name order."""
    return {name: labels[name] for name in sorted(labels) if name != IMPLICIT}


def labels_on(labels: dict[str, int], version: int) -> list[str]:
    """The labels pointing at `version`, `latest` last."""
    on = [name for name, v in named_labels(labels).items() if v == version]
    return [*on, IMPLICIT] if labels.get(IMPLICIT) == version else on


def labels_text(labels: dict[str, int], palette: Palette) -> Text:
    """`production→v1 staging→v2`: where each named label points."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for n, (name, version) in enumerate(named_labels(labels).items()):
        if n:
            text.append(" ")
        text.append(name, "bold")
        text.append(f"→v{version}", palette.muted)
    if not text.plain:
        text.append("no labels", palette.muted)
    return text


def prompt_cells(prompt: dict[str, Any], palette: Palette) -> list[Text]:
    return [
        Text(prompt["name"], style="bold"),
        Text(f"v{prompt['version']}", justify="right"),
        Text(f"{prompt['versions']:,}", justify="right"),
        labels_text(prompt["labels"], palette),
        Text(prompt["description"] or "-", style="" if prompt["description"] else palette.muted,
             no_wrap=True, overflow="ellipsis"),
    ]  # fmt: skip


def when(ts: float) -> str:
    """`15 Jan 14:02`: a version's creation (the year is in its YAML's history, not needed here)."""
    return time.strftime("%d %b %H:%M", time.localtime(ts))


def stars(usage: dict[str, Any] | None) -> str:
    """`4.67 (24)`: the mean star rating and how many ratings; `-` without any."""
    if not usage or not usage["stars"] or usage["mean_stars"] is None:
        return "-"
    return f"★{usage['mean_stars']:.2f} ({usage['stars']:,})"


def thumbs(usage: dict[str, Any] | None) -> str:
    if not usage or not usage["thumbs"] or usage["thumbs_up_share"] is None:
        return "-"
    return f"{usage['thumbs_up_share']:.0%} ({usage['thumbs']:,})"


def version_cells(version: dict[str, Any], labels: dict[str, int], palette: Palette) -> list[Text]:
    """One version: when and by whom, the labels on it, and what its calls did."""
    usage = version.get("usage")
    # `latest` is on the top row, always: said once in the title rather than on every prompt's newest row
    on = [name for name in labels_on(labels, version["version"]) if name != IMPLICIT]
    label_text = Text(" ".join(on), style="bold", no_wrap=True, overflow="ellipsis")
    calls = usage["calls"] if usage else 0
    errors = usage["errors"] if usage else 0
    who = version["created_by"] or "-"
    return [
        Text(f"v{version['version']}", style="bold"),
        Text(when(version["created_at"]), style=palette.muted),
        Text(f"{who} ({version['source']})", no_wrap=True, overflow="ellipsis"),
        label_text,
        Text(f"{calls:,}", justify="right", style="" if calls else palette.muted),
        Text(f"{errors:,}", justify="right", style=palette.error if errors else ""),
        Text(stars(usage), justify="right"),
        Text(thumbs(usage), justify="right"),
        Text(fmt.usd(usage["cost_usd"] if usage else 0.0), justify="right"),
        Text(fmt.ms(usage["mean_latency_ms"] if usage else None), justify="right"),
    ]


def diff_text(diff: str, palette: Palette) -> Text:
    """A unified diff with added lines in green, removed in red, hunk headers dim."""
    text = Text()
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = palette.ok
        elif line.startswith("-"):
            style = palette.error
        elif line.startswith("@@"):
            style = palette.muted
        else:
            style = ""
        text.append(line + "\n", style)
    text.rstrip()
    return text


def previous_version(versions: list[dict[str, Any]], version: int) -> int | None:
    """The version before `version` that exists (versions are numbered from 1, newest first here)."""
    older = [v["version"] for v in versions if v["version"] < version]
    return max(older) if older else None


def label_move_consequence(prompt: str, label: str, version: int, labels: dict[str, int]) -> str:
    """What moving `label` to `version` does, said before it is done."""
    now = labels.get(label)
    callers = f"Calls that ask for {prompt}:{label}"
    if label == DEFAULT_LABEL:  # the label a call naming the prompt alone gets
        callers += f" (and those naming {prompt} alone)"
    if now is None:
        return f"{label} is a new label. {callers} get version {version} from now on."
    if now == version:
        return f"{label} points at version {version} already: nothing changes."
    kind = "a rollback" if version < now else "a release"
    return f"{callers} get version {version} instead of {now} from now on ({kind}). The move is recorded."
