"""The semantic search's in-memory codes (daemon/cache/codes.py) against a brute-force Hamming
search, and the exact index keeping them in step with its entries."""

from __future__ import annotations

import numpy as np

from daemon.cache.codes import Codes, code_of
from daemon.cache.exact import CacheEntry, ExactIndex


def hamming(a: bytes, b: bytes) -> int:
    return int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum())


def random_codes(rng: np.random.Generator, count: int, dimensions: int) -> dict[str, bytes]:
    return {f"e{i}": code_of(rng.standard_normal(dimensions)) for i in range(count)}


def test_nearest_matches_a_brute_force_search_through_adds_removals_and_growth() -> None:
    rng = np.random.default_rng(1)
    for dimensions in (384, 16):  # 16: a code shorter than one 64-bit word
        stored = random_codes(rng, 300, dimensions)  # past the initial capacity: the arrays grow
        codes = Codes()
        for key, code in stored.items():
            codes.add("t", "s", key, code)
        for key in list(stored)[::3]:  # removals move the last code into the freed column
            codes.remove("t", "s", key)
            del stored[key]
        assert len(codes) == len(stored)
        for _ in range(20):
            query = code_of(rng.standard_normal(dimensions))
            found = codes.nearest("t", "s", query, 10)
            distances = sorted(hamming(query, code) for code in stored.values())
            assert [hamming(query, stored[key]) for key in found] == distances[:10]


def test_spaces_and_tables_never_mix_and_a_table_can_be_forgotten() -> None:
    codes = Codes()
    one = code_of(np.ones(64))
    codes.add("t", "alice", "a", one)
    codes.add("t", "bob", "b", one)
    codes.add("u", "alice", "c", one)
    assert codes.nearest("t", "alice", one, 10) == ["a"]
    assert codes.nearest("t", "carol", one, 10) == []
    codes.add("t", "alice", "a", code_of(-np.ones(64)))  # a new code for the same entry replaces it
    assert codes.nearest("t", "alice", one, 10) == ["a"] and len(codes) == 3
    codes.forget(["t"])
    assert codes.nearest("t", "bob", one, 10) == [] and codes.nearest("u", "alice", one, 10) == ["c"]


def entry(key: str, vector: np.ndarray | None, space: str | None = "s") -> CacheEntry:
    return CacheEntry(
        id=key, kind="exact", namespace="n", model="m", question=key, body={}, prompt_tokens=1,
        completion_tokens=1, cost_usd=0.0, trace_id=None, created_at=0.0, expires_at=1e12,
        vector_table="t" if vector is not None else None, space=space if vector is not None else None,
        vector=vector.astype(np.float32).tobytes() if vector is not None else None,
    )  # fmt: skip


def test_the_exact_index_keeps_codes_only_for_the_entries_it_holds() -> None:
    near, far = np.ones(64), -np.ones(64)
    index = ExactIndex()
    index.put(entry("a", near), max_entries=2)
    index.put(entry("plain", None), max_entries=2)  # an exact-only entry has no code
    assert index.codes.nearest("t", "s", code_of(near), 5) == ["a"]
    index.put(entry("b", far), max_entries=2)  # "a", least recently used, goes: so does its code
    assert index.codes.nearest("t", "s", code_of(near), 5) == ["b"]
    index.remove("b")
    assert len(index.codes) == 0
    index.put(entry("c", near), max_entries=5)
    index.forget_vectors(["t"])  # the embedder changed: "c" stays, as an exact entry
    assert len(index.codes) == 0 and index.get("c") is not None and index.get("c").vector_table is None  # type: ignore[union-attr]


def test_codes_loaded_at_start_are_kept_only_for_live_entries_in_their_place() -> None:
    saved = [entry("a", np.ones(64)), entry("b", np.ones(64))]
    for held in saved:
        held.vector = None  # as loaded: the vectors stay in the database
    code = code_of(np.ones(64))
    rows = [("t", "s", "a", code), ("t", "s", "gone", code), ("t", "elsewhere", "b", code)]
    index = ExactIndex(saved, rows)
    assert index.codes.nearest("t", "s", code, 5) == ["a"] and len(index.codes) == 1
