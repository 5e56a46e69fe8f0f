-- Every call through the gateway is a trace. `seq` orders them (cursor pagination); `id` is public.
CREATE TABLE traces (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    ts                REAL NOT NULL,              -- unix seconds when the request arrived
    endpoint          TEXT NOT NULL,              -- chat | embeddings
    key_id            TEXT,
    user              TEXT,
    team              TEXT,
    requested_model   TEXT,
    served_model      TEXT,
    provider          TEXT,
    stream            INTEGER NOT NULL DEFAULT 0,
    status            TEXT NOT NULL,              -- ok | error | cancelled
    http_status       INTEGER NOT NULL,
    error             TEXT,
    request           TEXT,                       -- JSON: messages/input and parameters, truncated
    response          TEXT,                       -- the response text, truncated
    finish_reason     TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL NOT NULL DEFAULT 0,
    shadow_cost_usd   REAL NOT NULL DEFAULT 0,
    latency_ms        REAL,
    ttft_ms           REAL,
    overhead_ms       REAL,
    -- filled by later stages of the request path
    cache             TEXT,                       -- hit-exact | hit-semantic | miss | NULL
    route             TEXT,
    prompt_name       TEXT,
    prompt_version    INTEGER,
    experiment        TEXT,
    arm               TEXT,
    metadata          TEXT                        -- JSON
);
CREATE INDEX traces_ts ON traces (ts);
CREATE INDEX traces_served_model ON traces (served_model, seq);
CREATE INDEX traces_user ON traces (user, seq);
CREATE INDEX traces_status ON traces (status, seq);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    key_hash    TEXT NOT NULL UNIQUE,             -- sha256 of the secret; the secret is never stored
    prefix      TEXT NOT NULL,                    -- first characters, to recognise a key in listings
    user        TEXT NOT NULL,
    team        TEXT,
    is_admin    INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    revoked_at  REAL
);

CREATE TABLE feedback (
    id          INTEGER PRIMARY KEY,
    trace_id    TEXT NOT NULL REFERENCES traces (id),
    score       REAL NOT NULL,
    comment     TEXT,
    rated_by    TEXT,
    created_at  REAL NOT NULL
);
CREATE INDEX feedback_trace ON feedback (trace_id);
