"""A yes-or-no question before an action that cannot be undone (resetting a budget)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmDialog(ModalScreen[bool]):
    """Dismissed with True (y, or the action's button) or False (n, Esc, Cancel)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "dismiss(True)", "Confirm"),
        Binding("n,escape", "dismiss(False)", "Cancel"),
    ]

    def __init__(self, question: str, consequence: str, action: str) -> None:
        """`question` in bold, `consequence`: what the action does; `action`: its button's label."""
        super().__init__()
        self.question, self.consequence, self.action = question, consequence, action

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(f"[b]{escape(self.question)}[/b]", id="confirm-question")
            yield Label(escape(self.consequence), id="confirm-consequence")
            with Horizontal(id="confirm-buttons"):
                yield Button(self.action, variant="error", id="confirm-yes", compact=True)
                yield Button("Cancel", id="confirm-no", compact=True)
            yield Label(
                f"[b]y[/b] {escape(self.action.lower())} · [b]n[/b] or [b]Esc[/b] cancel", id="confirm-hint"
            )

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()  # Enter alone does no harm

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")
