-- Spend over 1M traces in well under 200 ms: a rollup kept by triggers, and two list-filter indices.
--
-- spend_rollup holds hourly sums for each model, user and team, so a 30-day window reads at most
-- 720 rows per key instead of every trace. The key leads the primary key: a window grouped by key
-- reads each key's hours in order, with no sort. (Zones with a :30 or :45 offset see days that
-- start 30 or 45 minutes after their midnight; see daemon/core/spend.py.)
CREATE TABLE spend_rollup (
    dim                   TEXT NOT NULL,     -- model | user | team
    key                   TEXT NOT NULL,
    bucket                INTEGER NOT NULL,  -- unix seconds at the start of a UTC hour
    requests              INTEGER NOT NULL,
    errors                INTEGER NOT NULL,
    prompt_tokens         INTEGER NOT NULL,
    completion_tokens     INTEGER NOT NULL,
    cost_usd              REAL NOT NULL,
    shadow_cost_usd       REAL NOT NULL,
    local_cost_usd        REAL NOT NULL,     -- cost of calls that have a shadow (local) price
    PRIMARY KEY (dim, key, bucket)
) WITHOUT ROWID;

CREATE TRIGGER traces_spend_insert AFTER INSERT ON traces BEGIN
    INSERT INTO spend_rollup (dim, key, bucket, requests, errors, prompt_tokens, completion_tokens,
                              cost_usd, shadow_cost_usd, local_cost_usd)
    SELECT d.dim, d.key, CAST(NEW.ts AS INTEGER) / 3600 * 3600, 1, NEW.status != 'ok', NEW.prompt_tokens,
           NEW.completion_tokens, NEW.cost_usd, NEW.shadow_cost_usd,
           CASE WHEN NEW.shadow_cost_usd > 0 THEN NEW.cost_usd ELSE 0 END
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
        local_cost_usd = spend_rollup.local_cost_usd + excluded.local_cost_usd;
END;

-- Retention (deleting old traces) keeps the rollup true.
CREATE TRIGGER traces_spend_delete AFTER DELETE ON traces BEGIN
    UPDATE spend_rollup SET
        requests = requests - 1,
        errors = errors - (OLD.status != 'ok'),
        prompt_tokens = prompt_tokens - OLD.prompt_tokens,
        completion_tokens = completion_tokens - OLD.completion_tokens,
        cost_usd = cost_usd - OLD.cost_usd,
        shadow_cost_usd = shadow_cost_usd - OLD.shadow_cost_usd,
        local_cost_usd = local_cost_usd - CASE WHEN OLD.shadow_cost_usd > 0 THEN OLD.cost_usd ELSE 0 END
    WHERE bucket = CAST(OLD.ts AS INTEGER) / 3600 * 3600 AND (
        (dim = 'model' AND key = coalesce(OLD.served_model, OLD.requested_model, '(none)'))
        OR (dim = 'user' AND key = coalesce(OLD.user, '(none)'))
        OR (dim = 'team' AND key = coalesce(OLD.team, '(no team)')));
    DELETE FROM spend_rollup WHERE requests <= 0 AND bucket = CAST(OLD.ts AS INTEGER) / 3600 * 3600;
END;

-- Traces recorded before this migration.
INSERT INTO spend_rollup
SELECT 'model', coalesce(served_model, requested_model, '(none)'), CAST(ts AS INTEGER) / 3600 * 3600, count(*), sum(status != 'ok'), sum(prompt_tokens),
       sum(completion_tokens), sum(cost_usd), sum(shadow_cost_usd),
       sum(CASE WHEN shadow_cost_usd > 0 THEN cost_usd ELSE 0 END)
FROM traces GROUP BY 2, 3;
INSERT INTO spend_rollup
SELECT 'user', coalesce(user, '(none)'), CAST(ts AS INTEGER) / 3600 * 3600, count(*), sum(status != 'ok'), sum(prompt_tokens),
       sum(completion_tokens), sum(cost_usd), sum(shadow_cost_usd),
       sum(CASE WHEN shadow_cost_usd > 0 THEN cost_usd ELSE 0 END)
FROM traces GROUP BY 2, 3;
INSERT INTO spend_rollup
SELECT 'team', coalesce(team, '(no team)'), CAST(ts AS INTEGER) / 3600 * 3600, count(*), sum(status != 'ok'), sum(prompt_tokens),
       sum(completion_tokens), sum(cost_usd), sum(shadow_cost_usd),
       sum(CASE WHEN shadow_cost_usd > 0 THEN cost_usd ELSE 0 END)
FROM traces GROUP BY 2, 3;

-- /admin/traces filters by team and by requested model (the OR with served_model) need these to
-- stay fast when the value is rare.
CREATE INDEX traces_team ON traces (team, seq);
CREATE INDEX traces_requested_model ON traces (requested_model, seq);
