"""Past-tense messages the daemon client posts to the app (harlequin style: say what happened)."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class DaemonMessage(Message, bubble=False):
    """Posted by the client to the app, and by the app to each live screen: never bubbles back up."""


class DaemonConnected(DaemonMessage, bubble=False):
    """The event stream is live for the first time; `status` is GET /admin/status."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__()
        self.status = status


class DaemonReconnected(DaemonMessage, bubble=False):
    """The daemon answers again after an outage; screens refetch what they show."""

    def __init__(self, status: dict[str, Any], down_seconds: float) -> None:
        super().__init__()
        self.status = status
        self.down_seconds = down_seconds


class DaemonDisconnected(DaemonMessage, bubble=False):
    def __init__(self, reason: str, retry_in: float, attempt: int) -> None:
        super().__init__()
        self.reason = reason
        self.retry_in = retry_in
        self.attempt = attempt


class TracesReceived(DaemonMessage, bubble=False):
    """New traces from the live stream, newest last; batched so 200/s means ~10 messages/s."""

    def __init__(self, traces: list[dict[str, Any]], dropped: int = 0) -> None:
        super().__init__()
        self.traces = traces
        self.dropped = dropped


class FeedbackReceived(DaemonMessage, bubble=False):
    """Someone (this console or any client) rated a trace."""

    def __init__(self, feedback: dict[str, Any]) -> None:
        super().__init__()
        self.feedback = feedback


class ProfileReloaded(DaemonMessage, bubble=False):
    """The daemon tried to reload its profile: `ok` or the error that kept the old one serving."""

    def __init__(self, ok: bool, name: str | None, error: str | None) -> None:
        super().__init__()
        self.ok = ok
        self.name = name
        self.error = error


class ModelChanged(DaemonMessage, bubble=False):
    """A local model started or finished converting or loading (`state` as /admin/status shows it)."""

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__()
        self.state = state
