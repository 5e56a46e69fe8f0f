"""One shadow call in full: the question, then the answer served beside the shadow model's answer,
each with its model, latency, tokens and cost; `o` opens the served call's trace."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from llmops_tui import format as fmt
from llmops_tui import routing_cells as cells
from llmops_tui.client import DaemonClient, DaemonError
from llmops_tui.screens.trace_detail import TraceDetailScreen


def question_of(trace: dict[str, Any]) -> str | None:
    """The last user message of a traced call, as text."""
    messages = (trace.get("request") or {}).get("messages") or []
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return None


def side_markup(kind: str, model: str | None, status: str, latency: float | None, tokens: int | None,
                cost: float | None) -> str:  # fmt: skip
    colour = "$success" if status == "ok" else "$error"
    figures = f"{fmt.ms(latency)} · {tokens or 0:,} tokens · {fmt.usd(cost)}"
    return (
        f"[b]{kind}[/] [b $accent]{escape(model or '(trace gone)')}[/]  [{colour}]{escape(status)}[/]\n"
        f"[$text-muted]{figures}[/]"
    )


class ShadowDialog(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("o", "open_trace", "Open the served trace"),
    ]

    def __init__(self, shadow: dict[str, Any], client: DaemonClient) -> None:
        super().__init__()
        self.shadow = shadow
        self.client = client

    def compose(self) -> ComposeResult:
        shadow = self.shadow
        same = cells.same_answer(shadow)
        verdict = "[$text-muted]nothing to compare[/]"
        if same is not None:
            verdict = "[$success]the same answer[/]" if same else "[b $warning]different answers[/]"
        with Vertical(id="shadow-box"):
            yield Label(
                f"[b]Shadow call on route {escape(shadow['route'])}[/]  {verdict}  "
                f"[$text-muted]{fmt.stamp(shadow['ts'])} · {escape(shadow['trace_id'])}[/]",
                id="shadow-title",
            )
            yield Static("[$text-muted]loading the question…[/]", id="shadow-question")
            with Horizontal(id="shadow-sides"):
                with VerticalScroll(classes="shadow-side", id="shadow-served"):
                    yield Static(side_markup(
                        "served", shadow["served_model"], "ok" if shadow["served_model"] else "-",
                        shadow["served_latency_ms"], shadow["served_tokens"], shadow["served_cost_usd"],
                    ), classes="shadow-head")  # fmt: skip
                    yield Static(shadow["served_response"] or "(no answer recorded)", markup=False)
                with VerticalScroll(classes="shadow-side", id="shadow-candidate"):
                    yield Static(side_markup(
                        "shadow", shadow["shadow_model"], shadow["shadow_status"],
                        shadow["shadow_latency_ms"], shadow["shadow_tokens"], shadow["shadow_cost_usd"],
                    ), classes="shadow-head")  # fmt: skip
                    if shadow["shadow_error"]:
                        yield Static(f"[$error]{escape(shadow['shadow_error'])}[/]")
                    yield Static(shadow["shadow_response"] or "", markup=False)
            yield Label("[b]Esc[/b] closes · [b]o[/b] opens the served call's trace", id="shadow-hint")

    def on_mount(self) -> None:
        self.load_question()

    @work(exclusive=True, group="shadow-question")
    async def load_question(self) -> None:
        shown = self.query_one("#shadow-question", Static)
        try:
            trace = await self.client.trace(self.shadow["trace_id"])
        except DaemonError as exc:
            shown.update(f"[$text-muted]The question is not available: {escape(exc.message)}[/]")
            return
        question = question_of(trace)
        shown.update(
            f"[b]asked[/] {escape(cells.one_line(question))}" if question else "[$text-muted]no question[/]"
        )

    def action_open_trace(self) -> None:
        trace_id = self.shadow["trace_id"]
        self.dismiss()
        self.app.push_screen(TraceDetailScreen({"id": trace_id}))
