"""The routing complexity scorer (daemon/core/complexity.py), its metrics and its fitting."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from daemon.core.complexity import FEATURE_NAMES, ComplexityModel, default_model, features, without_options
from daemon.core.router_metrics import apgr, cpt, pgr_curve, summarize
from daemon.routing.fit import Rows, fit, format_report, load_rows

# 10 prompts: 2 only the strong model gets right, 1 only the weak one, the rest the same
WEAK = [0, 1, 1, 0, 1, 0, 1, 1, 0, 1]
STRONG = [1, 1, 1, 0, 0, 1, 1, 1, 0, 1]


def test_an_oracle_gets_the_known_apgr_and_cpt() -> None:
    # gap = (7 - 6) / 10 = 0.1; the oracle sends the two strong-only prompts first and the
    # weak-only one last: PGR 1 at 10 %, 2 at 20 %, flat until 90 %, back to 1 at 100 %
    oracle = np.array(STRONG) - np.array(WEAK) + np.arange(10) * 1e-3
    share, pgr = pgr_curve(oracle, WEAK, STRONG)
    assert pgr[0] == 0 and pgr[-1] == pytest.approx(1)
    assert pgr[1:3].tolist() == pytest.approx([1.0, 2.0])
    expected = 0.1 * (0.5 + 1.5) + 0.7 * 2.0 + 0.1 * 1.5
    assert apgr(oracle, WEAK, STRONG) == pytest.approx(expected)
    assert cpt(oracle, WEAK, STRONG, 0.5) == pytest.approx(0.1)
    assert cpt(oracle, WEAK, STRONG, 0.95) == pytest.approx(0.1)
    assert cpt(oracle, WEAK, STRONG, 1.5) == pytest.approx(0.2)
    s = summarize(oracle, WEAK, STRONG)
    assert (s.apgr, s.cpt50, s.cpt80, s.cpt95) == pytest.approx((expected, 0.1, 0.1, 0.1))


def test_a_constant_scorer_is_the_random_diagonal() -> None:
    s = summarize(np.zeros(10), WEAK, STRONG)
    assert s.apgr == pytest.approx(0.5)
    assert (s.cpt50, s.cpt80, s.cpt95) == pytest.approx((0.5, 0.8, 0.95), abs=0.051)


def test_ties_are_order_independent() -> None:
    scores = np.array([1, 1, 0, 0, 1, 0, 1, 1, 0, 0], dtype=float)
    perm = np.random.default_rng(0).permutation(10)
    a = apgr(scores, WEAK, STRONG)
    assert a == pytest.approx(apgr(scores[perm], np.array(WEAK)[perm], np.array(STRONG)[perm]))


def test_features_are_deterministic_and_bounded_in_cost() -> None:
    text = "Statement 1 | x^2 = 4. Statement 2 | Why is 7 NOT prime?\nA. True, True\nB. False, False\nAnswer:"
    a, b = features(text), features(text)
    assert a.dtype == np.float64 and a.shape == (len(FEATURE_NAMES),)
    assert np.array_equal(a, b)
    named = dict(zip(FEATURE_NAMES, a, strict=True))
    assert named["multi_part"] > 0 and named["loud_negation"] > 0 and named["judgement_pair_options"] == 1.0
    assert features("")[0] == 0.0 and np.isfinite(features("")).all()
    huge = features("Why? 12 + 3 = 15. " * 10_000)
    assert np.isfinite(huge).all() and huge[0] > np.log(150_000)  # length uses the whole text


def test_without_options_keeps_the_question() -> None:
    text = "Which is True here?\nA. True\nB. False\nAnswer:"
    assert without_options(text) == "Which is True here?"
    assert without_options("Explain recursion.") == "Explain recursion."


def _model() -> ComplexityModel:
    n = len(FEATURE_NAMES)
    return ComplexityModel(
        names=FEATURE_NAMES,
        mean=(0.0,) * n,
        scale=(1.0,) * n,
        weights=(1.0,) + (0.0,) * (n - 1),
        bias=0.0,
        quantiles=tuple(np.linspace(2.0, 8.0, 101).tolist()),
        metrics={"note": "test"},
    )


def test_score_is_calibrated_and_monotone_in_the_raw_score() -> None:
    model = _model()
    assert model.calibrate(1.0) == 0.0 and model.calibrate(9.0) == 1.0
    assert model.calibrate(5.0) == pytest.approx(0.5)
    raws = np.linspace(0, 10, 200)
    calibrated = [model.calibrate(r) for r in raws]
    assert all(0.0 <= c <= 1.0 for c in calibrated) and calibrated == sorted(calibrated)
    short, long = model.score("Hi?"), model.score("Explain this. " * 50)
    assert 0.0 <= short < long <= 1.0
    assert model.explain("Explain this.", top=1)[0][0] == "log_chars"


def test_to_dict_from_dict_roundtrip() -> None:
    model = _model()
    assert ComplexityModel.from_dict(model.to_dict()) == model
    with pytest.raises(ValueError):
        ComplexityModel.from_dict({**model.to_dict(), "names": ["other"]})


def test_the_default_model_loads_and_scores() -> None:
    model = default_model()
    assert model is default_model()
    text = "Calculate the integral of x^2 from 0 to 3, and explain each step. " * 15
    start = time.perf_counter()
    scores = [model.score(text) for _ in range(100)]
    elapsed = time.perf_counter() - start
    assert all(0.0 <= s <= 1.0 for s in scores)
    print(f"default model: {elapsed / 100 * 1e6:.0f} us a score")  # reported, not asserted


def test_fit_recovers_a_feature_that_drives_the_label() -> None:
    """Prompts with several statements to judge are the ones only the strong model gets right."""
    rng = np.random.default_rng(0)
    prompts, weak, strong, groups = [], [], [], []
    for i in range(400):
        hard = rng.random() < 0.5
        body = " ".join(
            rng.choice(["cell", "river", "price", "market", "energy"], size=int(rng.integers(5, 30)))
        )
        prompts.append(f"Statement 1 | {body}. Statement 2 | {body}." if hard else f"Is the {body} here?")
        weak.append(not hard or rng.random() < 0.2)
        strong.append(hard or rng.random() < 0.8)
        groups.append(f"g{i % 10}")
    rows = Rows(prompts, np.array(weak), np.array(strong), groups)
    model, report = fit(rows, folds=5, seed=0)
    weights = dict(zip(model.names, model.weights, strict=True))
    assert weights["multi_part"] > 0
    assert report.held_out["complexity scorer"].apgr > 0.8
    assert "complexity scorer" in format_report(report)


@pytest.mark.shared
def test_load_rows_reads_the_shared_routing_set() -> None:
    from tests.daemon_process import shared_path

    rows = load_rows(shared_path("data", "routing", "mmlu_routellm.jsonl"))
    assert len(rows.prompts) == 14042 and len(set(rows.groups)) == 57
    assert 0.6 < rows.weak.mean() < rows.strong.mean() < 0.9


def test_rows_without_a_group_get_hash_groups(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    lines = [f'{{"prompt": "q{i}", "weak_correct": true, "strong_correct": false}}' for i in range(200)]
    path.write_text("\n".join(lines) + "\n")
    rows = load_rows(path)
    assert len(rows.prompts) == 200 and 10 < len(set(rows.groups)) <= 50
    assert all(g.startswith("hash-") for g in rows.groups)
