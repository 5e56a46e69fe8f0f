"""Free text typed by a person -> an FTS5 query: every word must appear, the last as a prefix."""

from __future__ import annotations

import re

WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str | None:
    """None when the text has no words (e.g. only punctuation): the caller falls back to a scan."""
    words = WORD.findall(text)
    if not words:
        return None
    quoted = [f'"{word}"' for word in words]
    quoted[-1] += "*"  # the user may still be typing the last word
    return " ".join(quoted)
