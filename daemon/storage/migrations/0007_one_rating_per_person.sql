-- One rating per person per trace: rating again replaces it. Older duplicates keep their latest.
DELETE FROM feedback WHERE rated_by IS NOT NULL AND id NOT IN (
    SELECT max(id) FROM feedback WHERE rated_by IS NOT NULL GROUP BY trace_id, rated_by
);
CREATE UNIQUE INDEX feedback_once ON feedback (trace_id, rated_by);
