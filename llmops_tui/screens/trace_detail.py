"""One trace: its facts (tokens, cost, timings), its path (stage decisions and the models tried),
the conversation and response (markdown), and feedback."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.widgets import Footer, Markdown, Static

from llmops_tui import format as fmt
from llmops_tui.client import DaemonError
from llmops_tui.messages import DaemonReconnected, FeedbackReceived
from llmops_tui.screens.live import LiveScreen
from llmops_tui.widgets.rating import RATE_BINDINGS, RatingDialog
from llmops_tui.widgets.status_bar import ConnectionBanner, StatusBar


def conversation_markdown(request: dict[str, Any] | None) -> str:
    if not request:
        return "*No request was recorded.*"
    if "input" in request:  # embeddings
        return "#### input\n\n" + _fence(json.dumps(request["input"], indent=2, ensure_ascii=False))
    parts = []
    for message in request.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):  # content parts: keep the text, name the rest
            content = "\n\n".join(p.get("text") or f"[{p.get('type', 'part')}]" for p in content)
        parts.append(f"#### {message.get('role', '?')}\n\n{content or '*(empty)*'}")
    return "\n\n".join(parts) or "*No messages.*"


def _fence(text: str) -> str:
    return f"```\n{text}\n```"


def facts_table(trace: dict[str, Any]) -> Group:
    table = Table.grid(padding=(0, 2))
    for _ in range(2):
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
    model = trace.get("served_model") or "-"
    if trace.get("requested_model") and trace["requested_model"] != model:
        model += f" (asked {trace['requested_model']})"
    status = Text(f"{trace['status']} {trace['http_status']}",
                  style="green" if trace["status"] == "ok" else "red")  # fmt: skip
    latency = Text(fmt.ms(trace.get("latency_ms")), style=_slow_style(trace.get("latency_ms")))
    tokens = f"{trace['prompt_tokens']} in / {trace['completion_tokens']} out"
    if trace.get("cached_tokens"):
        tokens += f" ({trace['cached_tokens']} cached)"
    if (trace.get("metadata") or {}).get("usage_estimated"):
        tokens += " · estimated"
    rows = [
        ("model", model, "provider", trace.get("provider") or "-"),
        ("status", status, "finish", trace.get("finish_reason") or "-"),
        ("tokens", tokens, "endpoint", f"{trace['endpoint']}{' · stream' if trace.get('stream') else ''}"),
        ("cost", fmt.usd(trace.get("cost_usd")), "shadow cost", fmt.usd(trace.get("shadow_cost_usd"))),
        ("latency", latency, "ttft", fmt.ms(trace.get("ttft_ms"))),
        ("overhead", fmt.ms(trace.get("overhead_ms")), "time", fmt.stamp(trace["ts"])),
        ("user", trace.get("user") or "-", "team", trace.get("team") or "-"),
        ("key", trace.get("key_id") or "-", "cache", trace.get("cache") or "-"),
    ]
    if trace.get("route") or trace.get("prompt_name") or trace.get("experiment"):
        prompt = f"{trace.get('prompt_name') or '-'} v{trace.get('prompt_version') or '-'}"
        route = trace.get("route") or "-"
        if trace.get("route_tier"):
            route += f" · tier {trace['route_tier']}"
        rows.append(("route", route, "prompt", prompt))
        rows.append(("experiment", trace.get("experiment") or "-", "arm", trace.get("arm") or "-"))
    for row in rows:
        table.add_row(*row)
    wide = Table.grid(padding=(0, 2))  # long values get the whole width
    wide.add_column(style="bold", no_wrap=True, min_width=8)
    wide.add_column(overflow="fold")
    params = (trace.get("request") or {}).get("params") or {}
    if params:
        wide.add_row("params", json.dumps(params, ensure_ascii=False))
    if trace.get("error"):
        wide.add_row("error", Text(trace["error"], style="red"))
    return Group(table, wide)


# An escalated attempt answered, but a cascade judged it unsure and asked the next model: not a failure.
ATTEMPT_STYLES = {"ok": "green", "escalated": "yellow"}


def path_table(trace: dict[str, Any]) -> Group | None:
    """How the call went through the gateway: each stage's decision, then each model tried (None:
    neither, as for a call refused before any model, or one recorded before attempts were)."""
    decisions = trace.get("decisions") or []
    attempts = trace.get("attempts") or []
    if not decisions and not attempts:
        return None
    said = []
    for decision in decisions:
        line = Text.assemble((f"{decision['stage']}: ", "bold"), decision["outcome"])
        if decision.get("reason"):
            line.append(f" ({decision['reason']})", style="dim")
        said.append(line)
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    for column in ("#", "model", "provider", "status", "latency", "tokens in/out", "cost"):
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    failures = []
    for number, attempt in enumerate(attempts, 1):
        style = ATTEMPT_STYLES.get(attempt["status"], "red")
        table.add_row(
            str(number), attempt["model"], attempt["provider"],
            Text(f"{attempt['status']} {attempt['http_status']}", style=style),
            fmt.ms(attempt.get("latency_ms")), f"{attempt['prompt_tokens']}/{attempt['completion_tokens']}",
            fmt.usd(attempt.get("cost_usd")),
        )  # fmt: skip
        if attempt.get("error"):
            failures.append(Text.assemble((f"{number}: ", "bold"), (attempt["error"], "red")))
    return Group(*said, *([table] if attempts else []), *failures)


def _slow_style(latency: float | None) -> str:
    return {"slow": "yellow", "very-slow": "bold red"}.get(fmt.slowness(latency) or "", "")


def feedback_markup(feedback: list[dict[str, Any]]) -> str:
    if not feedback:
        return "[$text-muted]No feedback yet: 1-5 rates, + / - thumbs up / down, c adds a comment.[/]"
    lines = []
    for entry in feedback:
        comment = f"  {escape(entry['comment'])}" if entry.get("comment") else ""
        who = escape(entry.get("rated_by") or "?")
        when = fmt.stamp(entry["created_at"])
        lines.append(f"[b]{fmt.score(fmt.rating_of(entry))}[/]  [$text-muted]{who} at {when}[/]{comment}")
    return "\n".join(lines)


class TraceDetailScreen(LiveScreen):
    AUTO_FOCUS = "#detail-body"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("1", "rate(1)", "Rate", key_display="1-5"),
        *RATE_BINDINGS,
        Binding("c", "comment", "Note"),
        Binding("y", "copy_id", "Copy id"),
        Binding("r", "reload", "Reload", show=False),
    ]

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__()
        self.summary = summary
        self.trace_id: str = summary["id"]
        self.trace: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield ConnectionBanner(id="banner")
        yield Static(f"[b]{self.trace_id}[/]  [$text-muted]loading…[/]", id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Static(id="detail-facts")
            yield Static("Path", classes="section", id="detail-path-title")
            yield Static(id="detail-path")
            yield Static("Conversation", classes="section")
            yield Markdown(id="detail-conversation")
            yield Static("Response", classes="section")
            yield Markdown(id="detail-response")
            yield Static("Feedback", classes="section")
            yield Static(id="detail-feedback")
        yield StatusBar(id="status")
        yield Footer(compact=True, show_command_palette=False)

    @work(exclusive=True, group="detail")
    async def reload(self) -> None:
        try:
            trace = await self.llmops.client.trace(self.trace_id)
        except DaemonError as exc:
            self.query_one("#detail-title", Static).update(
                f"[b]{self.trace_id}[/]  [$error]{escape(exc.message)}[/]"
            )
            return
        self.trace = trace
        when = fmt.stamp(trace["ts"])
        colour = "$success" if trace["status"] == "ok" else "$error"
        self.query_one("#detail-title", Static).update(
            f"[b]{self.trace_id}[/]  [{colour}]{trace['status']}[/]  "
            f"{escape(trace.get('served_model') or '-')}  [$text-muted]{when}[/]"
        )
        self.query_one("#detail-facts", Static).update(facts_table(trace))
        path = path_table(trace)
        for part in self.query("#detail-path-title, #detail-path"):
            part.display = path is not None
        if path is not None:
            self.query_one("#detail-path", Static).update(path)
        await self.query_one("#detail-conversation", Markdown).update(
            conversation_markdown(trace.get("request"))
        )
        response = trace.get("response")
        await self.query_one("#detail-response", Markdown).update(
            response if response else "*No response text.*"
        )
        self._show_feedback(trace.get("feedback") or [])

    def _show_feedback(self, feedback: list[dict[str, Any]]) -> None:
        self.query_one("#detail-feedback", Static).update(feedback_markup(feedback))

    def on_feedback_received(self, message: FeedbackReceived) -> None:
        if message.feedback.get("trace_id") == self.trace_id and self.trace is not None:
            # One rating per person: a new rating by the same person replaces theirs (same id).
            feedback = [
                e for e in self.trace.get("feedback") or [] if e.get("id") != message.feedback.get("id")
            ]
            feedback.append(message.feedback)
            self.trace["feedback"] = feedback
            self._show_feedback(feedback)

    def on_daemon_reconnected(self, message: DaemonReconnected) -> None:
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    def action_rate(self, score: fmt.Rating) -> None:
        self.llmops.rate(self.trace_id, score, None)

    def action_comment(self) -> None:
        def rated(rating: Any) -> None:
            if rating is not None:
                self.llmops.rate(self.trace_id, rating.score, rating.comment)

        self.app.push_screen(RatingDialog(self.trace_id, self.llmops.ratings.get(self.trace_id)), rated)

    def action_copy_id(self) -> None:
        self.app.copy_to_clipboard(self.trace_id)
        self.notify(f"Copied {self.trace_id}")
