"""How sure a model was of its answer, in 0..1, for a cascade's escalation.

From token probabilities where the model gives them: the geometric mean of each generated token's
probability (exp of the mean log-probability), the usual "per-token likelihood" of an answer. A
model that hesitates over its content words scores low, whatever its length. A local model gives
each step's top probability (a logits_processor: DESIGN.md); an OpenAI-compatible upstream gives
`logprobs` on request.

Without probabilities (Anthropic's API gives none), `from_text` reads the answer itself: an empty
or cut-off answer, a refusal or a hedge ("I'm not sure", "I don't know") says the model could not
do the job; anything else passes at `PLAIN_TEXT`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

PLAIN_TEXT = 0.75  # an answer with nothing to doubt in its words, from a model that gives no logprobs
_HEDGES = re.compile(
    r"\b(i'?m not (?:sure|certain)|i am not (?:sure|certain)|i don'?t know|i do not know|not enough "
    r"information|i cannot (?:answer|determine|help)|i can'?t (?:answer|determine|help)|unclear|"
    r"as an ai\b|i'?m unable|i am unable|hard to say|it depends)",
    re.IGNORECASE,
)


def from_logprobs(logprobs: Iterable[float]) -> float | None:
    values = [lp for lp in logprobs if lp is not None and math.isfinite(lp)]
    if not values:
        return None
    return math.exp(sum(values) / len(values))


def from_probabilities(probabilities: Iterable[float]) -> float | None:
    return from_logprobs(math.log(p) if p > 0 else -math.inf for p in probabilities)


def from_text(text: str, finish_reason: str | None) -> float:
    stripped = text.strip()
    if not stripped:
        return 0.0
    score = PLAIN_TEXT
    if finish_reason == "length":
        score *= 0.6  # cut off: the answer may lack its conclusion
    if _HEDGES.search(stripped[:2000]):
        score *= 0.4
    return score


def of_openai_logprobs(choice: dict[str, Any]) -> float | None:
    """From an OpenAI choice's `logprobs.content[*].logprob`."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return None
    return from_logprobs(
        item["logprob"]
        for item in content
        if isinstance(item, dict) and isinstance(item.get("logprob"), int | float)
    )
