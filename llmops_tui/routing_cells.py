"""How routing reads in the console: each route's split by served model and by tier as bars, its
rates, the shares per model over time as sparkline rows, the circuit breakers' cells and the shadow
comparisons' cells. Pure functions over /admin/routing's JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.markup import escape

from llmops_tui import format as fmt
from llmops_tui.widgets.usage_bar import BarColours, usage_bar

SPARKS = " ▁▂▃▄▅▆▇█"
MIN_FLEX = 10  # a column of long text cut narrower says too little
EMPTY_BUCKET = "·"  # a bucket without any call to the route: no share to show
STATE_MARKS = {"closed": "● closed", "open": "✖ OPEN", "half_open": "◐ HALF-OPEN"}
ROUTE_COLUMNS = ("route", "strategy", "calls", "errors", "cost", "escalated", "fell back", "served by")
BREAKER_COLUMNS = ("model", "provider", "circuit", "failures", "opened", "probe in", "p50", "p95", "samples")
SHADOW_COLUMNS = ("time", "route", "served", "answer", "latency", "cost", "shadow", "answer", "latency",
                  "cost", "same")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Palette:
    """The theme's colours, as Rich styles: table cells are Rich text, not Textual markup. `models`
    colour each model the same everywhere on the screen."""

    models: tuple[str, ...]
    ok: str
    warning: str
    error: str
    muted: str

    def of(self, model: str, order: list[str]) -> str:
        index = order.index(model) if model in order else len(order)
        return self.models[index % len(self.models)]


def shares(counts: dict[str, int]) -> list[tuple[str, int, float]]:
    """(name, calls, share of the calls), the most used first."""
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(name, calls, calls / total if total else 0.0) for name, calls in ordered]


def model_order(routes: list[dict[str, Any]]) -> list[str]:
    """Every model in the order it is first named (configured, then served): whose colour is whose."""
    order: list[str] = []
    for route in routes:
        for name in [*route["configured"], *route["models"]]:
            if name not in order:
                order.append(name)
    return order


def served_summary(route: dict[str, Any], palette: Palette, order: list[str]) -> Text:
    """`cheap 67% · mid 33%`, each model in its colour."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for n, (name, _, share) in enumerate(shares(route["models"])):
        if n:
            text.append(" · ", palette.muted)
        text.append(name, palette.of(name, order))
        text.append(f" {share:.0%}")
    if not route["models"]:
        text.append("no calls", palette.muted)
    return text


def rate(route: dict[str, Any], key: str) -> str:
    """A rate as a percent with its count; `-` where it cannot apply (no calls; escalation outside a
    cascade)."""
    value = route.get(f"{key}_rate")
    if value is None or (key == "escalation" and route["strategy"] != "cascade" and not route["escalated"]):
        return "-"
    count = route["escalated" if key == "escalation" else "fell_back"]
    return f"{value:.0%} ({count})" if count else "0%"


def route_cells(route: dict[str, Any], palette: Palette, order: list[str]) -> list[Text]:
    errors = Text(f"{route['errors']:,}", style=palette.error if route["errors"] else "", justify="right")
    strategy = route["strategy"] or "(removed)"
    return [
        Text(route["name"], style="bold"),
        Text(strategy, style=palette.muted if route["strategy"] is None else ""),
        Text(f"{route['calls']:,}", justify="right"),
        errors,
        Text(fmt.usd(route["cost_usd"]), justify="right"),
        Text(rate(route, "escalation"), justify="right"),
        Text(rate(route, "fallback"), justify="right"),
        served_summary(route, palette, order),
    ]


def share_lines(
    counts: dict[str, int], width: int, palette: Palette, order: list[str], coloured: bool = True
) -> list[tuple[str, Text, str]]:
    """(name, bar, `67%  4`) per model or tier, the most used first; tiers (`coloured` False) are
    all one colour, since they are not models."""
    lines = []
    for name, calls, share in shares(counts):
        colour = palette.of(name, order) if coloured else palette.models[0]
        bar = usage_bar(share, 0.0, 1.0, width, BarColours(colour, colour, palette.muted))
        lines.append((name, bar, f"{share:>4.0%} {calls:>5,}"))
    return lines


