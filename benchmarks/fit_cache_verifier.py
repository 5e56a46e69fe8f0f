"""Fit the semantic cache's verifier (daemon/cache/verify.py) and write daemon/cache/verifier.json.

The verifier is a learned linear map W of MiniLM vectors: two questions are the same when the
cosine of their *projected* vectors is high. W (384 x 384) starts at the identity and is fitted by
Adam on a logistic loss over the projected cosine, `p(same) = sigmoid(a cos(Wq, We) + b)`, with
weight decay towards the identity, on what the cache will actually have to decide: each query's
top-5 candidates from its fold's cache with plain cosine >= the prefilter (0.80), labelled by QQP
(a labelled duplicate = 1; a hard negative, or an unrelated entry = 0; hard negatives weigh 3x).

Splits and protocol are `_semantic_data.py`'s (5 folds by question group). The shipped file is
fitted on folds 2-4, early-stopped on fold 1 (the duplicate hit rate at 1-2 % false hits), its
threshold set on fold 1 for 1.0 % false hits, and measured on fold 0, which nothing above saw.
`--cv` repeats that with each fold as the test fold and prints the spread (nothing is written).

    .venv/bin/python benchmarks/fit_cache_verifier.py [--cv] [--target 0.01] [--out PATH]

The first run embeds the data (~66k texts, 20-35 min on 2 cores; cached in benchmarks/.cache/).
Deterministic: fixed seeds, and numpy's float32 sums on one machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _semantic_data import QQP, Lookups, best, load_qqp, lookups, point, roles, threshold_at  # noqa: E402

from daemon.cache.verify import DEFAULT_PATH, Verifier  # noqa: E402

PREFILTER = 0.80
NEGATIVE_WEIGHT = 3.0
WEIGHT_DECAY = 1e-4
LEARNING_RATE = 5e-4
BATCH = 512
MAX_EPOCHS = 25
PATIENCE = 4
SEED = 0
STOP_RATES = (0.01, 0.015, 0.02)  # early stopping watches the hit rate at these false-hit rates


def projected_cos(w: np.ndarray, q: np.ndarray, e: np.ndarray) -> np.ndarray:
    a, b = q @ w, e @ w
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-8)


def candidate_pairs(data: QQP, looks: list[tuple[Lookups, Lookups]]) -> tuple[np.ndarray, ...]:
    qs, es, ys, ws = [], [], [], []
    for dup, neg in looks:
        for look, weight in ((dup, 1.0), (neg, NEGATIVE_WEIGHT)):
            keep = look.cos >= PREFILTER
            query = np.broadcast_to(look.query[:, None], look.cand.shape)[keep]
            qs.append(data.vectors[query])
            es.append(data.vectors[look.cand[keep]])
            ys.append(look.lenient[keep])
            ws.append(np.full(int(keep.sum()), weight))
    return (
        np.concatenate(qs),
        np.concatenate(es),
        np.concatenate(ys).astype(np.float32),
        np.concatenate(ws).astype(np.float32),
    )


def scored(data: QQP, look: Lookups, w: np.ndarray) -> np.ndarray:
    q = np.broadcast_to(data.vectors[look.query][:, None, :], (*look.cand.shape, 384))
    return projected_cos(w, q, data.vectors[look.cand])


def stop_metric(data: QQP, val: tuple[Lookups, Lookups], w: np.ndarray) -> float:
    dup = best(val[0], scored(data, val[0], w), PREFILTER)
    neg = best(val[1], scored(data, val[1], w), PREFILTER)[0]
    return float(np.mean([point(dup, neg, threshold_at(neg, rate)).hit for rate in STOP_RATES]))


def fit_projection(
    data: QQP, train: list[tuple[Lookups, Lookups]], val: tuple[Lookups, Lookups], verbose: bool = True
) -> np.ndarray:
    q, e, y, weight = candidate_pairs(data, train)
    rng = np.random.default_rng(SEED)
    eye = np.eye(384, dtype=np.float32)
    params = [eye.copy(), np.array([20.0], np.float32), np.array([-17.0], np.float32)]  # W, a, b
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    step, best_score, best_w, stale = 0, -np.inf, params[0].copy(), 0
    for epoch in range(MAX_EPOCHS):
        order = rng.permutation(len(q))
        for start in range(0, len(q), BATCH):
            i = order[start : start + BATCH]
            w, a, b = params
            pa, pb = q[i] @ w, e[i] @ w
            na = np.linalg.norm(pa, axis=1, keepdims=True) + 1e-8
            nb = np.linalg.norm(pb, axis=1, keepdims=True) + 1e-8
            ua, ub = pa / na, pb / nb
            cos = (ua * ub).sum(1)
            p = 1 / (1 + np.exp(-(a[0] * cos + b[0])))
            g = (p - y[i]) * weight[i] / weight[i].sum()
            gc = (g * a[0])[:, None]
            gua, gub = gc * ub, gc * ua
            gpa = (gua - ua * (gua * ua).sum(1, keepdims=True)) / na
            gpb = (gub - ub * (gub * ub).sum(1, keepdims=True)) / nb
            grads = [
                q[i].T @ gpa + e[i].T @ gpb + WEIGHT_DECAY * (w - eye),
                np.array([(g * cos).sum()], np.float32),
                np.array([g.sum()], np.float32),
            ]
            step += 1
            for param, grad, mom, var in zip(params, grads, m1, m2, strict=True):
                mom *= 0.9
                mom += 0.1 * grad
                var *= 0.999
                var += 0.001 * grad * grad
                param -= LEARNING_RATE * (mom / (1 - 0.9**step)) / (np.sqrt(var / (1 - 0.999**step)) + 1e-8)
        score = stop_metric(data, val, params[0])
        if verbose:
            print(
                f"  epoch {epoch + 1}: validation hit rate (mean at 1/1.5/2 % false hits) {100 * score:.2f}",
                flush=True,
            )
        if score > best_score:
            best_score, best_w, stale = score, params[0].copy(), 0
        else:
            stale += 1
            if stale >= PATIENCE:
                break
    return best_w


def evaluate(
    data: QQP, look: tuple[Lookups, Lookups], w: np.ndarray | None, threshold: float
) -> dict[str, float]:
    if w is None:  # plain cosine
        dup, neg = best(look[0], look[0].cos, -1.0), best(look[1], look[1].cos, -1.0)[0]
    else:
        dup, neg = (
            best(look[0], scored(data, look[0], w), PREFILTER),
            best(look[1], scored(data, look[1], w), PREFILTER)[0],
        )
    p = point(dup, neg, threshold)
    return {"hit": p.hit, "hit_lenient": p.hit_lenient, "wrong": p.wrong, "false_hit": p.false_hit}


def fold_run(data: QQP, test_fold: int, target: float, verbose: bool) -> tuple[Verifier, dict[str, object]]:
    fit_folds, val_fold, _ = roles(test_fold)
    train = [lookups(data, f) for f in fit_folds]
    val, test = lookups(data, val_fold), lookups(data, test_fold)
    w = fit_projection(data, train, val, verbose)
    val_neg = best(val[1], scored(data, val[1], w), PREFILTER)[0]
    cos_neg = best(val[1], val[1].cos, -1.0)[0]
    metrics: dict[str, object] = {
        "target_false_hit": target,
        "folds": {"fit": fit_folds, "validation": val_fold, "test": test_fold},
    }
    for rate in sorted({target, 0.01, 0.015}):
        t_ver, t_cos = threshold_at(val_neg, rate), threshold_at(cos_neg, rate)
        metrics[f"at_{rate:g}"] = {
            "verifier": {
                "threshold": t_ver,
                "validation": evaluate(data, val, w, t_ver),
                "test": evaluate(data, test, w, t_ver),
            },
            "cosine": {
                "threshold": t_cos,
                "validation": evaluate(data, val, None, t_cos),
                "test": evaluate(data, test, None, t_cos),
            },
        }
    # a few held-out rows of the data files, for the model test (tests/unit/test_cache_verify.py)
    rng = np.random.default_rng(SEED)
    metrics["test_sample_rows"] = {
        "qqp_duplicates": sorted(
            rng.choice(np.nonzero(data.dup_fold == test_fold)[0], 200, replace=False).tolist()
        ),
        "qqp_hard_negatives": sorted(
            rng.choice(np.nonzero(data.neg_fold == test_fold)[0], 400, replace=False).tolist()
        ),
    }
    verifier = Verifier(w, round(threshold_at(val_neg, target), 6), PREFILTER, metrics=metrics)
    return verifier, metrics


def show(metrics: dict[str, object]) -> None:
    for key, value in metrics.items():
        if not key.startswith("at_"):
            continue
        assert isinstance(value, dict)
        for who in ("cosine", "verifier"):
            v = value[who]
            print(
                f"  {key[3:]:>6} false hits on validation -> {who:8} threshold {v['threshold']:.4f}: "
                f"validation hits {100 * v['validation']['hit']:5.1f} % "
                f"fp {100 * v['validation']['false_hit']:.2f} %  |  "
                f"test hits {100 * v['test']['hit']:5.1f} % "
                f"(lenient {100 * v['test']['hit_lenient']:5.1f} %) "
                f"wrong {100 * v['test']['wrong']:4.1f} % fp {100 * v['test']['false_hit']:.2f} %"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cv", action="store_true", help="each fold as the test fold in turn; writes nothing"
    )
    parser.add_argument("--target", type=float, default=0.01, help="false-hit rate the threshold is set for")
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    data = load_qqp()
    print(
        f"QQP: {len(data.dup)} duplicate pairs, {len(data.neg)} hard negatives, {len(data.texts)} texts, "
        f"folds of {np.bincount(data.dup_fold).tolist()} / {np.bincount(data.neg_fold).tolist()} pairs"
    )
    if args.cv:
        pooled: dict[tuple[str, float], list[dict[str, float]]] = {}
        for fold in range(5):
            print(f"test fold {fold}:")
            _, metrics = fold_run(data, fold, args.target, not args.quiet)
            show(metrics)
            for key, value in metrics.items():
                if key.startswith("at_"):
                    assert isinstance(value, dict)
                    for who in ("cosine", "verifier"):
                        pooled.setdefault((who, float(key[3:])), []).append(value[who]["test"])
        print("across the 5 test folds (mean, min-max):")
        for (who, rate), rows in sorted(pooled.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            hits, fps = np.array([r["hit"] for r in rows]), np.array([r["false_hit"] for r in rows])
            print(
                f"  set for {100 * rate:.1f} %: {who:8} hits {100 * hits.mean():5.1f} % "
                f"({100 * hits.min():.1f}-{100 * hits.max():.1f})  false hits {100 * fps.mean():.2f} % "
                f"({100 * fps.min():.2f}-{100 * fps.max():.2f})"
            )
    else:
        verifier, metrics = fold_run(data, 0, args.target, not args.quiet)
        show(metrics)
        verifier.save(args.out)
        print(
            f"wrote {args.out} ({args.out.stat().st_size // 1024} KB): threshold {verifier.threshold:.4f}, "
            f"prefilter {verifier.prefilter}"
        )
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
