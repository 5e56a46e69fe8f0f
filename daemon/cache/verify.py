"""The semantic cache's verifier: a learned metric on MiniLM vectors that re-scores the candidates.

What it is. The search finds the stored questions nearest to a new one by plain MiniLM cosine; the
verifier then scores each candidate whose cosine is at least `prefilter` with the cosine *after a
learned linear map* W (384 x 384): `score = cos(W q, W e)`, and the cache answers with the
best-scoring candidate when its score is at least `threshold`. W is fitted on Quora Question
Pairs (duplicates close, hard negatives far: a logistic loss on the projected cosine, W started at
the identity and pulled back towards it, early-stopped on a held-out fold; see
`benchmarks/fit_cache_verifier.py`). Stored vectors stay plain MiniLM vectors (the search and its
binary prefilter are unchanged); the verifier projects the query and the few candidates itself,
which costs two 384 x 384 products per candidate (~10-20 us in numpy). `project()` is exposed for
a caller that prefers to keep projected vectors beside the stored ones.

Why. Plain cosine cannot tell "How can I learn English with someone?" from "How can I become
fluent in English?": on QQP's hard negatives, the threshold that keeps false hits at 1.5 % hits
~18 % of duplicates. Lexical rules, a logistic or MLP head on frozen features (cosine, u*v,
|u-v|, IDF-weighted word differences, numbers, negation, question word) each moved that by at
most 2 points in our cross-validation: the QQP pairs near the operating point are few (~500
hard negatives above cosine 0.9 in a fit split) and a many-feature head overfits them. A metric
learnt over all the pairs reshapes the whole space instead and generalised best. Fine-tuning
MiniLM itself (low-rank adapters on its top layers, benchmarks/fit_cache_embedder.py) gained about
as much (+2.5 points at 1.5 % over two folds) for the price of a second model: not shipped.

The numbers (cache level, `benchmarks/fit_cache_verifier.py --cv`: 5 folds by question group,
thresholds set on a validation fold, measured on the test fold, mean and (min-max) over the 5 test
folds; hits = strict right hits, the query's own origin):

    set for        cosine: hits / false hits             verifier: hits / false hits
    1.0 %          13.7 % (11.1-18.1) / 1.01 % (0.54-1.80)   15.6 % (12.4-19.3) / 0.96 % (0.63-1.61)
    1.5 %          18.1 % (15.3-20.8) / 1.48 % (1.11-1.88)   20.7 % (18.1-23.2) / 1.57 % (1.17-2.00)

+2 to +2.6 points of duplicates at the same false-hit rate (+4 to +6 at 2-2.5 %), short of the
issue's 25 % target. The shipped `threshold` (0.9751) is set for 1.0 % false hits on its
validation fold, not 1.5 %: the bar is also checked on unseen QQP pairs where plain cosine ran
about a point worse, and a threshold set on ~2,000 hard negatives lands 0.5 points either side of
its aim on another fold. The parameter file records its own held-out numbers (`metrics`).

Pure: numpy and the standard library; the only I/O is `Verifier.load(path)` reading its JSON.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_PATH = Path(__file__).with_name("verifier.json")
FORMAT = "llmops-cache-verifier/1"


def _decode(blob: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(blob["data"])
    return np.frombuffer(raw, dtype="<f4").reshape(blob["shape"]).astype(np.float32)


def _encode(array: np.ndarray) -> dict[str, Any]:
    data = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(data.shape), "data": base64.b64encode(data.tobytes()).decode()}


@dataclass(frozen=True)
class Verifier:
    """cos(W q, W e) for candidates with plain cosine >= prefilter; accept when >= threshold."""

    projection: np.ndarray  # (384, r) float32
    threshold: float
    prefilter: float
    embedder: str = "all-MiniLM-L6-v2"  # the vectors W was fitted on; others must not use it
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH) -> Verifier:
        doc = json.loads(Path(path).read_text())
        if doc.get("format") != FORMAT:
            raise ValueError(f"{path}: not a cache verifier file ({FORMAT!r} expected)")
        return cls(
            _decode(doc["projection"]),
            float(doc["threshold"]),
            float(doc["prefilter"]),
            str(doc["embedder"]),
            dict(doc.get("metrics", {})),
        )

    def save(self, path: str | Path) -> None:
        doc = {
            "format": FORMAT,
            "embedder": self.embedder,
            "threshold": self.threshold,
            "prefilter": self.prefilter,
            "metrics": self.metrics,
            "projection": _encode(self.projection),
        }
        Path(path).write_text(json.dumps(doc, indent=1) + "\n")

    @property
    def dimensions(self) -> int:
        return int(self.projection.shape[0])

    def project(self, vector: np.ndarray) -> np.ndarray:
        """W v, L2-normalised (a vector, or a matrix of row vectors)."""
        out: np.ndarray = np.asarray(vector, np.float32) @ self.projection
        norm = np.linalg.norm(out, axis=-1, keepdims=True)
        normalised: np.ndarray = out / np.maximum(norm, 1e-12)
        return normalised

    def score_many(
        self, query_vector: np.ndarray, entry_vectors: np.ndarray, cosines: np.ndarray
    ) -> np.ndarray:
        """How surely each entry asks the same as the query: the projected cosine, in [-1, 1], in
        one matrix product; -1 (never accepted) for a candidate whose plain cosine is below
        `prefilter`."""
        projected = self.project(np.vstack([query_vector[None, :], entry_vectors]))
        scores = projected[1:] @ projected[0]
        return np.where(np.asarray(cosines) >= self.prefilter, scores, -1.0).astype(np.float32)

    def pair_scores(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The score of each row of `a` against the same row of `b` (pairs already matched once:
        no prefilter)."""
        scores: np.ndarray = (self.project(a) * self.project(b)).sum(axis=1)
        return scores
