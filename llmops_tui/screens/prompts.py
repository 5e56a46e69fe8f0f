"""Prompts: the registry's prompts with their latest version and labels; for the selected one, its
versions with the labels on each and what their calls did (calls, errors, stars, thumbs, cost), and
the selected version's YAML or its diff against the version before (d toggles); m points a label at
the selected version (a release, or a rollback), after asking which label and confirming."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.events import Resize
from textual.markup import escape
from textual.widgets import DataTable, Footer, Static

from llmops_tui import prompt_cells as cells
from llmops_tui.client import DaemonError
from llmops_tui.messages import DaemonReconnected, TracesReceived
from llmops_tui.routing_cells import Palette, fit_columns
from llmops_tui.screens.live import LiveScreen
from llmops_tui.screens.tables import refill
from llmops_tui.widgets.ask_dialog import AskDialog
from llmops_tui.widgets.confirm import ConfirmDialog
from llmops_tui.widgets.status_bar import ConnectionBanner, StatusBar

LIVE_REFRESH_SECONDS = 2.0  # calls naming a prompt refresh its usage at most this often
CLOCK_REFRESH_SECONDS = 30.0  # prompt files saved in the profile's folder make versions without a trace
LABEL_CHARS = "letters, digits, '_', '.', '-' (at most 64)"
NO_PROMPTS = (
    "[b]No prompts yet.[/] Add YAML files to [b]profiles/prompts/[/] (the folder beside the profile; "
    "the daemon loads them as they are saved) or push one with [b]llmops prompt push FILE[/], for "
    "example:\n\n"
    "  [b]name:[/] summarize\n  [b]labels:[/] [production]\n  [b]messages:[/]\n"
    "    - {role: system, content: You summarise support tickets.}\n"
    '    - {role: user, content: "Summarise: {{ ticket }}"}\n\n'
    "[$text-muted]Calls then name it instead of sending messages: "
    '{"model": "…", "prompt": {"name": "summarize", "variables": {"ticket": "…"}}}. '
    "Each saved change is a new version; labels say which version a call gets.[/]"
)
Panel = Literal["yaml", "diff"]


def label_problem(value: str) -> str | None:
    """Why `value` cannot name a label to move, or None."""
    if not value:
        return "Name the label."
    if value == cells.IMPLICIT:
        return "latest always points at the newest version: it cannot be moved."
    if len(value) > 64 or not (value[0].isalnum() and all(c.isalnum() or c in "_.-" for c in value)):
        return f"A label is {LABEL_CHARS}."
    return None


class PromptsScreen(LiveScreen):
    AUTO_FOCUS = "#prompts-list"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "toggle_panel", "YAML/diff"),
        Binding("m", "move_label", "Move label"),
        Binding("r", "reload", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[dict[str, Any]] | None = None  # None until the daemon answers
        self.detail: dict[str, Any] | None = None  # the selected prompt, as GET /admin/prompts/{name}
        self.selected: str | None = None
        self.version: int | None = None  # the selected version of the selected prompt
        self.panel: Panel = "yaml"
        self.shown_text = ""  # the YAML or the diff on the panel, as the daemon gave it
        self._texts: dict[tuple[str, int, Panel], str] = {}  # versions never change: kept once fetched
        self._refresh_due = False

    def compose(self) -> ComposeResult:
        yield ConnectionBanner(id="banner")
        yield Static(id="prompts-header")
        yield Static(id="prompts-empty")
        yield DataTable(id="prompts-list", cursor_type="row")
        yield Static(classes="section", id="prompts-versions-title")
        yield DataTable(id="prompts-versions", cursor_type="row", zebra_stripes=True)
        yield Static(classes="section", id="prompts-panel-title")
        with VerticalScroll(id="prompts-panel"):
            yield Static(id="prompts-text")
        yield StatusBar(id="status")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.set_interval(CLOCK_REFRESH_SECONDS, self._tick)
        super().on_mount()

    # -- loading -------------------------------------------------------------------------------------

    @work(exclusive=True, group="prompts")
    async def reload(self) -> None:
        self._refresh_due = False
        client = self.llmops.client
        try:
            prompts = await client.prompts()
            names = [p["name"] for p in prompts]
            name = self.selected if self.selected in names else (names[0] if names else None)
            detail = await client.prompt(name) if name is not None else None
        except DaemonError as exc:
            if self.llmops.connection.state == "connected":
                self.notify(f"Could not load the prompts: {escape(exc.message)}", severity="error")
            return
        self.prompts, self.detail, self.selected = prompts, detail, name
        self._show()

    @work(exclusive=True, group="prompt-detail")
    async def load_detail(self, name: str) -> None:
        try:
            detail = await self.llmops.client.prompt(name)
        except DaemonError as exc:
            self.notify(f"Could not load {escape(name)}: {escape(exc.message)}", severity="error")
            return
        if name == self.selected:
            self.detail = detail
            self._fill_versions()

    def _palette(self) -> Palette:
        variables = self.app.get_css_variables()
        return Palette((variables["accent"],), variables["success"], variables["warning"], variables["error"],
                       "dim")  # fmt: skip

    def _show(self) -> None:
        prompts = self.prompts or []
        versions = sum(p["versions"] for p in prompts)
        header = f"[b]Prompts[/]  {len(prompts)} prompt{'s' * (len(prompts) != 1)}"
        if prompts:
            header += f"  ·  {versions} version{'s' * (versions != 1)}"
        self.query_one("#prompts-header", Static).update(header)
        empty = self.query_one("#prompts-empty", Static)
        empty.display = self.prompts is not None and not prompts
        empty.update(NO_PROMPTS)
        for part in self.query("#prompts-list, #prompts-versions-title, #prompts-versions, "
                               "#prompts-panel-title, #prompts-panel"):  # fmt: skip
            part.display = bool(prompts)
        self._fill_list()
        self._fill_versions()

    def _room(self) -> int:
        return self.size.width - 2

    def _fill_list(self) -> None:
        prompts = self.prompts or []
        table = self.query_one("#prompts-list", DataTable)
        rows = [cells.prompt_cells(p, self._palette()) for p in prompts]
        kept, widths = fit_columns(cells.PROMPT_COLUMNS, rows, self._room(), {3, 4}, (2,), 12)
        names = [p["name"] for p in prompts]
        with self.prevent(DataTable.RowHighlighted):
            refill(table, cells.PROMPT_COLUMNS, rows, kept, widths, {1, 2}, names, max_rows=6)
            if self.selected in names:
                table.move_cursor(row=names.index(self.selected), animate=False)

    def _fill_versions(self) -> None:
        detail = self.detail
        table = self.query_one("#prompts-versions", DataTable)
        if detail is None:
            return
        versions = detail["versions"]
        numbers = [v["version"] for v in versions]
        if self.version not in numbers:
            self.version = numbers[0] if numbers else None
        title = f"{escape(detail['name'])}: {len(versions)} version{'s' * (len(versions) != 1)}"
        labels = escape(cells.labels_text(detail["labels"], self._palette()).plain)
        self.query_one("#prompts-versions-title", Static).update(
            f"{title}  [$text-muted]labels: {labels}  ·  m points a label at the selected version[/]"
        )
        rows = [cells.version_cells(v, detail["labels"], self._palette()) for v in versions]
        kept, widths = fit_columns(cells.VERSION_COLUMNS, rows, self._room(), {3}, (9, 2, 1, 5), 8)
        with self.prevent(DataTable.RowHighlighted):
            refill(table, cells.VERSION_COLUMNS, rows, kept, widths, {4, 5, 6, 7, 8, 9},
                   [str(n) for n in numbers], max_rows=8)  # fmt: skip
            if self.version in numbers:
                table.move_cursor(row=numbers.index(self.version), animate=False)
        self._show_panel()
        self.refresh_bindings()

    def _show_panel(self) -> None:
        if self.detail is None or self.version is None:
            return
        name, version = self.detail["name"], self.version
        before = cells.previous_version(self.detail["versions"], version)
        title = self.query_one("#prompts-panel-title", Static)
        text = self.query_one("#prompts-text", Static)
        if self.panel == "diff":
            title.update(f"diff v{before} → v{version}  [$text-muted]d shows the YAML[/]" if before
                         else f"v{version}: no diff  [$text-muted]d shows the YAML[/]")  # fmt: skip
            if before is None:
                text.update(Text(f"v{version} is the first version of {name}: nothing to compare it with.",
                                 style="dim"))  # fmt: skip
                return
        else:
            title.update(f"v{version} as YAML  [$text-muted]d shows the diff against the version before[/]")
        kept = self._texts.get((name, version, self.panel))
        if kept is not None:
            self._render_text(kept)
        else:
            text.update(Text("loading…", style="dim"))
            self.load_text(name, version, self.panel, before)

    def _render_text(self, body: str) -> None:
        self.shown_text = body
        text = self.query_one("#prompts-text", Static)
        if self.panel == "diff":
            text.update(cells.diff_text(body, self._palette()) if body else Text("no change", style="dim"))
        else:
            text.update(Syntax(body.rstrip(), "yaml", theme="ansi_dark", background_color="default",
                               word_wrap=True))  # fmt: skip

    @work(exclusive=True, group="prompt-text")
    async def load_text(self, name: str, version: int, panel: Panel, before: int | None) -> None:
        client = self.llmops.client
        try:
            if panel == "diff" and before is not None:
                body = await client.prompt_diff(name, before, version)
            else:
                body = (await client.prompt_version(name, version))["yaml"]
        except DaemonError as exc:
            self.query_one("#prompts-text", Static).update(
                Text(f"Could not load v{version}: {exc.message}", style="red")
            )
            return
        self._texts[(name, version, panel)] = body
        if (name, version, panel) == (self.selected, self.version, self.panel):
            self._render_text(body)

    # -- selection -----------------------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#prompts-list")
    def _prompt_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value
        if name is not None and name != self.selected:
            self.selected, self.version = name, None
            self.load_detail(name)

    @on(DataTable.RowHighlighted, "#prompts-versions")
    def _version_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None and int(event.row_key.value) != self.version:
            self.version = int(event.row_key.value)
            self._show_panel()

    @on(DataTable.RowSelected, "#prompts-list")
    def _prompt_selected(self) -> None:
        self.query_one("#prompts-versions", DataTable).focus()

    def on_resize(self, event: Resize) -> None:
        if self.prompts is not None:
            self._show()

    # -- live ----------------------------------------------------------------------------------------

    def on_traces_received(self, message: TracesReceived) -> None:
        if any(trace.get("prompt_name") for trace in message.traces) and not self._refresh_due:
            self._refresh_due = True
            self.set_timer(LIVE_REFRESH_SECONDS, self.reload)

    def on_daemon_reconnected(self, message: DaemonReconnected) -> None:
        self.reload()

    def _tick(self) -> None:
        if self.prompts is not None and self.is_current:
            self.reload()

    # -- controls ------------------------------------------------------------------------------------

    def action_reload(self) -> None:
        self.reload()

    def action_toggle_panel(self) -> None:
        self.panel = "diff" if self.panel == "yaml" else "yaml"
        self._show_panel()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("move_label", "toggle_panel") and self.version is None:
            return None
        return True

    def action_move_label(self) -> None:
        detail, version = self.detail, self.version
        if detail is None or version is None:
            return
        name, labels = detail["name"], detail["labels"]
        on_it = ", ".join(cells.labels_on(labels, version)) or "none"
        explanation = (
            f"Which label of {name} should point at version {version}? Its labels now: "
            f"{cells.labels_text(labels, self._palette()).plain} (on v{version}: {on_it})."
        )

        def confirm(label: str | None) -> None:
            if not label:
                return
            question = f"Point {name}:{label} at version {version}?"
            consequence = cells.label_move_consequence(name, label, version, labels)

            def move_if_confirmed(confirmed: bool | None) -> None:
                if confirmed:
                    self._move(name, label, version)

            self.app.push_screen(ConfirmDialog(question, consequence, "Move label"), move_if_confirmed)

        self.app.push_screen(
            AskDialog("Move a label", explanation, cells.DEFAULT_LABEL, "Next", label_problem), confirm
        )

    @work(group="prompt-label")
    async def _move(self, name: str, label: str, version: int) -> None:
        try:
            answer = await self.llmops.client.move_label(name, label, version)
        except DaemonError as exc:
            self.notify(f"Label not moved: {escape(exc.message)}", severity="error", timeout=8)
            return
        was = answer.get("previous")
        moved = f" (it was on v{was})" if was is not None else " (a new label)"
        self.notify(f"{escape(name)}:{escape(label)} now points at v{version}{escape(moved)}.", timeout=4)
        self.reload()
