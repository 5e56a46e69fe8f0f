-- The ledger follows the traces instead of being written by every call: a row holds its window's
-- spent amount through trace `through_seq`, and whoever reads it (a lease grant, `budget show`)
-- adds the subject's traces committed since. Every row so far counts every trace so far.
ALTER TABLE budget_ledger ADD COLUMN through_seq INTEGER NOT NULL DEFAULT 0;
UPDATE budget_ledger SET through_seq = (SELECT coalesce(max(seq), 0) FROM traces);
