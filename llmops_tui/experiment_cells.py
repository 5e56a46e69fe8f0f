"""How a prompt experiment reads in the console: its state and split, each arm's figures with their
95 % intervals side by side, each arm against the control on every metric, the sample gathered
toward the minimum, the verdict, the primary metric over time and the lifecycle's transitions.
Pure functions over /admin/experiments' JSON."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from llmops_tui import format as fmt
from llmops_tui.routing_cells import SPARKS, Palette
from llmops_tui.widgets.usage_bar import BarColours, usage_bar

STATE_MARKS = {
    "draft": "○ draft", "shadow": "◐ shadow", "ab": "● A/B", "rollout": "▲ rollout",
    "promoted": "✔ promoted", "stopped": "■ stopped",
}  # fmt: skip
ENDED = ("promoted", "stopped")
EXPERIMENT_COLUMNS = ("experiment", "prompt", "state", "split", "metric", "label", "promoted")
COMPARISON_COLUMNS = ("arm", "metric", "test", "control", "arm's", "effect [95% CI]", "p", "always-valid p",
                      "note")  # fmt: skip
TRANSITION_COLUMNS = ("when", "action", "state", "by", "split after", "note")
PROPORTIONS = ("thumbs_up", "error_rate", "cache_hit")
# The lifecycle, as the daemon allows it: action -> the states it may start from.
ALLOWED = {
    "shadow": ("draft",), "start": ("draft", "shadow"), "ramp": ("ab", "rollout"),
    "promote": ("shadow", "ab", "rollout"), "stop": ("draft", "shadow", "ab", "rollout"),
}  # fmt: skip
WINDOWS = {"all": "Whole run", **fmt.WINDOWS}
# Each metric's figure over the whole window, in an arm's results
OVERALL = {
    "rating": "mean_rating", "thumbs_up": "thumbs_up_rate", "error_rate": "error_rate",
    "cost": "cost_per_call_usd", "latency": "latency_p50_ms", "cache_hit": "cache_hit_rate",
}  # fmt: skip


def arm_order(experiment: dict[str, Any]) -> list[str]:
    """The arms' names, control first: whose colour is whose."""
    return [arm["name"] for arm in experiment["arms"]]


def percent(share: float) -> str:
    """A share as people say it: `50%`, `12.5%`, `0.5%`."""
    value = share * 100
    return f"{value:.0f}%" if abs(value - round(value)) < 0.05 else f"{value:.1f}%"


def split_text(experiment: dict[str, Any], palette: Palette) -> Text:
    """Who serves what now: the shares in A/B and rollout; in shadow, the control serves and a share
    of its calls is copied to the others; a draft serves nothing yet."""
    order, state = arm_order(experiment), experiment["state"]
    text = Text(no_wrap=True, overflow="ellipsis")
    if state == "shadow":
        control, others = order[0], order[1:]
        text.append(control, palette.of(control, order))
        text.append(f" serves · {percent(experiment['shadow_share'])} copied to ", palette.muted)
        text.append(", ".join(others))
        return text
    for n, (name, share) in enumerate(experiment["shares"].items()):
        if n:
            text.append(" · ", palette.muted)
        text.append(name, palette.of(name, order))
        text.append(f" {percent(share)}")
    if state == "draft":
        text.append("  once started", palette.muted)
    elif state in ENDED:
        text.append("  (ended)", palette.muted)
    return text


def state_text(state: str, palette: Palette) -> Text:
    style = {"ab": palette.ok, "rollout": palette.ok, "shadow": palette.warning, "promoted": "bold",
             "stopped": palette.muted, "draft": palette.muted}.get(state, "")  # fmt: skip
    return Text(STATE_MARKS.get(state, state), style=style)


def experiment_cells(experiment: dict[str, Any], palette: Palette) -> list[Text]:
    winner = experiment["winner"]
    order = arm_order(experiment)
    return [
        Text(experiment["name"], style="bold"),
        Text(experiment["prompt"]),
        state_text(experiment["state"], palette),
        split_text(experiment, palette),
        Text(experiment["metric"]),
        Text(experiment["label"], style=palette.muted),
        Text(winner, style=palette.of(winner, order))
        if winner and experiment["state"] == "promoted"
        else Text("-", style=palette.muted),
    ]


