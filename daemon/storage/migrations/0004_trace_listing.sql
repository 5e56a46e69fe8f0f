-- Listing traces over millions of rows in milliseconds.
--
-- Listings are newest first by (ts, seq). Each filter column gets an index on (column, ts); SQLite
-- appends the rowid (seq), so a filtered listing reads its index in order and stops at the page.
-- "model" is the model that served, or the one asked for when none did (unknown model, failure
-- before routing): one indexed column instead of an OR that made SQLite sort every match.
ALTER TABLE traces ADD COLUMN model TEXT GENERATED ALWAYS AS (coalesce(served_model, requested_model)) VIRTUAL;

DROP INDEX traces_served_model;
DROP INDEX traces_user;
DROP INDEX traces_status;
DROP INDEX traces_team;
DROP INDEX traces_requested_model;
CREATE INDEX traces_model_ts ON traces (model, ts);
CREATE INDEX traces_user_ts ON traces (user, ts);
CREATE INDEX traces_team_ts ON traces (team, ts);
CREATE INDEX traces_status_ts ON traces (status, ts);

-- Free-text search: words and word prefixes in the request, response and error. The index is
-- filled by the writer between batches (storage/search_index.py), not by a trigger, so a commit
-- on the request path does not pay for tokenising; rows above `indexed_seq` are searched by scan.
CREATE VIRTUAL TABLE traces_fts USING fts5(
    request, response, error, content='traces', content_rowid='seq', tokenize='unicode61'
);
CREATE TABLE traces_fts_state (id INTEGER PRIMARY KEY CHECK (id = 1), indexed_seq INTEGER NOT NULL);
INSERT INTO traces_fts_state (id, indexed_seq) VALUES (1, 0);

-- Deleting traces (retention) must take their words out of the index.
CREATE TRIGGER traces_fts_delete AFTER DELETE ON traces
WHEN OLD.seq <= (SELECT indexed_seq FROM traces_fts_state WHERE id = 1) BEGIN
    INSERT INTO traces_fts (traces_fts, rowid, request, response, error)
    VALUES ('delete', OLD.seq, OLD.request, OLD.response, OLD.error);
END;
