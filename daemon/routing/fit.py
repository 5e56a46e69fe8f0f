"""Fit the complexity scorer (daemon/core/complexity.py) and validate it with whole groups held out.

Rows are `{"prompt", "weak_correct", "strong_correct"}` plus an optional `subject` (or `group`);
validation is grouped k-fold: every fold's model is fitted without any prompt of the held-out
subjects, so the figures say how the scorer does on topics it never saw, which is what another
routing set will be. Rows without a group get one of `HASH_GROUPS` groups by a hash of the prompt,
so cross-validation still works (as a plain k-fold).

The target is `strong_correct - weak_correct` (+1 only the strong model was right, -1 only the weak
one), fitted by ridge regression on standardized, clipped features: APGR only rewards sending the
+1 prompts first and the -1 prompts last (a `P(weak wrong)` logistic model, which also pushes up
prompts both models fail, scored 0.57 held out against the gap target's 0.64). Two guards for
other routing sets than the one fitted on:

- Signs. Length, number, math, code, reasoning, multi-part, negation and option cues may only
  push a prompt towards the strong model (`NON_NEGATIVE`). On MMLU, math prompts gain less from
  the strong model (its high-school mathematics is broken: GPT-4 scores 3 % there), and a free fit
  learns "math goes to the weak model", the opposite of what GSM8K-like sets show.
- Labels. A group (of at least `SUSPECT_MIN_ROWS`) where the strong model does clearly worse than
  the weak one (by `SUSPECT_GAP`) has broken labels, not hard prompts: MMLU's high-school
  mathematics (GPT-4 3 %, below chance) is one. Such groups are left out of fitting, never out of
  the evaluation; with them out, math word problems are no longer learnt as "weak model" prompts.
- Format. Every training prompt is used twice: as it is and without its options
  (`without_options`), with the same label, so the weights cannot lean on the multiple-choice
  layout alone; held out, the option-free prompts are scored as a check (`stems` in the report).

The held-out scores of each fold are calibrated by that fold's own training quantiles, as the
shipped model is, and pooled over the folds for the headline figures; per-fold APGRs give the spread.

Pure apart from `load_rows` and `write`; numpy and the standard library.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from daemon.core.complexity import CLIP, FEATURE_NAMES, ComplexityModel, features, without_options
from daemon.core.router_metrics import Summary, apgr, summarize

HASH_GROUPS = 50
RIDGE = 10.0  # L2 penalty (rows are ~14k; it only matters for rare features)
KNOTS = 101
SUSPECT_MIN_ROWS, SUSPECT_GAP = 30, 0.15
NON_NEGATIVE = frozenset(
    ("log_chars", "log_words", "digit_share", "numbers", "math_symbol_share", "code", "calc_cues")
    + ("why_cues", "qualifier_cues", "question_marks", "multi_part", "loud_negation", "negation")
    + ("numeric_options", "judgement_pair_options", "all_none_option")
)


@dataclass(frozen=True)
class Rows:
    prompts: list[str]
    weak: np.ndarray  # bool
    strong: np.ndarray  # bool
    groups: list[str]


@dataclass
class Report:
    folds: int
    rows: int
    groups: int
    held_out: dict[str, Summary]  # router -> pooled held-out summary (scorer, random, length)
    stems: dict[str, Summary]  # the same on the held-out prompts without their options
    fold_apgr: dict[str, list[float]] = field(default_factory=dict)  # router -> APGR per fold
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # router -> held-out score per row


def load_rows(path: Path | str) -> Rows:
    prompts, weak, strong, groups = [], [], [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            prompts.append(str(row["prompt"]))
            weak.append(bool(row["weak_correct"]))
            strong.append(bool(row["strong_correct"]))
            group = row.get("subject") or row.get("group")
            groups.append(str(group) if group is not None else hash_group(prompts[-1]))
    return Rows(prompts, np.array(weak), np.array(strong), groups)


def hash_group(prompt: str) -> str:
    """A group for a row that has none: cross-validation then holds out prompts, not subjects."""
    digest = hashlib.blake2b(prompt.encode(), digest_size=4).digest()
    return f"hash-{int.from_bytes(digest, 'big') % HASH_GROUPS}"


def group_folds(groups: list[str], folds: int, seed: int) -> np.ndarray:
    """A fold number per row; whole groups per fold, shuffled by `seed`, balanced by row count."""
    names, counts = np.unique(np.array(groups), return_counts=True)
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(names))
    # biggest groups first (stable over the shuffle), each into the emptiest fold so far
    placed = shuffled[np.argsort(-counts[shuffled], kind="stable")]
    load, fold_of = np.zeros(folds), {}
    for g in placed:
        f = int(np.argmin(load))
        fold_of[names[g]] = f
        load[f] += counts[g]
    return np.array([fold_of[g] for g in groups])


def feature_matrix(prompts: Iterable[str]) -> np.ndarray:
    return np.array([features(p) for p in prompts])


def standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(0)
    scale = x.std(0)
    return mean, np.where(scale > 1e-9, scale, 1.0)  # a constant feature stays 0 after scaling


def _z(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    z: np.ndarray = np.clip((x - mean) / scale, -CLIP, CLIP)
    return z


def ridge(
    z: np.ndarray, y: np.ndarray, penalty: float = RIDGE, non_negative: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Ridge regression; weights flagged in `non_negative` are kept >= 0 (coordinate descent)."""
    zc, yc = z - z.mean(0), y - y.mean()
    a = zc.T @ zc + penalty * np.eye(z.shape[1])
    c = zc.T @ yc
    w = np.linalg.solve(a, c)
    if non_negative is not None and non_negative.any():
        w = np.zeros(len(c))
        for _ in range(500):  # the problem is a small convex QP: sweeps converge to its optimum
            before = w.copy()
            for i in range(len(w)):
                w[i] = (c[i] - a[i] @ w + a[i, i] * w[i]) / a[i, i]
                if non_negative[i] and w[i] < 0:
                    w[i] = 0.0
            if np.abs(w - before).max() < 1e-10:
                break
    return w, float(y.mean() - z.mean(0) @ w)


