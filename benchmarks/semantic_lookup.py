"""The semantic cache's lookup latency at 1k, 10k and 100k entries: embed the question (MiniLM
through the product's LlamaCppProvider and its worker thread), search its space (the binary codes
in memory, as cache/codes.py holds them, then the candidates' float vectors from sqlite-vec
by rowid on a blocking connection, as the daemon does), and rescore and choose among them with the
shipped verifier, as the daemon does by default. Target: p50 <= 10 ms at 100k. The last columns
time sqlite-vec's own KNN scan of the same codes (the search before the in-memory mirror), and
give the share of lookups whose best candidate (by cosine) is also that scan's (below 100 % only
where codes tie at the k-th distance and the two keep different ones).

Entries are real MiniLM embeddings of QQP questions from ../shared (all of them, about 55k
distinct texts, embedded once by `_semantic_data.embed_texts`, kept in benchmarks/.cache/); above
that, they are those vectors moved a little at random (so the index holds 100k distinct,
realistically clustered vectors).
Queries are QQP questions that are not in the index. All entries share one space: the worst case
(sqlite-vec scans a whole partition).

    .venv/bin/python benchmarks/semantic_lookup.py [--queries 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the daemon runs numpy (daemon/__init__.py)
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _semantic_data import embed_texts  # noqa: E402

from daemon.cache.codes import Codes, code_of  # noqa: E402
from daemon.cache.semantic import choose  # noqa: E402
from daemon.cache.verify import Verifier  # noqa: E402
from daemon.config.schema import LlamaCppModel  # noqa: E402
from daemon.core.cache_key import vector_table  # noqa: E402
from daemon.providers.base import Call  # noqa: E402
from daemon.providers.llama_local import LlamaCppProvider  # noqa: E402
from daemon.storage import db  # noqa: E402
from daemon.storage.cache import vector_row, vectors_of  # noqa: E402
from daemon.storage.migrate import migrate  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "semantic-cache"
CACHE = REPO / "benchmarks" / ".cache"
SIZES = (1_000, 10_000, 100_000)
SPACE = "user:bench|model|0000"
TARGET_P50_MS = 10.0


def questions() -> list[str]:
    seen: dict[str, None] = {}
    for name, other in (("qqp_duplicates.json", "similar"), ("qqp_hard_negatives.json", "other")):
        for pair in json.loads((SHARED / name).read_text()):
            seen.setdefault(pair["origin"].strip(), None)
            seen.setdefault(pair[other].strip(), None)
    return [text for text in seen if text]


def entries(real: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    if count <= len(real):
        return real[:count]
    extra = real[rng.integers(0, len(real), count - len(real))]
    extra = extra + rng.normal(0, 0.03, extra.shape).astype(np.float32)
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    return np.concatenate([real, extra])


def fill(path: Path, table: str, vectors: np.ndarray) -> Codes:
    """Store `vectors` as the daemon does; their codes, as its in-memory mirror holds them."""
    conn = db.connect_sync(path)
    migrate(conn)
    columns = "space text partition key, bits bit[384], +entry_id text, +vector blob"
    conn.execute(f"CREATE VIRTUAL TABLE {table} USING vec0({columns})")
    # keys shaped like the daemon's (64 hex digits; the rowid is the first 15)
    rows = [vector_row(f"{i:015x}{0:049x}", SPACE, vector.tobytes()) for i, vector in enumerate(vectors, 1)]
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO {table} (rowid, space, bits, entry_id, vector) VALUES (?, ?, vec_bit(?), ?, ?)", rows
    )
    conn.execute("COMMIT")
    conn.close()
    codes = Codes()
    codes.load((table, space, key, bits) for _, space, bits, key, _ in rows)
    return codes


async def measure(
    provider: LlamaCppProvider, path: Path, table: str, codes: Codes, queries: list[str]
) -> dict[str, list[float]]:
    reader = db.connect_sync(path)  # as the daemon's cache reader: blocking point lookups
    verifier = Verifier.load()
    times: dict[str, list[float]] = {name: [] for name in ("embed", "search", "choose", "lookup", "knn")}
    agreed: list[bool] = []
    knn = f"SELECT entry_id, vector FROM {table} WHERE bits MATCH vec_bit(?) AND k = 10 AND space = ?"
    try:
        for text in queries:
            started = time.perf_counter()
            result = await provider.embed(Call({"model": "minilm", "input": text}, "minilm", "minilm"))
            vector = np.asarray(result.body["data"][0]["embedding"], dtype=np.float32)
            vector /= np.linalg.norm(vector)
            embedded = time.perf_counter()
            keys = codes.nearest(table, SPACE, code_of(vector), 10)  # what SemanticLookup.find does
            found = vectors_of(reader, table, keys)
            candidates = [(key, found[key]) for key in keys if key in found]
            searched = time.perf_counter()
            choose(vector, candidates, verifier.threshold, verifier)
            done = time.perf_counter()
            rows = reader.execute(knn, (code_of(vector), SPACE)).fetchall()  # sqlite-vec's own scan
            theirs = [np.frombuffer(row[1], np.float32) for row in rows]
            knn_done = time.perf_counter()
            ours = [vector for _, vector in candidates]
            # the same best candidate (by cosine) as sqlite-vec's full scan of the codes
            agreed.append(best_cosine(vector, ours) >= best_cosine(vector, theirs) - 1e-6)
            for name, value in (("embed", embedded - started), ("search", searched - embedded),
                                ("choose", done - searched), ("lookup", done - started),
                                ("knn", knn_done - done)):  # fmt: skip
                times[name].append(value * 1000)
    finally:
        reader.close()
    times["agreed"] = [100.0 * float(np.mean(agreed))]
    return times


def best_cosine(query: np.ndarray, found: list[np.ndarray]) -> float:
    return max((float(v @ query) for v in found), default=-1.0)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    if not SHARED.exists():
        print(f"needs {SHARED} (the project's dev and CI machines have it)", file=sys.stderr)
        return 2
    os.environ.setdefault("LLMOPS_DATA_DIR", str(CACHE / "data"))
    provider = LlamaCppProvider("minilm", LlamaCppModel(provider="llama_cpp", path="package:all-minilm-l6-v2",
                                                         embedding=True, n_ctx=512))  # fmt: skip
    texts = questions()
    rng = np.random.default_rng(7)
    order = rng.permutation(len(texts))
    held_out = [texts[i] for i in order[: args.queries]]  # asked, never stored
    real = embed_texts([texts[i] for i in order[args.queries :]])  # embedded once, cached
    table = vector_table("bench", 384)
    print(f"{args.queries} lookups per size, one space, k=10 candidates, MiniLM F16 on the CPU\n")
    header = ("entries", "embed p50", "search p50", "choose p50", "lookup p50", "p99", "sqlite-vec knn p50",
              "same best")  # fmt: skip
    print("{:>8} | {:>9} {:>10} {:>10} | {:>10} {:>8} | {:>18} {:>9}".format(*header))
    verdict = "not measured"
    with tempfile.TemporaryDirectory(prefix="llmops-lookup-") as tmp:
        for size in SIZES:
            path = Path(tmp) / f"{size}.db"
            codes = fill(path, table, entries(real, size, rng))
            times = await measure(provider, path, table, codes, held_out)
            cells = (pct(times[name], 50) for name in ("embed", "search", "choose", "lookup"))
            print(
                "{:>8} | {:9.2f} {:10.2f} {:10.3f} | {:10.2f}".format(size, *cells),
                f"{pct(times['lookup'], 99):8.2f} | {pct(times['knn'], 50):18.2f} {times['agreed'][0]:8.1f}%",
            )
            if size == SIZES[-1]:
                p50 = pct(times["lookup"], 50)
                passed = "PASS" if p50 <= TARGET_P50_MS else "MISS"
                verdict = f"{p50:.2f} ms at {size} (target <= {TARGET_P50_MS} ms: {passed})"
    print(f"\nlookup p50 {verdict}")
    await provider.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