def bucket_count(data: dict[str, Any]) -> int:
    return max(1, int(round((data["until"] - data["since"]) / data["bucket_seconds"])))


def timeline(data: dict[str, Any], route: str) -> dict[str, list[float | None]]:
    """Per served model of `route`, its share of the route's calls in each bucket of the window
    (None: the route had no call in that bucket)."""
    size = bucket_count(data)
    totals = [0] * size
    calls: dict[str, list[int]] = {}
    for point in data["series"]:
        if point["route"] != route:
            continue
        index = int((point["t"] - data["since"]) // data["bucket_seconds"])
        if not 0 <= index < size:
            continue
        model = point["model"] or "(none)"
        calls.setdefault(model, [0] * size)[index] += point["calls"]
        totals[index] += point["calls"]
    return {
        model: [n / totals[i] if totals[i] else None for i, n in enumerate(counts)]
        for model, counts in sorted(calls.items(), key=lambda item: -sum(item[1]))
    }


def spark(values: list[float | None]) -> str:
    """One cell per bucket: a block as tall as the share (a sliver for any share above 0), `·` where
    the route had no call, blank where it had calls but none to this model."""
    cells = []
    for value in values:
        if value is None:
            cells.append(EMPTY_BUCKET)
        else:
            eighths = round(value * 8)
            cells.append(SPARKS[max(eighths, 1) if value > 0 else 0])
    return "".join(cells)


def fold(values: list[float | None], columns: int) -> list[float | None]:
    """Average adjacent buckets so that at most `columns` remain (buckets without calls ignored)."""
    if columns <= 0 or len(values) <= columns:
        return values
    per = -(-len(values) // columns)
    folded: list[float | None] = []
    for i in range(0, len(values), per):
        seen = [v for v in values[i : i + per] if v is not None]
        folded.append(sum(seen) / len(seen) if seen else None)
    return folded


def breaker_cells(breaker: dict[str, Any], palette: Palette, elapsed: float = 0.0) -> list[Text]:
    """One model's circuit: its state marked so an open one stands out, the seconds until it lets a
    probe through (`elapsed`: seconds since the daemon answered), its live latencies. Its last error
    is too long for a cell: breaker_notes says it in full below the table."""
    state = breaker["state"]
    style = {"open": f"bold {palette.error}", "half_open": f"bold {palette.warning}"}.get(state, palette.ok)
    if not breaker["enabled"]:
        style = palette.muted
    probe = "-"
    if state == "open" and breaker["retry_in_s"] is not None:
        left = max(0.0, breaker["retry_in_s"] - elapsed)
        probe = fmt.duration(left) if left >= 1 else "next call"  # the next call to it probes
    elif state == "half_open":
        probe = "probing"
    failures = breaker["failures"]
    return [
        Text(breaker["model"], style="bold"),
        Text(breaker["provider"], style=palette.muted),
        Text(STATE_MARKS.get(state, state), style=style),
        Text(f"{failures:,}", style=palette.error if failures else "", justify="right"),
        Text(f"{breaker['opened']:,}", justify="right"),
        Text(probe, justify="right"),
        Text(fmt.ms(breaker["p50_ms"]), justify="right"),
        Text(fmt.ms(breaker["p95_ms"]), justify="right"),
        Text(f"{breaker['samples']:,}", justify="right"),
    ]


def breaker_notes(breakers: list[dict[str, Any]]) -> list[str]:
    """Each circuit not closed, with its last error in full and since when (Textual markup)."""
    notes = []
    for breaker in breakers:
        if breaker["state"] == "closed":
            continue
        mark = STATE_MARKS.get(breaker["state"], breaker["state"]).split()[0]
        colour = "$error" if breaker["state"] == "open" else "$warning"
        since = f" since {fmt.clock(breaker['changed_at'])}" if breaker["changed_at"] else ""
        error = f": {escape(breaker['last_error'])}" if breaker["last_error"] else ""
        notes.append(f"[b {colour}]{mark} {escape(breaker['model'])}[/]{since}{error}")
    return notes


def same_answer(shadow: dict[str, Any]) -> bool | None:
    """Whether the shadow answered as the served model did (whitespace aside); None: one has no
    answer (an error, or a trace no longer kept)."""
    served, candidate = shadow["served_response"], shadow["shadow_response"]
    if served is None or candidate is None:
        return None
    return " ".join(served.split()) == " ".join(candidate.split())


def one_line(text: str | None, empty: str = "-") -> str:
    return " ".join(text.split()) if text else empty


def shadow_cells(shadow: dict[str, Any], palette: Palette, order: list[str]) -> list[Text]:
    """A shadow call beside the answer served: each model, its answer on one line, latency, cost."""
    failed = shadow["shadow_status"] != "ok"
    answer = (
        Text(
            one_line(shadow["shadow_error"], "failed"), style=palette.error, no_wrap=True, overflow="ellipsis"
        )
        if failed
        else Text(one_line(shadow["shadow_response"]), no_wrap=True, overflow="ellipsis")
    )
    same = same_answer(shadow)
    verdict = Text("-", style=palette.muted)
    if same is not None:
        verdict = Text("=", style=palette.ok) if same else Text("≠", style=f"bold {palette.warning}")
    served = shadow["served_model"] or "(trace gone)"
    return [
        Text(fmt.clock(shadow["ts"]), style=palette.muted),
        Text(shadow["route"]),
        Text(served, style=palette.of(served, order)),
        Text(one_line(shadow["served_response"]), no_wrap=True, overflow="ellipsis"),
        Text(fmt.ms(shadow["served_latency_ms"]), justify="right"),
        Text(fmt.usd(shadow["served_cost_usd"]), justify="right"),
        Text(shadow["shadow_model"], style=palette.of(shadow["shadow_model"], order)),
        answer,
        Text(fmt.ms(shadow["shadow_latency_ms"]), justify="right"),
        Text(fmt.usd(shadow["shadow_cost_usd"]), justify="right"),
        verdict,
    ]


def shadow_totals_text(totals: list[dict[str, Any]]) -> str:
    """`mirrored → shadowy 5 calls, 1 failed, $0.0010, mean 1.0s`, one per route and shadow model."""
    parts = []
    for total in totals:
        failed = f", {total['errors']:,} failed" if total["errors"] else ""
        parts.append(
            f"{total['route']} → {total['model']} {total['calls']:,} call{'s' * (total['calls'] != 1)}"
            f"{failed}, {fmt.usd(total['cost_usd'])}, mean {fmt.ms(total['mean_latency_ms'])}"
        )
    return " · ".join(parts)


def fit_columns(
    headers: tuple[str, ...],
    rows: list[list[Text]],
    room: int,
    flexible: set[int],
    optional: tuple[int, ...],
    min_flex: int = MIN_FLEX,
) -> tuple[list[int], list[int]]:
    """Which columns to keep, and their widths, so that a table fits `room` cells: the `flexible`
    columns (long text) share what the others leave, at least `min_flex` each; the `optional` ones
    are left out, in that order, until they do. DataTable pads each column with a cell either side."""

    def natural(index: int) -> int:
        cells = [cell_len(row[index].plain) for row in rows]
        return max([cell_len(headers[index]), *cells])

    kept: list[int] = list(range(len(headers)))
    for dropped in range(len(optional) + 1):
        kept = [i for i in range(len(headers)) if i not in optional[:dropped]]
        fixed = sum(natural(i) for i in kept if i not in flexible) + 2 * len(kept)
        flex = [i for i in kept if i in flexible]
        left = room - fixed
        if left >= min_flex * len(flex) or dropped == len(optional):
            widths = {i: natural(i) for i in kept}
            if flex:
                # Even without the optional columns: as narrow as it takes, down to MIN_FLEX.
                share = max(left // len(flex), min_flex if left >= min_flex * len(flex) else MIN_FLEX)
                spare = sum(max(share - widths[i], 0) for i in flex)  # what short ones leave to long ones
                for i in flex:
                    widths[i] = min(widths[i], share + spare) if widths[i] > share else widths[i]
                    spare -= max(widths[i] - share, 0)
            return kept, [widths[i] for i in kept]
    return kept, []  # unreachable: the last round always returns