def logistic(
    z: np.ndarray, y: np.ndarray, penalty: float = RIDGE, steps: int = 25
) -> tuple[np.ndarray, float]:
    """L2-penalized logistic regression by Newton's method (the bias is not penalized); kept for
    the comparison in the docstring: `P(weak wrong)` ranks worse than the gap target."""
    a = np.hstack([z, np.ones((len(z), 1))])
    w = np.zeros(a.shape[1])
    reg = np.full(a.shape[1], penalty)
    reg[-1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(a @ w)))
        grad = a.T @ (p - y) + reg * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def model_from(x: np.ndarray, stems: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> ComplexityModel:
    """Fit on the prompts and their option-free copies; calibrate on the prompts as they are."""
    both = np.vstack([x, stems])
    mean, scale = standardize(both)
    gap = strong.astype(float) - weak.astype(float)
    signs = np.array([name in NON_NEGATIVE for name in FEATURE_NAMES])
    w, b = ridge(_z(both, mean, scale), np.concatenate([gap, gap]), non_negative=signs)
    knots = np.quantile(_z(x, mean, scale) @ w + b, np.linspace(0, 1, KNOTS))
    return ComplexityModel(
        names=FEATURE_NAMES,
        mean=tuple(mean.tolist()),
        scale=tuple(scale.tolist()),
        weights=tuple(w.tolist()),
        bias=b,
        quantiles=tuple(np.maximum.accumulate(knots).tolist()),
        metrics={},
    )


def scores_of(model: ComplexityModel, x: np.ndarray) -> np.ndarray:
    """`model.score` for precomputed feature rows (vectorized; equal to scoring each text)."""
    z = _z(x, np.array(model.mean), np.array(model.scale))
    raw = z @ np.array(model.weights) + model.bias
    return np.array([model.calibrate(float(r)) for r in raw])


def cross_validate(
    x: np.ndarray, stems: np.ndarray, rows: Rows, folds: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out calibrated scores for every row (as it is, and without options), and each row's fold."""
    fold = group_folds(rows.groups, folds, seed)
    held, held_stems = np.zeros(len(x)), np.zeros(len(x))
    for f in range(folds):
        test = fold == f
        train = ~test & trusted(rows, ~test)
        model = model_from(x[train], stems[train], rows.weak[train], rows.strong[train])
        held[test] = scores_of(model, x[test])
        held_stems[test] = scores_of(model, stems[test])
    return held, held_stems, fold


def trusted(rows: Rows, among: np.ndarray) -> np.ndarray:
    """The rows not in a group whose labels look broken (see the module's docstring), judged on the
    rows `among` (a fold's training rows: the held-out labels are never looked at)."""
    groups = np.asarray(rows.groups)
    keep = np.ones(len(groups), dtype=bool)
    for group in np.unique(groups[among]):
        members = (groups == group) & among
        if members.sum() >= SUSPECT_MIN_ROWS and (
            rows.strong[members].mean() < rows.weak[members].mean() - SUSPECT_GAP
        ):
            keep &= groups != group
    return keep


def _fold_apgr(scores: np.ndarray, rows: Rows, fold: np.ndarray) -> list[float]:
    out = []
    for f in np.unique(fold):
        m = fold == f
        gap = rows.strong[m].mean() - rows.weak[m].mean()
        out.append(apgr(scores[m], rows.weak[m], rows.strong[m]) if gap > 0 else float("nan"))
    return out


def fit(rows: Rows, folds: int = 5, seed: int = 0) -> tuple[ComplexityModel, Report]:
    """Validate with whole groups held out, then refit on all rows (the model to ship)."""
    x = feature_matrix(rows.prompts)
    stems = feature_matrix(without_options(p) for p in rows.prompts)
    held, held_stems, fold = cross_validate(x, stems, rows, folds, seed)
    random = np.random.default_rng(seed).random(len(x))
    routers = {"complexity scorer": held, "random": random, "prompt length": x[:, 0]}
    stem_routers = {"complexity scorer": held_stems, "random": random, "prompt length": stems[:, 0]}
    report = Report(
        folds=folds,
        rows=len(x),
        groups=len(set(rows.groups)),
        held_out={k: summarize(v, rows.weak, rows.strong) for k, v in routers.items()},
        stems={k: summarize(v, rows.weak, rows.strong) for k, v in stem_routers.items()},
        fold_apgr={k: _fold_apgr(v, rows, fold) for k, v in routers.items()},
        scores=routers,
    )
    train = trusted(rows, np.ones(len(x), dtype=bool))
    model = model_from(x[train], stems[train], rows.weak[train], rows.strong[train])
    s = report.held_out["complexity scorer"]
    metrics: dict[str, Any] = {
        "rows": len(x),
        "groups": report.groups,
        "folds": folds,
        "seed": seed,
        "held_out_apgr": round(s.apgr, 4),
        "held_out_cpt": {"50": round(s.cpt50, 4), "80": round(s.cpt80, 4), "95": round(s.cpt95, 4)},
        "held_out_apgr_without_options": round(report.stems["complexity scorer"].apgr, 4),
    }
    return replace(model, metrics=metrics), report


def write(model: ComplexityModel, path: Path | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model.to_dict(), indent=1) + "\n")


def format_report(report: Report) -> str:
    lines = [
        f"{report.rows} rows, {report.groups} groups, {report.folds} folds with whole groups held out",
        f"{'router':<31} {'APGR':>6} {'CPT50':>6} {'CPT80':>6} {'CPT95':>6}   APGR per fold",
    ]
    for label, table in (("", report.held_out), (", no options", report.stems)):
        for name, s in table.items():
            per_fold = " ".join(f"{v:.2f}" for v in report.fold_apgr.get(name, [])) if not label else ""
            cpts = f"{s.cpt50:>6.1%} {s.cpt80:>6.1%} {s.cpt95:>6.1%}"
            lines.append(f"{name + label:<31} {s.apgr:>6.3f} {cpts}   {per_fold}".rstrip())
    return "\n".join(lines)
