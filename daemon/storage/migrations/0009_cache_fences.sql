-- What the semantic cache learnt from bad hits (daemon/cache/fences.py): per wrong match by
-- meaning, the two questions' vectors, which later matches between their neighbourhoods must
-- outscore. Loaded at start; dropped with their embedder's vector table.
CREATE TABLE cache_fences (
    id            INTEGER PRIMARY KEY,
    vector_table  TEXT NOT NULL,                 -- the embedder's vector table (cache_vectors_*)
    question      BLOB NOT NULL,                 -- the question answered wrongly (float32)
    entry         BLOB NOT NULL,                 -- the entry's question that answered it (float32)
    bad_hit       INTEGER REFERENCES cache_bad_hits (id) ON DELETE SET NULL,
    created_at    REAL NOT NULL
);
CREATE INDEX cache_fences_table ON cache_fences (vector_table, id);

-- A call is marked a bad hit once: marking it again finds the mark.
CREATE INDEX cache_bad_hits_trace ON cache_bad_hits (trace_id);
