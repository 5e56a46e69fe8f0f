"""Matching by meaning: embed the question, find the nearest entries of its space, and decide
whether the best one asks the same thing.

The search scans the binary codes of the space's questions in memory (cache/codes.py, a mirror
of what sqlite-vec stores): the nearest by Hamming distance are the candidates. Their float
vectors (from memory until written, then from sqlite-vec by rowid) are rescored exactly here: by
the verifier (cache/verify.py: a cosine after a projection learnt on Quora question pairs, which
tells look-alike questions that are not the same question from rewordings a little better than
plain cosine) or, without one, by plain cosine. The best-scoring candidate at or above the
threshold answers, unless a bad hit's fence (cache/fences.py) holds the pair.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from daemon.cache.codes import code_of
from daemon.cache.exact import ExactIndex
from daemon.cache.fences import Fences, cosine_pairs
from daemon.cache.verify import Verifier
from daemon.config.schema import LlamaCppModel, SemanticCacheConfig
from daemon.core.cache_key import vector_table
from daemon.errors import ProviderError
from daemon.providers.base import Call
from daemon.runtime import ModelEntry
from daemon.storage.cache import vectors_of

# Without the verifier, the plain cosine that kept false hits on QQP's hard negatives near 1 %
# on held-out pairs (cosine 0.95 let 1.9 % through on one held-out fold: over the bar of 1.5 %).
COSINE_THRESHOLD = 0.977


@dataclass(frozen=True, slots=True)
class Match:
    entry_id: str
    similarity: float  # the plain cosine of the two questions' embeddings
    score: float  # what decided: the verifier's score, or the cosine without one


def choose(
    query: np.ndarray, candidates: Sequence[tuple[str, np.ndarray]], threshold: float,
    verifier: Verifier | None = None, accept: Callable[[str], bool] | None = None,
    fences: Fences | None = None, table: str | None = None,
) -> tuple[Match | None, str]:  # fmt: skip
    """The best-scoring candidate at or above `threshold`, above any bar the `fences` of `table`
    set for it, that `accept(entry_id)` takes (all, if None); or None and why (the best score and
    cosine seen, or the fence)."""
    if not candidates:
        return None, "no entry"
    vectors = np.stack([vector for _, vector in candidates])
    cosines = vectors @ query
    scores = verifier.score_many(query, vectors, cosines) if verifier is not None else cosines
    scorer = verifier.pair_scores if verifier is not None else cosine_pairs
    bars = fences.bars(table, query, vectors, scorer) if fences is not None else None
    fenced: float | None = None
    for index in np.argsort(-scores):
        score = float(scores[index])
        if score < threshold:
            break
        if bars is not None and score <= bars[index]:
            fenced = float(bars[index]) if fenced is None else fenced
            continue
        entry_id = candidates[index][0]
        if accept is None or accept(entry_id):
            return Match(entry_id, float(cosines[index]), score), ""
    best, nearest_cosine = float(scores.max()), float(cosines.max())
    if fenced is not None:
        return None, f"score {best:.3f} inside a bad hit's fence (needs > {fenced:.3f})"
    if verifier is None:
        return None, f"best {best:.3f} < {threshold:.3f}"
    if nearest_cosine < verifier.prefilter:
        return None, f"nearest cosine {nearest_cosine:.3f} < {verifier.prefilter:.3f}"
    return None, f"best verified {best:.3f} < {threshold:.3f} (cosine {nearest_cosine:.3f})"


class SemanticLookup:
    def __init__(
        self, config: SemanticCacheConfig, embedder: ModelEntry, index: ExactIndex,
        reader: Any, verifier: Verifier | None = None, fences: Fences | None = None,
    ) -> None:  # fmt: skip
        self.config = config
        self.index = index
        self.fences = fences
        self.embedder = embedder
        self.reader = reader  # a blocking connection: the candidates' vectors are point lookups
        self.identity = embedder_identity(embedder)
        self.table: str | None = None  # known once the embedder says how many dimensions it gives
        usable = verifier is not None and config.verify and fits(verifier, embedder)
        self.verifier = verifier if usable else None
        # An explicit threshold applies to whichever score decides; the default is the verifier's
        # operating point, or the cosine with the same false-hit rate.
        default = self.verifier.threshold if self.verifier is not None else COSINE_THRESHOLD
        self.threshold = config.threshold if config.threshold is not None else default

    async def embed(self, text: str) -> np.ndarray:
        """The question's embedding (of `question_words`), L2-normalised float32."""
        words = question_words(text)
        name = self.embedder.name
        call = Call({"model": name, "input": words}, name, self.embedder.upstream_model)
        result = await self.embedder.provider.embed(call)
        try:
            vector = np.asarray(result.body["data"][0]["embedding"], dtype=np.float32)
        except (KeyError, IndexError, TypeError, ValueError):
            raise ProviderError(f"Embedder {self.embedder.name!r} gave no usable vector.") from None
        if vector.ndim != 1 or vector.size % 8 or not np.isfinite(vector).all():
            raise ProviderError(f"Embedder {self.embedder.name!r} gave a vector of an unusable shape.")
        norm = float(np.linalg.norm(vector))
        if self.table is None:
            self.table = vector_table(self.identity, vector.size)
        return vector / norm if norm else vector

    async def find(self, space: str, vector: np.ndarray) -> tuple[list[tuple[str, np.ndarray]], str]:
        """The nearest entries of `space` (their float vectors), and the vector table they are in."""
        table = self.table or vector_table(self.identity, vector.size)
        keys = self.index.codes.nearest(table, space, code_of(vector), self.config.candidates)
        held: dict[str, np.ndarray] = {}
        for key in keys:  # an entry not written yet still holds its vector
            entry = self.index.get(key)
            if entry is not None and entry.vector is not None:
                held[key] = np.frombuffer(entry.vector, np.float32)
        missing = [key for key in keys if key not in held]
        held |= vectors_of(self.reader, table, missing) if missing else {}
        return [(key, held[key]) for key in keys if key in held and held[key].size == vector.size], table

    def choose(
        self, vector: np.ndarray, candidates: Sequence[tuple[str, np.ndarray]], accept: Callable[[str], bool]
    ) -> tuple[Match | None, str]:
        verifier = (
            self.verifier if self.verifier is not None and vector.size == self.verifier.dimensions else None
        )
        return choose(vector, candidates, self.threshold, verifier, accept, self.fences, self.table)

    async def fence(self, question: str, entry_question: str) -> tuple[str, np.ndarray, np.ndarray]:
        """The fence a bad hit of `entry_question` for `question` sets: both embedded now, by this
        embedder (so it holds whichever embedder stored the entry), and the vector table it is for."""
        asked, answered = await self.embed(question), await self.embed(entry_question)
        assert self.table is not None  # embed() set it
        return self.table, asked, answered


def question_words(text: str) -> str:
    """What is embedded of a question: MiniLM put "...France?" and "...France" at 0.91, a
    rephrasing at 0.99, so edge whitespace and a trailing ? ! or . are left out."""
    return " ".join(text.split()).rstrip("?!. ") or text


def fits(verifier: Verifier, embedder: ModelEntry) -> bool:
    """The verifier was fitted on one embedder's vectors (MiniLM): with another it means nothing."""
    config = embedder.config
    source = config.path if isinstance(config, LlamaCppModel) else embedder.upstream_model
    squeeze = source.lower().replace("-", "").replace("_", "")
    return "minilm" in squeeze and "minilm" in verifier.embedder.lower().replace("-", "")


def embedder_identity(embedder: ModelEntry) -> str:
    """What makes two embedders the same: the name and the model behind it."""
    config = embedder.config
    behind = (
        config.path if isinstance(config, LlamaCppModel) else f"{config.base_url}|{embedder.upstream_model}"
    )
    return f"{embedder.name}|{behind}"
