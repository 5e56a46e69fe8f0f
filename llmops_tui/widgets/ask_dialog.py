"""One value asked for before an action (a label's name, a ramp's share, the arm to promote), with a
default filled in and checked as it is typed: Enter or the button sends it, Esc cancels."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

# A value's check: None when it will do, else what is wrong with it.
Check = Callable[[str], str | None]


class AskDialog(ModalScreen[str | None]):
    """Dismissed with the value typed (stripped) or None (Esc, Cancel)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, question: str, explanation: str, default: str, action: str, check: Check) -> None:
        super().__init__()
        self.question, self.explanation, self.default = question, explanation, default
        self.action, self.check = action, check

    def compose(self) -> ComposeResult:
        with Vertical(id="ask-box"):
            yield Label(f"[b]{escape(self.question)}[/b]", id="ask-question")
            yield Label(escape(self.explanation), id="ask-explanation")
            yield Input(self.default, id="ask-input", select_on_focus=True)
            yield Label("", id="ask-problem")
            with Horizontal(id="ask-buttons"):
                yield Button(self.action, variant="primary", id="ask-yes", compact=True)
                yield Button("Cancel", id="ask-no", compact=True)
            yield Label("[b]Enter[/b] continue · [b]Esc[/b] cancel", id="ask-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._checked(self.default)

    def _checked(self, value: str) -> bool:
        problem = self.check(value.strip())
        shown = self.query_one("#ask-problem", Label)
        shown.update(f"[$error]{escape(problem)}[/]" if problem else "")
        shown.display = bool(problem)
        self.query_one("#ask-yes", Button).disabled = problem is not None
        return problem is None

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self._checked(event.value)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if self._checked(event.value):
            self.dismiss(event.value.strip())

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ask-no":
            self.dismiss(None)
        elif self._checked(self.query_one(Input).value):
            self.dismiss(self.query_one(Input).value.strip())
