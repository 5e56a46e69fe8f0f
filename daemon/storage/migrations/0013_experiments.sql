-- Prompt experiments: arms (prompt versions, optionally other models), their split and scope, the
-- lifecycle state, and every transition with who made it and when.
CREATE TABLE experiments (
    name         TEXT PRIMARY KEY,
    prompt       TEXT NOT NULL,
    arms         TEXT NOT NULL,           -- JSON [{name, version, model, weight}], the control first
    scope        TEXT NOT NULL,           -- JSON {keys, users, teams}; empty lists: everyone
    state        TEXT NOT NULL,           -- draft | shadow | ab | rollout | promoted | stopped
    shadow_share REAL NOT NULL,
    metric       TEXT NOT NULL,
    min_sample   INTEGER NOT NULL,
    alpha        REAL NOT NULL,
    label        TEXT NOT NULL,
    winner       TEXT,
    created_at   REAL NOT NULL,
    created_by   TEXT
);
CREATE TABLE experiment_transitions (
    id          INTEGER PRIMARY KEY,
    experiment  TEXT NOT NULL,
    action      TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    arms        TEXT NOT NULL,            -- the arms (and their weights) after it
    at          REAL NOT NULL,
    by          TEXT,
    note        TEXT
);
-- Covering, in the order calls are written: an experiment's results read 100k calls without
-- touching the (wide) trace rows, and later only the calls written since (seq is the rowid).
CREATE INDEX traces_experiment ON traces (
    experiment, seq, ts, arm, status, latency_ms, cost_usd, prompt_tokens, completion_tokens, cache
) WHERE experiment IS NOT NULL;
-- A rating finds its call's experiment from the trace id alone.
CREATE INDEX traces_id_experiment ON traces (id, experiment) WHERE experiment IS NOT NULL;

-- A shadow copy belongs to a route or to an experiment's arm.
ALTER TABLE shadow_calls ADD COLUMN experiment TEXT;
ALTER TABLE shadow_calls ADD COLUMN arm TEXT;
CREATE INDEX shadow_calls_experiment ON shadow_calls (experiment, ts) WHERE experiment IS NOT NULL;
