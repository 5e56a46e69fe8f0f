-- The response cache (daemon/cache/): entries, and what a hit saved on its trace and in spend.

CREATE TABLE cache_entries (
    id                TEXT PRIMARY KEY,           -- the exact key (sha-256 hex): stable and unguessable
    kind              TEXT NOT NULL,              -- exact (semantic entries come later)
    namespace         TEXT NOT NULL,              -- the sharing scope and the model: never crossed
    model             TEXT NOT NULL,              -- the model (or route) name the request asked for
    question          TEXT NOT NULL,              -- the last user message, to show beside a hit
    body              TEXT NOT NULL,              -- the chat.completion JSON that is replayed
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd          REAL NOT NULL,              -- what the original call cost: what a hit saves
    trace_id          TEXT,                       -- the call that answered it
    created_at        REAL NOT NULL,
    expires_at        REAL NOT NULL,
    last_hit_at       REAL NOT NULL,              -- LRU order (created_at until the first hit)
    hits              INTEGER NOT NULL DEFAULT 0,
    vector_table      TEXT,                       -- a semantic entry's vector table (cache_vectors_*),
    space             TEXT                        -- and its partition there (daemon/core/cache_key.py)
) WITHOUT ROWID;
-- The vectors of semantic entries live in sqlite-vec tables made per embedder when first needed:
-- cache_vectors_<dimensions>_<embedder hash> (space partition key, bits bit[N], +entry_id, +vector).
CREATE INDEX cache_entries_namespace ON cache_entries (namespace);

-- "This hit was wrong": recorded (the entry is evicted) for the semantic cache to learn from.
CREATE TABLE cache_bad_hits (
    id          INTEGER PRIMARY KEY,
    entry_id    TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    trace_id    TEXT,                             -- the call that got the wrong answer
    question    TEXT,                             -- the entry's question
    marked_by   TEXT,
    marked_at   REAL NOT NULL
);

-- The cache view's recent hits: an index holding only the calls the cache answered.
CREATE INDEX traces_cache_hits ON traces (seq) WHERE cache IN ('hit-exact', 'hit-semantic');

-- What a stage avoided (a cache hit: the original call's cost and tokens).
ALTER TABLE traces ADD COLUMN saved_usd REAL NOT NULL DEFAULT 0;
ALTER TABLE traces ADD COLUMN saved_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN saved_usd REAL NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN saved_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN cache_lookups INTEGER NOT NULL DEFAULT 0;  -- hits and misses
ALTER TABLE spend_rollup ADD COLUMN cache_hits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN semantic_hits INTEGER NOT NULL DEFAULT 0;

DROP TRIGGER traces_spend_insert;
CREATE TRIGGER traces_spend_insert AFTER INSERT ON traces BEGIN
    INSERT INTO spend_rollup (dim, key, bucket, requests, errors, prompt_tokens, completion_tokens,
                              cost_usd, shadow_cost_usd, local_cost_usd, saved_usd, saved_tokens, cache_lookups,
                              cache_hits, semantic_hits)
    SELECT d.dim, d.key, CAST(NEW.ts AS INTEGER) / 3600 * 3600, 1, NEW.status != 'ok', NEW.prompt_tokens,
           NEW.completion_tokens, NEW.cost_usd, NEW.shadow_cost_usd,
           CASE WHEN NEW.shadow_cost_usd > 0 THEN NEW.cost_usd ELSE 0 END,
           NEW.saved_usd, NEW.saved_tokens, coalesce(NEW.cache IN ('hit-exact', 'hit-semantic', 'miss'), 0),
           coalesce(NEW.cache LIKE 'hit%', 0), coalesce(NEW.cache = 'hit-semantic', 0)
    FROM (SELECT 'model' AS dim, coalesce(NEW.served_model, NEW.requested_model, '(none)') AS key
          UNION ALL SELECT 'user', coalesce(NEW.user, '(none)')
          UNION ALL SELECT 'team', coalesce(NEW.team, '(no team)')) AS d
    WHERE true
    ON CONFLICT (dim, key, bucket) DO UPDATE SET
        requests = spend_rollup.requests + excluded.requests,
        errors = spend_rollup.errors + excluded.errors,
        prompt_tokens = spend_rollup.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = spend_rollup.completion_tokens + excluded.completion_tokens,
        cost_usd = spend_rollup.cost_usd + excluded.cost_usd,
        shadow_cost_usd = spend_rollup.shadow_cost_usd + excluded.shadow_cost_usd,
        local_cost_usd = spend_rollup.local_cost_usd + excluded.local_cost_usd,
        saved_usd = spend_rollup.saved_usd + excluded.saved_usd,
        saved_tokens = spend_rollup.saved_tokens + excluded.saved_tokens,
        cache_lookups = spend_rollup.cache_lookups + excluded.cache_lookups,
        cache_hits = spend_rollup.cache_hits + excluded.cache_hits,
        semantic_hits = spend_rollup.semantic_hits + excluded.semantic_hits;
END;

DROP TRIGGER traces_spend_delete;
CREATE TRIGGER traces_spend_delete AFTER DELETE ON traces BEGIN
    UPDATE spend_rollup SET
        requests = requests - 1,
        errors = errors - (OLD.status != 'ok'),
        prompt_tokens = prompt_tokens - OLD.prompt_tokens,
        completion_tokens = completion_tokens - OLD.completion_tokens,
        cost_usd = cost_usd - OLD.cost_usd,
        shadow_cost_usd = shadow_cost_usd - OLD.shadow_cost_usd,
        local_cost_usd = local_cost_usd - CASE WHEN OLD.shadow_cost_usd > 0 THEN OLD.cost_usd ELSE 0 END,
        saved_usd = saved_usd - OLD.saved_usd,
        saved_tokens = saved_tokens - OLD.saved_tokens,
        cache_lookups = cache_lookups - coalesce(OLD.cache IN ('hit-exact', 'hit-semantic', 'miss'), 0),
        cache_hits = cache_hits - coalesce(OLD.cache LIKE 'hit%', 0),
        semantic_hits = semantic_hits - coalesce(OLD.cache = 'hit-semantic', 0)
    WHERE bucket = CAST(OLD.ts AS INTEGER) / 3600 * 3600 AND (
        (dim = 'model' AND key = coalesce(OLD.served_model, OLD.requested_model, '(none)'))
        OR (dim = 'user' AND key = coalesce(OLD.user, '(none)'))
        OR (dim = 'team' AND key = coalesce(OLD.team, '(no team)')));
    DELETE FROM spend_rollup WHERE requests <= 0 AND bucket = CAST(OLD.ts AS INTEGER) / 3600 * 3600;
END;
