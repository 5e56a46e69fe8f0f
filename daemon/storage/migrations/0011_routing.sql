-- The tier (or domain) a route chose; traces.route (since 0001) names the route.
ALTER TABLE traces ADD COLUMN route_tier TEXT;
CREATE INDEX traces_route_ts ON traces (route, ts) WHERE route IS NOT NULL;

-- A route's shadow calls: a copy of a served call sent to a candidate model once the call had
-- ended. Its answer, cost and latency sit beside the served one (traces, by trace_id); it is never
-- returned to the client nor charged to a budget.
CREATE TABLE shadow_calls (
    id                INTEGER PRIMARY KEY,
    trace_id          TEXT NOT NULL,
    ts                REAL NOT NULL,
    route             TEXT NOT NULL,
    model             TEXT NOT NULL,
    status            TEXT NOT NULL,              -- ok | error
    error             TEXT,
    response          TEXT,
    latency_ms        REAL,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL NOT NULL DEFAULT 0
);
CREATE INDEX shadow_calls_ts ON shadow_calls (ts);
