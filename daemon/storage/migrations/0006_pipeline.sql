-- Each try of a candidate model within a call (the attempt loop falls back along its candidates).
-- The trace's tokens and cost are its attempts' sums. Keyed by the trace's seq: a lookup per trace.
CREATE TABLE attempts (
    trace_seq         INTEGER NOT NULL REFERENCES traces (seq),
    n                 INTEGER NOT NULL,           -- 0, 1, ... in the order tried
    model             TEXT NOT NULL,
    provider          TEXT NOT NULL,
    status            TEXT NOT NULL,              -- ok | error | cancelled
    http_status       INTEGER NOT NULL,
    error             TEXT,
    latency_ms        REAL,
    ttft_ms           REAL,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL NOT NULL DEFAULT 0,
    shadow_cost_usd   REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (trace_seq, n)
) WITHOUT ROWID;

-- What each stage decided for a call and why, as JSON: [{"stage", "outcome", "reason"}].
ALTER TABLE traces ADD COLUMN decisions TEXT;

-- How far each background follower (judge, alerts...) has processed the traces, by seq. It
-- advances in the same transaction as the follower's own writes, so no trace is skipped or lost.
CREATE TABLE watermarks (
    name  TEXT PRIMARY KEY,
    seq   INTEGER NOT NULL
);
