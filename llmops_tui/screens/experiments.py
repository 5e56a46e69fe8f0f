"""Experiments: every prompt experiment with its state and split; for the selected one, the verdict
(the winner on its metric, or not yet and why), its arms side by side with their 95 % intervals and
the sample gathered toward the minimum, its metric over time per arm, each arm against the control on
every metric, and its transitions. The lifecycle's actions (shadow, start, ramp, promote, stop) each
ask for confirmation; the daemon's refusal (409) stays on screen until the next action."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.events import Resize
from textual.markup import escape
from textual.reactive import reactive
from textual.widgets import DataTable, Footer, Static, Tab, Tabs

from llmops_tui import experiment_cells as cells
from llmops_tui.client import DaemonError
from llmops_tui.format import next_of
from llmops_tui.messages import DaemonReconnected, TracesReceived
from llmops_tui.routing_cells import Palette, fit_columns
from llmops_tui.screens.live import LiveScreen
from llmops_tui.screens.routing import MODEL_COLOURS
from llmops_tui.screens.tables import refill
from llmops_tui.widgets.ask_dialog import AskDialog
from llmops_tui.widgets.confirm import ConfirmDialog
from llmops_tui.widgets.experiment_panels import ArmsPanel, MetricTimeline
from llmops_tui.widgets.status_bar import ConnectionBanner, StatusBar

LIVE_REFRESH_SECONDS = 2.0
CLOCK_REFRESH_SECONDS = 30.0
SIDE_BY_SIDE = 110
RAMP_STEPS = (0.1, 0.25, 0.5, 0.75, 0.9)
# action: (key, what it does), in the lifecycle's order
ACTION_KEYS = {
    "shadow": ("d", "Copy calls to the other arms in the background; the control serves"),
    "start": ("a", "Split calls over the arms (A/B)"),
    "ramp": ("g", "Give the candidate a new share of the calls"),
    "promote": ("o", "Move the label to the winner and end the experiment"),
    "stop": ("x", "End the experiment; nothing changes"),
}
NO_EXPERIMENTS = (
    "[b]No experiments.[/] An experiment tries versions of a prompt on real calls and says which one "
    "wins. Push two versions (see the Prompts view, [b]p[/]), then:\n\n"
    "  [b]llmops experiment create[/] wording [b]--prompt[/] summarize [b]--arm[/] control=1 [b]--arm[/] "
    "concise=2\n  [b]llmops experiment start[/] wording\n\n"
    "[$text-muted]Calls naming the prompt are then split over the arms (each user keeps one); rate "
    "their answers (stars or thumbs, here on the Traces view or POST /v1/feedback) and the verdict "
    "shows here once the sample is large enough.[/]"
)


class ExperimentsScreen(LiveScreen):
    AUTO_FOCUS = "#experiments-list"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "next_window", "Window"),
        *[Binding(key, f"lifecycle('{name}')", name.capitalize()) for name, (key, _) in ACTION_KEYS.items()],
        Binding("r", "reload", "Refresh"),
    ]  # fmt: skip

    window: reactive[str] = reactive("all", init=False)

    def __init__(self) -> None:
        super().__init__()
        self.experiments: list[dict[str, Any]] | None = None  # None until the daemon answers
        self.data: dict[str, Any] | None = None  # the selected one with its results
        self.selected: str | None = None
        self.refusal: str | None = None  # the daemon's last "no" to an action, shown until the next one
        self._refresh_due = False

    def compose(self) -> ComposeResult:
        yield ConnectionBanner(id="banner")
        with Horizontal(id="experiments-controls"):
            yield Tabs(*[Tab(label, id=f"window-{name}") for name, label in cells.WINDOWS.items()],
                       id="experiments-window")  # fmt: skip
        yield Static(id="experiments-header")
        with VerticalScroll(id="experiments-body"):
            yield Static(id="experiments-empty")
            yield DataTable(id="experiments-list", cursor_type="row")
            yield Static(id="experiment-title")
            yield Static(id="experiment-refusal")
            yield Static(id="experiment-verdict")
            with Horizontal(id="experiment-figures"):
                yield Static(id="experiment-arms")
                yield Static(id="experiment-chart")
            yield Static("Each arm against the control", classes="section", id="experiment-comparisons-title")
            yield DataTable(id="experiment-comparisons", cursor_type="row", zebra_stripes=True)
            yield Static("Transitions", classes="section", id="experiment-transitions-title")
            yield DataTable(id="experiment-transitions", cursor_type="row", zebra_stripes=True)
        yield StatusBar(id="status")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.set_interval(CLOCK_REFRESH_SECONDS, self._tick)
        super().on_mount()

    # -- loading -------------------------------------------------------------------------------------

    @work(exclusive=True, group="experiments")
    async def reload(self) -> None:
        self._refresh_due = False
        client = self.llmops.client
        try:
            experiments = await client.experiments()
            names = [e["name"] for e in experiments]
            name = self.selected if self.selected in names else _first_running(experiments)
            data = await self._fetch(name) if name is not None else None
        except DaemonError as exc:
            if self.llmops.connection.state == "connected":
                self.notify(f"Could not load the experiments: {escape(exc.message)}", severity="error")
            return
        self.experiments, self.data, self.selected = experiments, data, name
        self._show()

    async def _fetch(self, name: str) -> dict[str, Any]:
        window = None if self.window == "all" else self.window
        return await self.llmops.client.experiment(
            name, window, now=self.llmops.frozen_now, utc_offset=self.llmops.utc_offset
        )

    @work(exclusive=True, group="experiment-detail")
    async def load_detail(self, name: str) -> None:
        try:
            data = await self._fetch(name)
        except DaemonError as exc:
            self.notify(f"Could not load {escape(name)}: {escape(exc.message)}", severity="error")
            return
        if name == self.selected:
            self.data = data
            self._show_selected()

    def _palette(self) -> Palette:
        variables = self.app.get_css_variables()
        return Palette(tuple(variables[name] for name in MODEL_COLOURS), variables["success"],
                       variables["warning"], variables["error"], "dim")  # fmt: skip

    def _room(self) -> int:
        return self.size.width - 2

    def _show(self) -> None:
        experiments = self.experiments or []
        states = [e["state"] for e in experiments]
        running = sum(s in ("shadow", "ab", "rollout") for s in states)
        parts = [f"[b]Experiments[/]  {len(experiments)} experiment{'s' * (len(experiments) != 1)}"]
        if experiments:
            parts.append(f"{running} running" if running else "[$text-muted]none running[/]")
            for state in ("draft", "promoted", "stopped"):
                if states.count(state):
                    parts.append(f"{states.count(state)} {state}")
        self.query_one("#experiments-header", Static).update("  ·  ".join(parts))
        empty = self.query_one("#experiments-empty", Static)
        empty.display = self.experiments is not None and not experiments
        empty.update(NO_EXPERIMENTS)
        self.query_one("#experiments-list").display = bool(experiments)
        table = self.query_one("#experiments-list", DataTable)
        palette = self._palette()
        rows = [cells.experiment_cells(e, palette) for e in experiments]
        kept, widths = fit_columns(cells.EXPERIMENT_COLUMNS, rows, self._room(), {3}, (5, 4, 1), 16)
        names = [e["name"] for e in experiments]
        with self.prevent(DataTable.RowHighlighted):
            refill(table, cells.EXPERIMENT_COLUMNS, rows, kept, widths, set(), names, max_rows=6)
            if self.selected in names:
                table.move_cursor(row=names.index(self.selected), animate=False)
        self._show_selected()

    def _show_selected(self) -> None:
        data = self.data
        for part in self.query("#experiment-title, #experiment-verdict, #experiment-arms, #experiment-chart, "
                               "#experiment-comparisons-title, #experiment-comparisons, "
                               "#experiment-transitions-title, #experiment-transitions"):  # fmt: skip
            part.display = data is not None
        refusal = self.query_one("#experiment-refusal", Static)
        refusal.display = data is not None and self.refusal is not None
        refusal.update(f"[b $error]✖ {escape(self.refusal or '')}[/]")
        self.refresh_bindings()
        if data is None:
            return
        palette = self._palette()
        self.query_one("#experiment-title", Static).update(self._title(data))
        self.query_one("#experiment-verdict", Static).update(cells.verdict_markup(data))
        self.query_one("#experiment-arms", Static).update(ArmsPanel(data, palette))
        self.query_one("#experiment-chart", Static).update(MetricTimeline(data, self._bucket_label, palette))
        self._fill_comparisons(data, palette)
        self._fill_transitions(data, palette)

    def _title(self, data: dict[str, Any]) -> str:
        scope = data["scope"]
        who = ", ".join(f"{kind} {', '.join(names)}" for kind, names in scope.items() if names) or "everyone"
        window = cells.WINDOWS[self.window].lower()
        line = (
            f"[b]{escape(data['name'])}[/] on [b]{escape(data['prompt'])}:{escape(data['label'])}[/]  "
            f"[$text-muted]metric {escape(data['metric'])} · at least {data['min_sample']:,} per arm · "
            f"alpha {data['alpha']:g} · {escape(who)} · {window}[/]"
        )
        if data["shadows"]:
            line += f"\n[$text-muted]shadow copies: {escape(cells.shadows_text(data['shadows']))}[/]"
        return line

    def _fill_comparisons(self, data: dict[str, Any], palette: Palette) -> None:
        results = data["results"]
        order = cells.arm_order(data)
        rows = [cells.comparison_cells(results, c, palette, order) for c in results["comparisons"]]
        # With one candidate, every row is about it: its name is in the arms' panel above, as are most
        # estimates; the effect, the p-values and the note are what this table adds.
        optional = (0, 2, 6, 3, 4) if len(results["arms"]) <= 2 else (2, 6, 3, 4, 0)
        kept, widths = fit_columns(cells.COMPARISON_COLUMNS, rows, self._room(), {8}, optional, 45)
        refill(self.query_one("#experiment-comparisons", DataTable), cells.COMPARISON_COLUMNS, rows, kept,
               widths, {3, 4, 5, 6, 7})  # fmt: skip

    def _fill_transitions(self, data: dict[str, Any], palette: Palette) -> None:
        rows = [cells.transition_cells(t, palette) for t in reversed(data["transitions"])]
        kept, widths = fit_columns(cells.TRANSITION_COLUMNS, rows, self._room(), {4, 5}, (4, 3), 12)
        refill(self.query_one("#experiment-transitions", DataTable), cells.TRANSITION_COLUMNS, rows, kept,
               widths, set(), max_rows=8)  # fmt: skip

    def _bucket_label(self, start: float) -> str:
        if self.data and self.data["bucket_seconds"] >= 86_400:
            return time.strftime("%a %d %b", time.localtime(start))
        return time.strftime("%H:%M" if self.window == "today" else "%d %b %H:%M", time.localtime(start))

    @on(DataTable.RowHighlighted, "#experiments-list")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value
        if name is not None and name != self.selected:
            self.selected, self.refusal = name, None
            self.load_detail(name)

    def on_resize(self, event: Resize) -> None:
        # Side by side from SIDE_BY_SIDE columns: the arms' figures, and the metric over time.
        self.query_one("#experiment-figures").set_class(event.size.width < SIDE_BY_SIDE, "-stacked")
        if self.experiments is not None:
            self._show()

    # -- live ----------------------------------------------------------------------------------------

    def on_traces_received(self, message: TracesReceived) -> None:
        if any(t.get("experiment") for t in message.traces) and not self._refresh_due:
            self._refresh_due = True
            self.set_timer(LIVE_REFRESH_SECONDS, self.reload)

    def on_daemon_reconnected(self, message: DaemonReconnected) -> None:
        self.reload()

    def _tick(self) -> None:
        if self.experiments is not None and self.is_current:
            self.reload()

    # -- controls ------------------------------------------------------------------------------------

    @on(Tabs.TabActivated, "#experiments-window")
    def _window_tab(self, event: Tabs.TabActivated) -> None:
        self.window = (event.tab.id or "window-all").removeprefix("window-")

    def watch_window(self) -> None:
        self.query_one("#experiments-window", Tabs).active = f"window-{self.window}"
        self.reload()

    def action_next_window(self) -> None:
        self.window = next_of(cells.WINDOWS, self.window)

    def action_reload(self) -> None:
        self.reload()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "lifecycle":
            # Greyed out without an experiment; hidden where its state does not allow the action (the
            # help lists them all), so that the footer fits.
            if self.data is None:
                return None
            return cells.can(str(parameters[0]), self.data["state"])
        return True

    def action_lifecycle(self, action: str) -> None:
        data = self.data
        if data is None or not cells.can(action, data["state"]):
            return
        if action == "ramp":
            self._ask_ramp(data)
        elif action == "promote":
            self._ask_promote(data)
        else:
            question, consequence = _explained(action, data)
            self._confirm(data["name"], action, question, consequence, {})

    def _confirm(self, name: str, action: str, question: str, consequence: str, body: dict[str, Any]) -> None:
        def act_if_confirmed(confirmed: bool | None) -> None:
            if confirmed:
                self._act(name, action, body)

        self.app.push_screen(ConfirmDialog(question, consequence, action.capitalize()), act_if_confirmed)

    def _ask_ramp(self, data: dict[str, Any]) -> None:
        arm = data["arms"][-1]["name"]
        share = data["shares"].get(arm, 0.0)
        default = next((s for s in RAMP_STEPS if s > share + 1e-9), RAMP_STEPS[-1])
        explanation = (
            f"{arm} serves {cells.percent(share)} of the calls now; the other arms share the rest as they "
            "do. Each user keeps one arm while the shares stay as they are."
        )

        def confirm(text: str | None) -> None:
            if not text:
                return
            new = float(text.rstrip("%").strip()) / 100
            question = f"Ramp {arm} to {cells.percent(new)}?"
            consequence = (
                f"{arm} of {data['name']} serves {cells.percent(new)} of the calls instead of "
                f"{cells.percent(share)}; some users move to another arm."
            )
            self._confirm(data["name"], "ramp", question, consequence, {"share": new, "arm": arm})

        self.app.push_screen(
            AskDialog(f"Ramp {arm}: its new share, in percent", explanation, f"{default * 100:g}", "Next",
                      cells.share_problem),
            confirm,
        )  # fmt: skip

    def _ask_promote(self, data: dict[str, Any]) -> None:
        names = cells.arm_order(data)
        winner = data["results"]["winner"] or data["winner"]
        if winner is not None:
            self._confirm_promote(data, winner)
            return
        explanation = (
            f"No arm has won on {data['results']['metric_label']} yet. Promote one anyway? It moves "
            f"{data['prompt']}:{data['label']} to that arm's version. Arms: {', '.join(names)}."
        )

        def check(text: str) -> str | None:
            return None if text in names else f"One of {', '.join(names)}."

        self.app.push_screen(
            AskDialog("Which arm to promote?", explanation, names[-1], "Next", check),
            lambda arm: self._confirm_promote(data, arm) if arm else None,
        )

    def _confirm_promote(self, data: dict[str, Any], arm: str) -> None:
        version = next(a["version"] for a in data["arms"] if a["name"] == arm)
        question = f"Promote {arm} of {data['name']}?"
        consequence = (
            f"{data['prompt']}:{data['label']} points at version {version} from now on, for every call, and "
            "the experiment ends. The label can be moved back on the Prompts view (p, then m)."
        )
        self._confirm(data["name"], "promote", question, consequence, {"arm": arm})

    @work(group="experiment-action")
    async def _act(self, name: str, action: str, body: dict[str, Any]) -> None:
        try:
            after = await self.llmops.client.experiment_action(name, action, **body)
        except DaemonError as exc:
            self.refusal = f"{action.capitalize()} refused by the daemon: {exc.message}"
            self.notify(escape(self.refusal), severity="error", timeout=10)
            self._show_selected()
            return
        self.refusal = None
        self.notify(
            f"{escape(name)}: {action} done, now {cells.STATE_MARKS.get(after['state'], after['state'])}.",
            timeout=4,
        )
        self.reload()


def _first_running(experiments: list[dict[str, Any]]) -> str | None:
    """The experiment to show first: a running one, else the first listed."""
    running = [e for e in experiments if e["state"] in ("shadow", "ab", "rollout")]
    chosen = running or experiments
    return chosen[0]["name"] if chosen else None


def _explained(action: str, data: dict[str, Any]) -> tuple[str, str]:
    """The question and the consequence of shadow, start and stop."""
    name, prompt, label = data["name"], data["prompt"], data["label"]
    control, others = data["arms"][0]["name"], ", ".join(a["name"] for a in data["arms"][1:])
    if action == "shadow":
        return (f"Shadow {name}?", f"{control} keeps answering every call to {prompt}:{label}; "
                f"{cells.percent(data['shadow_share'])} of them are also sent to {others} in the background "
                "(their answers are recorded, never returned, and cost tokens).")  # fmt: skip
    if action == "start":
        split = " · ".join(f"{arm} {cells.percent(share)}" for arm, share in data["shares"].items())
        return (f"Start the A/B test {name}?", f"Calls to {prompt}:{label} are split {split}; each user "
                "keeps the arm they are given.")  # fmt: skip
    version = next((a["version"] for a in data["arms"] if a["name"] == control), None)
    return (
        f"Stop {name}?",
        f"Every call to {prompt}:{label} gets what the label points at again "
        f"(the control, v{version}, unless it was moved); nothing is promoted. Results are kept.",
    )
