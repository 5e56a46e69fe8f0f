"""The semantic cache's quality: plain MiniLM cosine beside the verifier, measured in the same run.

1. GPTCache's protocol on `gptcache_mock_data.json` (fill the cache with the 999 `origin`s, ask
   every `similar`; a hit that returns the right one is right, another one wrong, no hit a miss),
   at thresholds 0.95, 0.90 and 0.80, beside GPTCache's published table (albert + FAISS), for
   plain cosine, for the verifier's score at the same thresholds, and at the verifier's default.
2. QQP at the cache level, on the held-out fold the shipped verifier never saw (fold 0, see
   `_semantic_data.py` for the splits and the protocol): the duplicate hit rate (strict = the
   query's own origin; lenient = any labelled duplicate), the wrong-hit rate and the
   hard-negative false-hit rate, as a curve over the threshold for both, then the duplicate hit
   rate of each at equal false-hit rates, then the defaults (cosine 0.95, a common choice;
   0.977, ours without the verifier; the verifier's threshold). The bar: false hits <= 1.5 %;
   the target: 25 % of duplicates.
3. The verifier's own cost per candidate.

Lookup latency (embed, search, verify at 1k/10k/100k entries) is benchmarks/semantic_lookup.py.

    .venv/bin/python benchmarks/semantic_cache.py [--verifier daemon/cache/verifier.json] [--embedder GGUF]

Needs ../shared and the `[local]` MiniLM; the first run embeds the data (cached in benchmarks/.cache/).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the daemon runs numpy (daemon/__init__.py)
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _semantic_data import DATA, Lookups, best, embed_texts, load_qqp, lookups, point, threshold_at, top_k  # noqa: E402

from daemon.cache.semantic import COSINE_THRESHOLD  # noqa: E402
from daemon.cache.verify import DEFAULT_PATH, Verifier  # noqa: E402

TEST_FOLD = 0  # the shipped verifier's test fold (fit_cache_verifier.py)
GPTCACHE_PUBLISHED = {0.95: (425, 25, 549), 0.90: (804, 77, 118), 0.80: (904, 92, 3)}
COMMON_COSINE = 0.95  # GPTCache's and many tutorials' threshold
BAR, TARGET = 0.015, 0.25


def gptcache(verifier: Verifier, model: Path | None) -> None:
    rows = json.loads((DATA / "gptcache_mock_data.json").read_text())
    origins = sorted({r["origin"] for r in rows})
    index = {t: i for i, t in enumerate(origins)}
    entries = embed_texts(origins, model)
    queries = embed_texts([r["similar"] for r in rows], model)
    right_id = np.array([index[r["origin"]] for r in rows])
    cand, cos = top_k(queries, entries)
    projected = (verifier.project(queries)[:, None, :] * verifier.project(entries)[cand]).sum(-1)
    ver = np.where(cos >= verifier.prefilter, projected, -1.0)
    pick = np.argmax(ver, axis=1)
    ver_best, ver_id = ver[np.arange(len(rows)), pick], cand[np.arange(len(rows)), pick]

    def counts(score: np.ndarray, chosen: np.ndarray, threshold: float) -> tuple[int, int, int]:
        hit = score >= threshold
        return (
            int((hit & (chosen == right_id)).sum()),
            int((hit & (chosen != right_id)).sum()),
            int((~hit).sum()),
        )

    print(f"GPTCache mock data ({len(rows)} pairs): right hits / wrong hits / misses")
    print(f"  {'threshold':>9}  {'GPTCache (published)':>22}  {'MiniLM cosine':>16}  {'verifier score':>16}")
    for t, published in GPTCACHE_PUBLISHED.items():
        c, v = counts(cos[:, 0], cand[:, 0], t), counts(ver_best, ver_id, t)
        print(f"  {t:>9.2f}  {triple(published):>22}  {triple(c):>16}  {triple(v):>16}")
    v = counts(ver_best, ver_id, verifier.threshold)
    print(f"  verifier default (score >= {verifier.threshold:.4f}): {triple(v)}")


def triple(counts: tuple[int, int, int]) -> str:
    return " / ".join(str(n) for n in counts)


def qqp_scores(look: Lookups, verifier: Verifier, projected: np.ndarray) -> np.ndarray:
    return (projected[look.query][:, None, :] * projected[look.cand]).sum(-1)


def qqp(verifier: Verifier, model: Path | None) -> None:
    data = load_qqp(model=model)
    dup, neg = lookups(data, TEST_FOLD)
    projected = verifier.project(data.vectors)
    cos_dup, cos_neg = best(dup, dup.cos, -1.0), best(neg, neg.cos, -1.0)[0]
    ver_dup = best(dup, qqp_scores(dup, verifier, projected), verifier.prefilter)
    ver_neg = best(neg, qqp_scores(neg, verifier, projected), verifier.prefilter)[0]
    entries = len(np.unique(data.dup[data.dup_fold == TEST_FOLD][:, 0]))
    print(
        f"\nQQP, held-out fold {TEST_FOLD}: {len(dup.query)} duplicate queries against its {entries} "
        f"origins, "
        f"{len(neg.query)} hard-negative queries (a query equal to an entry is the exact cache's)"
    )
    print("  curve over the threshold (hits strict / lenient, wrong hits, hard-negative false hits):")
    print(f"  {'threshold':>9}  {'cosine':>34}  {'verifier':>34}")
    for t in (0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.975, 0.98, 0.99):
        c, v = point(cos_dup, cos_neg, t), point(ver_dup, ver_neg, t)
        print(f"  {t:>9.3f}  {fmt(c):>34}  {fmt(v):>34}")
    print(
        "  duplicate hits at equal false-hit rates (threshold set on this fold: an oracle, for comparison):"
    )
    for rate in (0.005, 0.01, 0.015, 0.02, 0.025):
        c = point(cos_dup, cos_neg, threshold_at(cos_neg, rate))
        v = point(ver_dup, ver_neg, threshold_at(ver_neg, rate))
        print(
            f"    false hits <= {100 * rate:.1f} %: "
            f"cosine {100 * c.hit:5.1f} % (lenient {100 * c.hit_lenient:5.1f} %)   "
            f"verifier {100 * v.hit:5.1f} % (lenient {100 * v.hit_lenient:5.1f} %)   "
            f"{100 * (v.hit - c.hit):+.1f} points"
        )
    print("  defaults:")
    for cosine, what in ((COMMON_COSINE, "a common choice"), (COSINE_THRESHOLD, "ours without the verifier")):
        c = point(cos_dup, cos_neg, cosine)
        print(f"    cosine >= {cosine} ({what}): {fmt(c)}  {verdict(c)}")
    v = point(ver_dup, ver_neg, verifier.threshold)
    print(
        f"    verifier >= {verifier.threshold:.4f} (set on validation for "
        f"{100 * verifier.metrics.get('target_false_hit', 0):.1f} %): {fmt(v)}  {verdict(v)}"
    )


def fmt(p: object) -> str:
    assert hasattr(p, "hit")
    return (
        f"{100 * p.hit:5.1f} / {100 * p.hit_lenient:5.1f} % {100 * p.wrong:4.1f} % {100 * p.false_hit:5.2f} %"  # type: ignore[attr-defined]
    )


def verdict(p: object) -> str:
    bar = "bar met" if p.false_hit <= BAR else "BAR MISSED"  # type: ignore[attr-defined]
    target = "target met" if p.hit >= TARGET else f"target {100 * TARGET:.0f} % not met"  # type: ignore[attr-defined]
    return f"[{bar}; {target}]"


def verifier_cost(verifier: Verifier, candidates: int = 10, rounds: int = 2000) -> None:
    """What rescoring costs a lookup: the profile's default is 10 candidates."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((candidates + 1, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = np.full(candidates, 0.9, np.float32)
    for _ in range(100):
        verifier.score_many(vectors[0], vectors[1:], cosines)
    started = time.perf_counter()
    for _ in range(rounds):
        verifier.score_many(vectors[0], vectors[1:], cosines)
    each = (time.perf_counter() - started) / rounds
    print(f"\nverifier cost: {1e6 * each:.0f} us to rescore {candidates} candidates")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--verifier", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--embedder", type=Path, help="a MiniLM GGUF (default: the product's); same splits")
    args = parser.parse_args()
    verifier = Verifier.load(args.verifier)
    gptcache(verifier, args.embedder)
    qqp(verifier, args.embedder)
    verifier_cost(verifier)


if __name__ == "__main__":
    main()
