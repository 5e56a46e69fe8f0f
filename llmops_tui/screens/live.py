"""The base of screens that show the daemon's data: the app forwards them its messages while mounted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.screen import Screen

if TYPE_CHECKING:
    from llmops_tui.app import LlmopsApp


class LiveScreen(Screen[None]):
    @property
    def llmops(self) -> LlmopsApp:
        return self.app  # type: ignore[return-value]

    def reload(self) -> Any:
        """Fetch this screen's data from the daemon (a worker in each screen)."""
        raise NotImplementedError

    def on_mount(self) -> None:
        self.llmops.live_screens.add(self)
        self.reload()

    def on_unmount(self) -> None:
        self.llmops.live_screens.discard(self)
