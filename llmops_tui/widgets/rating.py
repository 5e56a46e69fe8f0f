"""The rating dialog: pick a score (1-5, thumbs up/down) and write a comment, then Enter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from llmops_tui import format as fmt

# The keys that rate the selected or shown trace at once (1 is bound with the footer's "1-5" label).
RATE_BINDINGS = [
    *[Binding(str(n), f"rate({n})", f"Rate ★{n}", show=False) for n in range(2, 6)],
    Binding("plus", "rate('up')", "Thumbs up", show=False),
    Binding("minus", "rate('down')", "Thumbs down", show=False),
]

# key -> (score sent to the daemon, button label)
SCORES: dict[str, tuple[fmt.Rating, str]] = {
    "1": (1, "★1"), "2": (2, "★2"), "3": (3, "★3"), "4": (4, "★4"), "5": (5, "★5"),
    "plus": ("up", "▲ up"), "minus": ("down", "▼ down"),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rating:
    score: fmt.Rating
    comment: str | None


class RatingDialog(ModalScreen[Rating | None]):
    """Digits and +/- choose the score while the buttons have focus; Enter in the comment sends."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel"),
        *[
            Binding(key, f"choose('{key}')", f"Score {label}", show=False)
            for key, (_, label) in SCORES.items()
        ],
    ]

    def __init__(self, trace_id: str, current: fmt.Rating | None = None) -> None:
        super().__init__()
        self.trace_id = trace_id
        self.score = current

    def compose(self) -> ComposeResult:
        with Vertical(id="rating-box"):
            yield Label(f"Rate [b]{self.trace_id}[/b]", id="rating-title")
            with Horizontal(id="rating-scores"):
                for key, (_, label) in SCORES.items():
                    yield Button(label, id=f"score-{key}", compact=True)
            yield Input(placeholder="comment (optional) — Enter sends, Esc cancels", id="rating-comment")
            yield Label("", id="rating-hint")

    def on_mount(self) -> None:
        self._show_choice()
        if self.score is None:
            self.query_one("#score-5", Button).focus()
        else:
            self.query_one(Input).focus()

    def _show_choice(self) -> None:
        for key, (value, _) in SCORES.items():
            self.query_one(f"#score-{key}", Button).set_class(value == self.score, "-chosen")
        chosen = "none yet: press 1-5, + or -" if self.score is None else fmt.score(self.score)
        self.query_one("#rating-hint", Label).update(f"score: {chosen}")

    def action_choose(self, key: str) -> None:
        self.score = SCORES[key][0]
        self._show_choice()
        self.query_one(Input).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_choose((event.button.id or "").removeprefix("score-"))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if self.score is None:
            self.query_one("#rating-hint", Label).update("[b $error]choose a score first: 1-5, + or -[/]")
            self.query_one("#score-5", Button).focus()
            return
        self.dismiss(Rating(self.score, event.value.strip() or None))
