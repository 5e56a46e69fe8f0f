-- Budgets (daemon/pipeline/budgets.py). A call reserves its worst case against every budget that
-- applies before it runs, all or nothing: from its process's lease in memory, or by growing the
-- lease in one write transaction, where SQLite's write lock makes the check and the grant atomic
-- across daemon processes on one database.

-- Budgets set through the API or the CLI: a row here wins over the profile's budget of the same
-- subject and period.
CREATE TABLE budget_limits (
    subject   TEXT NOT NULL,                  -- user:alice | key:<key id> | team:ml | default
    period    TEXT NOT NULL,                  -- day | week | month | total
    usd       REAL,
    tokens    INTEGER,
    warn_at   REAL,
    set_by    TEXT,
    set_at    REAL NOT NULL,
    PRIMARY KEY (subject, period)
) WITHOUT ROWID;

-- A manual reset: the budget's current window starts again at `reset_at`.
CREATE TABLE budget_resets (
    subject   TEXT NOT NULL,
    period    TEXT NOT NULL,
    reset_at  REAL NOT NULL,
    reset_by  TEXT,
    PRIMARY KEY (subject, period)
) WITHOUT ROWID;

-- What a budget's window has spent: the sum of its traces' costs (in nano-dollars) and tokens.
-- Seeded from the traces when the window is first needed, then kept in the transaction that writes
-- each trace, so it equals its traces' sum whenever nothing is being written.
CREATE TABLE budget_ledger (
    subject       TEXT NOT NULL,
    period        TEXT NOT NULL,
    window_start  REAL NOT NULL,
    window_end    REAL NOT NULL,              -- Inf for a total budget
    spent_nanos   INTEGER NOT NULL DEFAULT 0,
    spent_tokens  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, period, window_start)
) WITHOUT ROWID;

-- What each daemon process holds of a budget's window: its calls in flight and some room to reserve
-- the next ones in memory (daemon/budgets/leases.py). A window's spent amount and every process's
-- lease never exceed its limit together. A crashed process's leases are deleted by the next
-- daemon to check in (budget_owners); a call's cost is taken off its process's lease when settled.
CREATE TABLE budget_leases (
    subject       TEXT NOT NULL,
    period        TEXT NOT NULL,
    window_start  REAL NOT NULL,
    window_end    REAL NOT NULL,
    owner         TEXT NOT NULL,
    usd_nanos     INTEGER NOT NULL DEFAULT 0,
    tokens        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, period, window_start, owner)
) WITHOUT ROWID;
CREATE INDEX budget_leases_owner ON budget_leases (owner);

-- The daemon processes that may hold leases: one that is gone (its pid has ended, or it has not
-- been seen for a while) has its leases deleted.
CREATE TABLE budget_owners (
    id          TEXT PRIMARY KEY,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    started_at  REAL NOT NULL,
    seen_at     REAL NOT NULL
);

-- A key's budget is seeded from its traces.
CREATE INDEX traces_key_ts ON traces (key_id, ts) WHERE key_id IS NOT NULL;

-- Why a failed call failed, as its error's code (budget_exceeded, rate_limit_exceeded, ...): the
-- console counts the rejections over time.
ALTER TABLE traces ADD COLUMN error_code TEXT;
