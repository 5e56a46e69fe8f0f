-- The prompt registry. A version is immutable: a name, a number, the content hash and the content
-- (messages, model, parameters, description as JSON). The same content saved again is the same
-- version (unique hash per name).
CREATE TABLE prompt_versions (
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    hash        TEXT NOT NULL,
    content     TEXT NOT NULL,
    source      TEXT NOT NULL,                  -- file:<path> | api
    created_at  REAL NOT NULL,
    created_by  TEXT,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE UNIQUE INDEX prompt_versions_hash ON prompt_versions (name, hash);

-- Labels point at versions; moving one is a rollback or a release. Every move is kept.
CREATE TABLE prompt_labels (
    name        TEXT NOT NULL,
    label       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  REAL NOT NULL,
    updated_by  TEXT,
    PRIMARY KEY (name, label)
) WITHOUT ROWID;
CREATE TABLE prompt_label_moves (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    label       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    previous    INTEGER,
    at          REAL NOT NULL,
    by          TEXT
);

-- The prompt a call used (traces.prompt_name and prompt_version since 0001).
ALTER TABLE traces ADD COLUMN prompt_label TEXT;
CREATE INDEX traces_prompt ON traces (prompt_name, prompt_version, ts) WHERE prompt_name IS NOT NULL;
