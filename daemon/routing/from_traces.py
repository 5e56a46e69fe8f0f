"""Labelled rows for `llmops route fit --from-traces`: a complexity route's own rated calls.

A rating says something about the need for a stronger model only where the cheapest tier served:
its answer rated good (4-5 stars, a thumbs up) is a prompt the weak model handles (weak and strong
right), rated bad (1-2 stars, a thumbs down) one that needed more (weak wrong, strong assumed
right). A dearer tier's good answer says nothing of what the cheap one would have done, so it is
left out; its bad answer is a prompt no tier handled (both wrong). Three stars say neither. Whole
users are held out in validation (the groups), as subjects are for the shared file. Judge scores
join the ratings once LLM-as-judge lands.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import orjson

from daemon.core.routing import prompt_text
from daemon.routing.fit import Rows

# The latest rating of each rated call of the route (one rating per person is kept; the newest wins).
_RATED = """
SELECT t.request, t.route_tier, coalesce(t.user, t.key_id, '-'), f.kind, f.score
FROM traces t JOIN feedback f ON f.id = (SELECT max(id) FROM feedback WHERE trace_id = t.id)
WHERE t.route = ? AND t.status = 'ok'
"""


def label(cheapest: bool, kind: str, score: float) -> tuple[bool, bool] | None:
    """(weak right, strong right) for a rated call, or None when the rating says nothing."""
    good = score > 0 if kind == "thumbs" else score >= 4
    bad = score < 0 if kind == "thumbs" else score <= 2
    if cheapest:
        return (True, True) if good else (False, True) if bad else None
    return (False, False) if bad else None


def rows_from_traces(db: Path, route: str, cheapest_tier: str) -> Rows:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        found = conn.execute(_RATED, (route,)).fetchall()
    finally:
        conn.close()
    prompts, weak, strong, groups = [], [], [], []
    for request, tier, who, kind, score in found:
        labelled = label(tier == cheapest_tier, kind, score)
        text = prompt_text(orjson.loads(request).get("messages") or []) if request else ""
        if labelled is None or not text:
            continue
        prompts.append(text)
        weak.append(labelled[0])
        strong.append(labelled[1])
        groups.append(str(who))
    return Rows(prompts, np.array(weak, dtype=bool), np.array(strong, dtype=bool), groups)
