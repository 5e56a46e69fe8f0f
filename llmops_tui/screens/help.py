"""`?`: every key of every screen, read from the bindings themselves so the list cannot go stale."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Static

EXTRA: dict[str, list[tuple[str, str]]] = {
    "Anywhere": [
        ("ctrl+p", "Command palette: every action by name"),
        ("mouse", "click rows, tabs, footer keys; double-click opens"),
    ],
    "Routing": [
        ("tab", "Next table: routes (the selected one's split below), breakers, shadow calls"),
        ("⏎", "On a shadow call: both answers in full"),
    ],
    "Prompts": [
        ("tab", "Next table: prompts (the selected one's versions below), versions"),
        ("⏎", "On a prompt: to its versions"),
    ],
    "Experiments": [
        ("tab", "Next table: experiments, comparisons, transitions (the view scrolls)"),
        ("", "Only the actions the experiment's state allows show in the footer"),
    ],
    "Rating": [
        ("1-5 + -", "Stars, thumbs up, thumbs down (while the score buttons have focus)"),
        ("enter", "Send (in the comment box)"),
    ],
}  # fmt: skip


def _bindings(owner: type) -> list[Binding]:
    found: list[Binding] = []
    for binding in getattr(owner, "BINDINGS", []):
        if isinstance(binding, Binding):
            found.append(binding)
        elif isinstance(binding, tuple):
            found.append(Binding(*binding))
    return found


def help_markup(app: App[object], sections: list[tuple[str, type]]) -> str:
    lines: list[str] = []
    for title, owner in sections:
        lines.append(f"[b $foreground]{title}[/]")
        seen: set[str] = set()
        for binding in _bindings(owner):
            if binding.description in seen or binding.description.startswith(("Rate ★", "Score ★")):
                continue  # "1-5 Rate" says it once
            seen.add(binding.description)
            keys = binding.key_display or ", ".join(
                app.get_key_display(Binding(k, "")) for k in binding.key.split(",")
            )
            lines.append(f"  [b $accent]{escape(keys):<12}[/] {escape(binding.description)}")
        for keys, what in EXTRA.get(title, []):
            lines.append(f"  [b $accent]{escape(keys):<12}[/] {escape(what)}")
        lines.append("")
    return "\n".join(lines).rstrip()


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close help"),
    ]

    def __init__(self, sections: list[tuple[str, type]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static("[b]llmops console — keys[/]   [$text-muted]Esc closes[/]", id="help-title")
            yield Static(help_markup(self.app, self.sections), id="help-keys")
