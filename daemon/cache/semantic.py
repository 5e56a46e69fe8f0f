"""Matching by meaning: embed the question, find the nearest entries of its space, and decide
whether the best one asks the same thing.

Search runs in sqlite-vec (storage/cache.py `nearest`): binary-quantized bits pick the candidates,
then their float vectors are rescored exactly here. A candidate must reach the cosine `threshold`,
and then, if there is one, the verifier must accept it (look-alike questions that are not the
same question are QQP's hard negatives: cosine alone serves them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiosqlite
import numpy as np

from daemon.config.schema import LlamaCppModel, SemanticCacheConfig
from daemon.core.cache_key import vector_table
from daemon.errors import ProviderError
from daemon.providers.base import Call
from daemon.runtime import ModelEntry
from daemon.storage.cache import nearest


class Verifier(Protocol):
    threshold: float

    def score(
        self, query_text: str, query: np.ndarray, entry_text: str, entry: np.ndarray, cosine: float
    ) -> float: ...


@dataclass(frozen=True, slots=True)
class Match:
    entry_id: str
    similarity: float  # cosine of the two questions' embeddings


def choose(
    query: np.ndarray, candidates: Sequence[tuple[str, np.ndarray]], threshold: float,
    accept: Any = None,
) -> tuple[Match | None, float]:  # fmt: skip
    """The best candidate at or above `threshold` that `accept(entry_id, cosine)` takes (all, if
    None), and the best cosine seen (for the reason of a miss)."""
    if not candidates:
        return None, 0.0
    cosines = np.stack([vector for _, vector in candidates]) @ query
    best = float(cosines.max())
    for index in np.argsort(-cosines):
        cosine = float(cosines[index])
        if cosine < threshold:
            break
        entry_id = candidates[index][0]
        if accept is None or accept(entry_id, cosine):
            return Match(entry_id, cosine), best
    return None, best


class SemanticLookup:
    def __init__(
        self, config: SemanticCacheConfig, embedder: ModelEntry, reader: aiosqlite.Connection
    ) -> None:
        self.config = config
        self.embedder = embedder
        self.reader = reader
        self.identity = embedder_identity(embedder)
        self.table: str | None = None  # known once the embedder says how many dimensions it gives

    async def embed(self, text: str) -> np.ndarray:
        """The question's embedding, L2-normalised float32, of its words: MiniLM put "...France?"
        and "...France" at 0.91, a rephrasing at 0.99, so edge whitespace and a trailing ? ! or .
        are left out."""
        words = " ".join(text.split()).rstrip("?!. ") or text
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
        """The nearest entries of `space`, and the vector table they are in."""
        table = self.table or vector_table(self.identity, vector.size)
        found = await nearest(self.reader, table, space, vector, self.config.candidates)
        return [(key, v) for key, v in found if v.size == vector.size], table


def embedder_identity(embedder: ModelEntry) -> str:
    """What makes two embedders the same: the name and the model behind it."""
    config = embedder.config
    behind = (
        config.path if isinstance(config, LlamaCppModel) else f"{config.base_url}|{embedder.upstream_model}"
    )
    return f"{embedder.name}|{behind}"