# -- figures -----------------------------------------------------------------------------------------


def value(metric: str, number: float | None) -> str:
    """A metric's value as it reads: stars to two places, rates in percent, money, milliseconds."""
    if number is None:
        return "-"
    if metric == "rating":
        return f"{number:.2f}"
    if metric in PROPORTIONS:
        return f"{number:.0%}"
    if metric == "cost":
        return fmt.usd(number)
    return fmt.ms(number)


def signed(metric: str, number: float | None) -> str:
    """A difference between arms, with its sign: `+1.71`, `+44pp`, `-$0.00003`, `+12ms`."""
    if number is None:
        return "-"
    sign = "-" if number < 0 else "+"
    if metric == "rating":
        return f"{number:+.2f}"
    if metric in PROPORTIONS:
        return f"{number * 100:+.0f}pp"
    if metric == "cost":
        return sign + fmt.usd(abs(number))
    return sign + fmt.ms(abs(number))


def interval(metric: str, bounds: list[float] | None, show: Any = value) -> str:
    if not bounds:
        return ""
    return f"[{show(metric, bounds[0])}, {show(metric, bounds[1])}]"


def p_text(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.0001" if p < 0.0001 else f"{p:.4f}" if p < 0.01 else f"{p:.3f}"


def comparison(results: dict[str, Any], arm: str, metric: str) -> dict[str, Any] | None:
    return next(
        (c for c in results["comparisons"] if c["metric"] == metric and _arm_of(results, c) == arm), None
    )


def _arm_of(results: dict[str, Any], compared: dict[str, Any]) -> str:
    """Which arm a comparison is about: comparisons come one per non-control arm and metric, in order."""
    index = results["comparisons"].index(compared)
    per_arm = len({c["metric"] for c in results["comparisons"]}) or 1
    return str(results["arms"][1 + index // per_arm]["name"])


def estimate_cell(results: dict[str, Any], arm: str, metric: str, key: str) -> str:
    """`2.95 [2.73, 3.18] n=21`: an arm's mean or rate with its 95 % interval and sample."""
    arms = [a["name"] for a in results["arms"]]
    control = arms[0]
    found = comparison(results, arm if arm != control else (arms[1] if len(arms) > 1 else arm), metric)
    figures = next(a for a in results["arms"] if a["name"] == arm)
    estimate = figures[key]
    if found is None:
        return value(metric, estimate)
    side = "a" if arm == control else "b"
    n = found[f"n_{side}"]
    if not n:
        return "no data"
    bounds = interval(metric, found[f"interval_{side}"])
    return f"{value(metric, estimate)} {bounds} n={n:,}".replace("  ", " ")


def sample(results: dict[str, Any], arm: str, metric: str) -> int:
    """How many of `arm`'s calls count toward `metric` (rated ones, for ratings)."""
    arms = [a["name"] for a in results["arms"]]
    other = arm if arm != arms[0] else (arms[1] if len(arms) > 1 else arm)
    found = comparison(results, other, metric)
    if found is None:
        return 0
    return int(found["n_a"] if arm == arms[0] else found["n_b"])


def arms_table(data: dict[str, Any], palette: Palette, bar_width: int) -> Table:
    """The arms side by side: a column per arm, a row per figure, the sample bar last."""
    results, order = data["results"], arm_order(data)
    metric, minimum = results["metric"], data["min_sample"]
    table = Table(box=None, padding=(0, 2, 0, 0), expand=False, show_edge=False, header_style="bold")
    table.add_column("", style=palette.muted, no_wrap=True)
    for arm in results["arms"]:
        share = data["shares"].get(arm["name"], 0.0)
        header = Text.assemble((arm["name"], f"bold {palette.of(arm['name'], order)}"),
                               (f"  v{arm['version']}", palette.muted))  # fmt: skip
        if arm["name"] == order[0] and arm["name"] != "control":
            header.append(" · control", palette.muted)
        if data["state"] not in ("draft", "shadow", *ENDED):
            header.append(f" · {percent(share)}", palette.muted)
        if arm["model"]:
            header.append(f" · {arm['model']}", palette.muted)
        table.add_column(header, no_wrap=True, overflow="ellipsis")
    arms = results["arms"]

    def row(label: str, cells: Sequence[str | Text]) -> None:
        table.add_row(label, *cells)

    row("calls", [f"{a['calls']:,}" + (f"  ({a['errors']:,} failed)" if a["errors"] else "") for a in arms])
    row("mean rating ★", [estimate_cell(results, a["name"], "rating", "mean_rating") for a in arms])
    row("thumbs up", [estimate_cell(results, a["name"], "thumbs_up", "thumbs_up_rate") for a in arms])
    row("latency p50/p95", [f"{fmt.ms(a['latency_p50_ms'])} / {fmt.ms(a['latency_p95_ms'])}" for a in arms])
    row("cost per call", [fmt.usd(a["cost_per_call_usd"]) for a in arms])
    row("error rate", [value("error_rate", a["error_rate"]) for a in arms])
    row("tokens per call", [f"{a['tokens_per_call']:.0f}" if a["tokens_per_call"] is not None else "-"
                            for a in arms])  # fmt: skip
    progress = []
    for a in arms:
        n = sample(results, a["name"], metric)
        colour = palette.ok if n >= minimum else palette.warning
        bar = usage_bar(min(n, minimum), 0.0, minimum, bar_width, BarColours(colour, colour, palette.muted))
        progress.append(Text.assemble(bar, f" {n:,}/{minimum:,}"))
    row(f"sample ({metric})", progress)
    return table


def named_note(note: str, results: dict[str, Any], compared: dict[str, Any]) -> str:
    """The daemon's note with `a` and `b` said as the arms' names, and without the always-valid p it
    quotes (a column of its own)."""
    note = re.sub(r" \(always-valid p [^)]*\)", "", note)
    for side, name in (("a", results["arms"][0]["name"]), ("b", _arm_of(results, compared))):
        if note.startswith(f"{side} wins"):
            return name + note[1:]
    return note


def comparison_cells(results: dict[str, Any], compared: dict[str, Any], palette: Palette,
                     order: list[str]) -> list[Text]:  # fmt: skip
    metric, arm = compared["metric"], _arm_of(results, compared)
    primary = metric == results["metric"]
    effect = signed(metric, compared["effect"])
    if compared["effect_interval"]:
        effect += " " + interval(metric, compared["effect_interval"], signed)
    winner = compared["winner"]
    note_style = palette.ok if winner == arm else palette.error if winner else palette.muted
    decisive = compared["always_valid_p"] is not None and compared["significant"]
    return [
        Text(arm, style=palette.of(arm, order)),
        Text(metric + (" ◆" if primary else ""), style="bold" if primary else ""),
        Text(compared["test"], style=palette.muted, no_wrap=True, overflow="ellipsis"),
        Text(value(metric, compared["estimate_a"]), justify="right"),
        Text(value(metric, compared["estimate_b"]), justify="right"),
        Text(effect, justify="right"),
        Text(p_text(compared["p_value"]), justify="right", style=palette.muted),
        Text(p_text(compared["always_valid_p"]), justify="right", style="bold" if decisive else ""),
        Text(named_note(compared["note"], results, compared), style=note_style, no_wrap=True,
             overflow="ellipsis"),
    ]  # fmt: skip


def verdict_markup(data: dict[str, Any]) -> str:
    """The answer the experiment is for (Textual markup): who wins on its metric, or not yet and why."""
    results = data["results"]
    label = results["metric_label"]
    if data["state"] == "promoted" and data["winner"]:
        version = next(a["version"] for a in data["arms"] if a["name"] == data["winner"])
        return (f"[b $success]✔ promoted {data['winner']}[/]: {data['label']} points at "
                f"{data['prompt']} v{version}")  # fmt: skip
    if results["winner"]:
        decisive = [c for c in results["comparisons"] if c["metric"] == results["metric"] and c["winner"]]
        why = named_note(decisive[0]["note"], results, decisive[0]) if decisive else results["verdict"]
        why = why.removeprefix(f"{results['winner']} wins").lstrip(": ")
        return f"[b $success]✔ {results['winner']} wins[/] on {label}" + (f": {why}" if why else "")
    reasons = [
        f"{_arm_of(results, c)}: {c['note'].removeprefix('not yet: ')}"
        for c in results["comparisons"] if c["metric"] == results["metric"]
    ]  # fmt: skip
    if data["state"] == "stopped":
        return f"[$text-muted]■ stopped without a winner on {label}[/]"
    return f"[b $warning]not yet[/] on {label}: " + ("; ".join(reasons) or "no calls yet")


# -- over time ---------------------------------------------------------------------------------------


def scale(metric: str, series: list[dict[str, Any]], arms: list[str]) -> tuple[float, float]:
    """The range a metric's sparkline spans: stars 1-5, rates 0-1, money and time from 0 to the most."""
    if metric == "rating":
        return 1.0, 5.0
    if metric in PROPORTIONS:
        return 0.0, 1.0
    seen = [point[arm] for point in series for arm in arms if point.get(arm) is not None]
    return 0.0, max(seen) if seen else 1.0


def spark(values: list[float | None], low: float, high: float) -> str:
    """One cell per bucket, as tall as the value within [low, high]; `·` where the arm had no value."""
    span = high - low or 1.0
    cells = []
    for v in values:
        if v is None:
            cells.append("·")
        else:
            cells.append(SPARKS[max(1, min(8, round((v - low) / span * 8)))])
    return "".join(cells)


def fold(values: list[float | None], columns: int) -> list[float | None]:
    """Average adjacent buckets so that at most `columns` remain."""
    if columns <= 0 or len(values) <= columns:
        return values
    per = -(-len(values) // columns)
    out: list[float | None] = []
    for i in range(0, len(values), per):
        seen = [v for v in values[i : i + per] if v is not None]
        out.append(sum(seen) / len(seen) if seen else None)
    return out


def series_rows(data: dict[str, Any], width: int) -> list[tuple[str, str, str]]:
    """Per arm: (name, sparkline of the primary metric per bucket, its overall value)."""
    results = data["results"]
    arms = arm_order(data)
    low, high = scale(results["metric"], results["series"], arms)
    overall = {c["name"]: c for c in results["arms"]}
    key = OVERALL.get(results["metric"], "")
    rows = []
    for arm in arms:
        values = [point.get(arm) for point in results["series"]]
        figure = overall.get(arm, {}).get(key)
        rows.append((arm, spark(fold(values, width), low, high), value(results["metric"], figure)))
    return rows


# -- history -----------------------------------------------------------------------------------------


def stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def transition_cells(transition: dict[str, Any], palette: Palette) -> list[Text]:
    arms = transition["arms"] or []
    total = sum(a["weight"] for a in arms) or 1.0
    split = " · ".join(f"{a['name']} {percent(a['weight'] / total)}" for a in arms)
    moved = f"{transition['from']} → {transition['to']}" if transition["from"] != "-" else transition["to"]
    return [
        Text(stamp(transition["at"]), style=palette.muted),
        Text(transition["action"], style="bold"),
        Text(moved),
        Text(transition["by"] or "-"),
        Text(split, style=palette.muted, no_wrap=True, overflow="ellipsis"),
        Text(transition["note"] or "", no_wrap=True, overflow="ellipsis"),
    ]


def shadows_text(shadows: list[dict[str, Any]]) -> str:
    """`concise: 12 copies, 1 failed, mean 420ms, $0.0012` per arm copied to in shadow."""
    parts = []
    for s in shadows:
        failed = f", {s['errors']:,} failed" if s["errors"] else ""
        parts.append(f"{s['arm']}: {s['calls']:,} cop{'ies' if s['calls'] != 1 else 'y'}{failed}, "
                     f"mean {fmt.ms(s['mean_latency_ms'])}, {fmt.usd(s['cost_usd'])}")  # fmt: skip
    return " · ".join(parts)


def can(action: str, state: str) -> bool:
    return state in ALLOWED.get(action, ())


def share_problem(text: str) -> str | None:
    """Why `text` is not a ramp's share in percent (between 0 and 100, both excluded), or None."""
    try:
        number = float(text.rstrip("%").strip())
    except ValueError:
        return "A percent, e.g. 50."
    if not 0 < number < 100:
        return "Between 0 and 100 (100 % is a promotion, 0 % a stop)."
    return None
