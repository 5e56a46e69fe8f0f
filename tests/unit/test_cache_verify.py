"""The semantic cache's verifier (daemon/cache/verify.py): its mechanics on tiny fixed vectors, the
shipped parameter file, and (marked `model`) its operating point on held-out QQP pairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from daemon.cache.verify import DEFAULT_PATH, Verifier


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, np.float32)
    return vector / np.linalg.norm(vector)


# Four dimensions: 0 = the topic, 1 = wording (how the question is phrased), 2 = the detail that
# makes it another question (a place, a number), 3 = noise. The map keeps the topic, shrinks the
# wording and stretches the detail: what metric learning on QQP does, in miniature.
TINY = Verifier(
    np.diag([1.0, 0.2, 3.0, 1.0]).astype(np.float32), threshold=0.9, prefilter=0.5, embedder="tiny"
)
QUESTION = unit(1.0, 0.0, 0.0, 0.1)
REWORDED = unit(1.0, 0.45, 0.0, 0.1)  # a duplicate: same topic and detail, other words
OTHER_DETAIL = unit(1.0, 0.0, 0.25, 0.1)  # a hard negative: same words, another detail


def score(verifier: Verifier, query: np.ndarray, entry: np.ndarray, cosine: float | None = None) -> float:
    cosines = np.array([float(query @ entry) if cosine is None else cosine], np.float32)
    return float(verifier.score_many(query, entry[None, :], cosines)[0])


def test_a_duplicate_scores_above_a_hard_negative_that_plain_cosine_prefers() -> None:
    assert float(QUESTION @ OTHER_DETAIL) > float(QUESTION @ REWORDED)  # cosine gets it wrong
    duplicate, negative = score(TINY, QUESTION, REWORDED), score(TINY, QUESTION, OTHER_DETAIL)
    assert duplicate > negative
    assert duplicate >= TINY.threshold > negative


def test_below_the_prefilter_a_candidate_is_never_accepted() -> None:
    far = unit(0.0, 0.0, 0.0, 1.0)
    assert score(TINY, QUESTION, far) == -1.0
    assert score(TINY, QUESTION, QUESTION, cosine=0.49) == -1.0  # only the cosine decides this


def test_scoring_many_at_once_agrees_with_scoring_one_by_one() -> None:
    entries = np.stack([REWORDED, OTHER_DETAIL, QUESTION])
    one_by_one = [score(TINY, QUESTION, entry) for entry in entries]
    np.testing.assert_allclose(TINY.score_many(QUESTION, entries, entries @ QUESTION), one_by_one, atol=1e-6)
    assert abs(one_by_one[2] - 1.0) < 1e-6  # the same question


def test_project_normalises() -> None:
    projected = TINY.project(np.stack([QUESTION, REWORDED]))
    np.testing.assert_allclose(np.linalg.norm(projected, axis=1), 1.0, atol=1e-6)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    TINY.save(path)
    loaded = Verifier.load(path)
    np.testing.assert_array_equal(loaded.projection, TINY.projection)
    assert (loaded.threshold, loaded.prefilter, loaded.embedder) == (0.9, 0.5, "tiny")
    assert score(loaded, QUESTION, REWORDED) == score(TINY, QUESTION, REWORDED)


def test_a_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a cache verifier"):
        Verifier.load(path)


def test_the_shipped_parameters_load() -> None:
    verifier = Verifier.load(DEFAULT_PATH)
    assert verifier.projection.shape == (384, 384) and verifier.projection.dtype == np.float32
    assert np.isfinite(verifier.projection).all()
    assert 0.5 <= verifier.prefilter < verifier.threshold < 1.0
    assert verifier.embedder == "all-MiniLM-L6-v2"
    assert DEFAULT_PATH.stat().st_size < 2_000_000
    rng = np.random.default_rng(1)
    a, b = (unit(*rng.standard_normal(384)) for _ in range(2))
    assert score(verifier, a, b) == score(verifier, a, b)


@pytest.mark.model
@pytest.mark.shared
def test_the_shipped_operating_point_on_held_out_qqp_pairs() -> None:
    """Pairs of the verifier's test fold (it never saw them, nor their questions): at its threshold,
    few hard negatives pass, and it keeps at least as many duplicates as cosine does at the
    cosine threshold that lets through as many hard negatives."""
    from tests.daemon_process import local_package, shared_path

    local_package("all_minilm_l6_v2")
    folder = shared_path("data", "semantic-cache")
    verifier = Verifier.load(DEFAULT_PATH)
    rows = verifier.metrics["test_sample_rows"]
    all_dup = json.loads((folder / "qqp_duplicates.json").read_text())
    all_neg = json.loads((folder / "qqp_hard_negatives.json").read_text())
    dup = [all_dup[i] for i in rows["qqp_duplicates"]]
    neg = [all_neg[i] for i in rows["qqp_hard_negatives"]]

    from llama_cpp import Llama

    from daemon.providers.model_files import resolve_model_path

    llm = Llama(
        model_path=str(resolve_model_path("minilm", "package:all-minilm-l6-v2")),
        embedding=True,
        n_ctx=512,
        verbose=False,
    )

    def embed(texts: list[str]) -> np.ndarray:
        vectors = np.array([np.asarray(v, np.float32) for v in llm.embed(texts)])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    d_a, d_b = embed([r["origin"] for r in dup]), embed([r["similar"] for r in dup])
    n_a, n_b = embed([r["origin"] for r in neg]), embed([r["other"] for r in neg])
    d_cos, n_cos = (d_a * d_b).sum(1), (n_a * n_b).sum(1)
    d_score = np.array([score(verifier, a, b) for a, b in zip(d_a, d_b, strict=True)])
    n_score = np.array([score(verifier, a, b) for a, b in zip(n_a, n_b, strict=True)])
    false_hits = int((n_score >= verifier.threshold).sum())
    assert false_hits <= 0.015 * len(neg), f"{false_hits} of {len(neg)} hard negatives pass"
    kept = int((d_score >= verifier.threshold).sum())
    assert kept >= 0.05 * len(dup), f"only {kept} of {len(dup)} duplicates pass"
    # cosine, at the threshold that lets through as many of these hard negatives as the verifier
    cos_threshold = np.sort(n_cos)[::-1][false_hits] + 1e-6
    assert kept >= int((d_cos >= cos_threshold).sum()) - 0.03 * len(dup)
