"""The bottom status line and the top reconnect banner; both follow the app's `connection`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.markup import escape
from textual.widgets import Static

from llmops_tui.state import Connection

if TYPE_CHECKING:
    from llmops_tui.app import LlmopsApp


class StatusBar(Static):
    """Daemon health, profile (and its last reload error), connection state, live trace rate."""

    def on_mount(self) -> None:
        app: LlmopsApp = self.app  # type: ignore[assignment]
        self.watch(app, "connection", self._show)
        self.watch(app, "traces_per_second", self._show)

    def _show(self, _value: object = None) -> None:
        app: LlmopsApp = self.app  # type: ignore[assignment]
        self.update(status_text(app.connection, app.traces_per_second), layout=False)


def status_text(conn: Connection, rate: float) -> str:
    """Textual markup for the status line."""
    state = {
        "connected": "[b $success]● connected[/]",
        "down": "[b $error]○ disconnected[/]",
        "connecting": "[b $warning]◌ connecting[/]",
    }[conn.state]
    parts = [state]
    if conn.profile_error:  # first: it is the one thing here that needs action
        parts.append(f"[b $error]profile reload rejected:[/] [$error]{escape(conn.profile_error)}[/]")
    if conn.profile:
        parts.append(f"[$text-muted]profile[/] [b]{escape(conn.profile)}[/]")
    if conn.state == "connected":
        parts.append(f"{rate:.1f}[$text-muted] traces/s[/]")
    for model, activity in conn.busy:  # a conversion or a load in progress, as it happens
        parts.append(f"[b $warning]◌ {escape(activity)} {escape(model)}…[/]")
    if conn.models:
        parts.append(f"[$text-muted]{len(conn.models)} model{'s' * (len(conn.models) != 1)}[/]")
    if conn.auth:
        parts.append(f"[$text-muted]auth {escape(conn.auth)}[/]")
    parts.append(f"[$text-muted]{escape(conn.url)}[/]")
    return "  ".join(parts)


class ConnectionBanner(Static):
    """Shown only while the daemon is unreachable."""

    def on_mount(self) -> None:
        self.watch(self.app, "connection", self._show)

    def _show(self, conn: Connection) -> None:
        self.display = conn.state == "down"
        if conn.state == "down":
            retry = f"retrying in {conn.retry_in:g}s" if conn.retry_in else "retrying"
            self.update(
                f"[b]Daemon unreachable[/b] at {escape(conn.url)}: {escape(conn.reason or '')}. "
                f"Reconnecting by itself, {retry} (attempt {conn.attempt}). Press [b]R[/b] to retry now."
            )
