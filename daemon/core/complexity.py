"""Prompt complexity for routing: a few general features of the text and a fitted linear scorer.

What it is. `features(text)` measures things that make a prompt hard for a small model whatever
its topic: length, numbers and math notation, code, reasoning and multi-step cues ("calculate",
"how many", "explain"), several sub-questions or statements to judge at once ("Statement 1 |",
"I and II only", "True, False"), negations and exceptions ("NOT", "EXCEPT", "least"), and the
vocabulary (long and content words, sentence length). `ComplexityModel` is a linear model over
those features, standardized and clipped (so a prompt unlike the training data cannot dominate
through one extreme feature), whose raw score is calibrated to 0..1 by the training prompts'
quantiles: `score(text) = 0.3` means 30 % of the training prompts scored lower, so a tier
threshold of 0.3 sends the 30 % least complex prompts to the cheap model.

Why no subject or embedding. Routing is checked on other sets than the one it is fitted on; a
scorer that learns MMLU's subjects (or an embedding of them) ranks well only on subjects it has
seen. The weights are fitted and validated with whole subjects held out
(`daemon/routing/fit.py`); the shipped parameters (`daemon/routing/complexity.json`) come from
`python benchmarks/routing_scorer.py --write-default`, fitted on all rows of
`../shared/data/routing/mmlu_routellm.jsonl`.

Speed. The text features read a bounded head and tail of the text (length features use the whole
length), with bytes operations, set lookups and str.count rather than regex alternations; the
scoring is plain Python over 24 floats (numpy's per-call overhead would cost more than the sums).
Measured on the 2-core dev VM: ~110-165 us a ~1,000-char prompt, ~0.7 ms a 100,000-char one
(`benchmarks/routing_scorer.py` prints it).

Figures (5 folds, whole MMLU subjects held out, pooled): APGR 0.632, CPT(50/80/95 %) 30/66/91 %;
prompt length 0.586, random ~0.5. See `daemon/routing/fit.py` for the target and the sign and
format guards that keep the weights from learning MMLU's quirks.

Pure: numpy and the standard library; the only I/O is `load(path)` reading its JSON.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "routing" / "complexity.json"

HEAD, TAIL = 4000, 2000  # the text features read at most this much of a long prompt
CLIP = 4.0  # standardized features are clipped to +-CLIP before the weights apply

# Speed: words come from one bytes translate+split (ASCII letters, digits, apostrophes); cue words
# are set lookups, cue phrases str.count calls. A Python regex alternation with \\b and IGNORECASE
# costs 50-400 us per 1k chars, so only two cheap regexes remain (math characters, options).
_KEEP = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789'")
_WORDS = bytes(c if c in _KEEP else 32 for c in range(256))
_DIGIT_RUNS = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))
_MATH = re.compile(r"[=^<>|~\\$±×÷√∑∏∫≤≥≠≈∞∈∉⊂⊃⊆∪∩→↔¬∧∨≡·πθλμσΔ∂]")
_OPTION = re.compile(r"^\(?([A-J])[.)] +(.*)$", re.M)


def _words(text: str) -> frozenset[bytes]:
    return frozenset(text.encode().split())


_STOP = _words(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this "
    "that these those which who whom whose what when where how why not no do does did has have had can "
    "could would should will shall may might must i you he she we they them his her their our your my me "
    "him us so than then there here also only very all any each some more most other such into over "
    "about after before between through during under up down out off again further once same too just "
    "following true false"
)
_CALC = _words("calculate compute solve evaluate simplify determine estimate approximately find")
_CALC_PHRASES = (
    b"how many",
    b"how much",
    b"how long",
    b"how far",
    b"what is the value",
    b"what is the probability",
)
_WHY = _words("why explain prove justify derive demonstrate reasoning")
_WHY_PHRASES = (b"show that", b"step by step")
_QUALIFIER = _words("best primarily mainly")
_QUALIFIER_PHRASES = (b"most likely", b"most probably", b"most accurate", b"most appropriate")
_NEGATION = _words("not except least false never incorrect untrue cannot neither nor")
_LOUD = (b" NOT ", b"EXCEPT", b"LEAST", b" FALSE", b"NEVER", b"INCORRECT")
# several claims judged at once: "Statement 1 | ...", "I and II only", numbered sub-questions
_PARTS = tuple(
    p.encode()
    for p in ("statement 1", "scenario 1", "premise 1", "claim 1", " i and ii", " ii and iii", "i, ii")
    + ("\n1. ", "\n2. ", "\n(1)", "\n(2)", "\ni. ", "\nii. ", "\n- ")
)
_CODE = (b"```", b"def ", b"return ", b"print(", b"{", b"==", b"&&", b"||", b"#include", b";\n", b"):\n")
_JUDGEMENTS = ("true", "false", "wrong", "not wrong", "yes", "no", "valid", "invalid", "correct", "incorrect")
_ALL_NONE = (b"of the above", b"all of these", b"none of these", b"both of these")


def _window(text: str) -> str:
    return text if len(text) <= HEAD + TAIL else text[:HEAD] + "\n" + text[-TAIL:]


def _options(window: str) -> tuple[int, list[str]]:
    """Where a multiple-choice prompt's options ("A. ...", "B) ...") start, and their texts; or (-1, [])."""
    found = list(_OPTION.finditer(window))
    letters = "".join(m[1] for m in found)
    start = letters.rfind("AB")  # a run from A: a stray "C. Smith" line is not a set of options
    if start < 0:
        return -1, []
    return found[start].start(), [m[2].strip() for m in found[start:]]


def without_options(text: str) -> str:
    """The prompt without its multiple-choice options (and what follows them), or the prompt."""
    at, _ = _options(text)
    return text[:at].rstrip() if at >= 0 else text


def _is_number(option: str) -> bool:
    head = option.lstrip("$-(")[:1]
    return head.isdigit() or (head == "." and option[1:2].isdigit())


def _compute(text: str) -> list[float]:
    window = _window(text)
    n = max(len(window), 1)
    low = window.lower()
    ascii_low = low.encode("ascii", "ignore")  # bytes: counting in them is several times faster
    words = ascii_low.translate(_WORDS).split()
    nw = max(len(words), 1)
    distinct = set(words)
    at, options = _options(window)
    stem = window[:at] if at >= 0 else window
    stem_low = ascii_low[: len(stem)]  # approximately the stem (non-ASCII characters are dropped)
    option_chars = sum(map(len, options))
    no = max(len(options), 1)
    # type/token on a fixed-size prefix so that it does not just track length
    types = len(distinct) if nw <= 200 else len(set(words[:200]))
    return [
        math.log1p(len(text)),
        math.log1p(text.count(" ") + text.count("\n")),
        sum(map(len, words)) / nw,
        sum(1 for w in words if len(w) >= 10) / nw,
        1.0 - sum(map(_STOP.__contains__, words)) / nw,
        types / min(nw, 200),
        nw / (stem.count(". ") + stem.count("? ") + stem.count(".\n") + 1),
        1.0 - len(ascii_low) / max(len(low), 1),
        (len(ascii_low) - len(ascii_low.translate(None, b"0123456789"))) / n,
        math.log1p(len(ascii_low.translate(_DIGIT_RUNS).split())),
        len(_MATH.findall(window)) / n,
        math.log1p(sum(map(ascii_low.count, _CODE))),
        math.log1p(len(distinct & _CALC) + sum(map(stem_low.count, _CALC_PHRASES))),
        math.log1p(len(distinct & _WHY) + sum(map(stem_low.count, _WHY_PHRASES))),
        math.log1p(len(distinct & _QUALIFIER) + sum(map(stem_low.count, _QUALIFIER_PHRASES))),
        math.log1p(stem.count("?")),
        math.log1p(sum(map(ascii_low.count, _PARTS))),
        math.log1p(sum(map(window.encode("ascii", "ignore").count, _LOUD))),
        math.log1p(len(distinct & _NEGATION)),
        option_chars / n,
        math.log1p(option_chars / no),
        sum(map(_is_number, options)) / no,
        sum("," in o and o.lower().startswith(_JUDGEMENTS) for o in options) / no,
        float(any(map(ascii_low.count, _ALL_NONE))),
    ]


FEATURE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "mean_word_len",
    "long_word_share",
    "content_word_share",
    "type_token",
    "words_per_sentence",
    "non_ascii_share",
    "digit_share",
    "numbers",
    "math_symbol_share",
    "code",
    "calc_cues",
    "why_cues",
    "qualifier_cues",
    "question_marks",
    "multi_part",
    "loud_negation",
    "negation",
    "option_share",
    "option_log_len",
    "numeric_options",
    "judgement_pair_options",
    "all_none_option",
)


def features(text: str) -> np.ndarray:
    return np.asarray(_compute(text), dtype=np.float64)


@dataclass(frozen=True)
class ComplexityModel:
    """`raw = bias + sum(w * clip((x - mean) / scale))`; `score` maps raw to its training quantile."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    quantiles: tuple[float, ...]  # sorted raw scores of the training prompts at evenly spaced ranks
    metrics: dict[str, Any]  # the held-out figures it was shipped with, for the record

    def __post_init__(self) -> None:
        if self.names != FEATURE_NAMES:
            raise ValueError("the parameters were fitted for other features; refit them")
        if not len(self.mean) == len(self.scale) == len(self.weights) == len(self.names):
            raise ValueError("mean, scale and weights must have one value per feature")
        if len(self.quantiles) < 2 or list(self.quantiles) != sorted(self.quantiles):
            raise ValueError("quantiles must be sorted, at least two")

    def _terms(self, text: str) -> list[float]:
        terms = []
        for x, m, s, w in zip(_compute(text), self.mean, self.scale, self.weights, strict=True):
            z = (x - m) / s
            terms.append(w * (CLIP if z > CLIP else -CLIP if z < -CLIP else z))
        return terms

    def raw(self, text: str) -> float:
        return self.bias + math.fsum(self._terms(text))

    def calibrate(self, raw: float) -> float:
        """The share of training prompts with a lower raw score, interpolated between the knots."""
        q = self.quantiles
        i = bisect_right(q, raw)
        if i == 0:
            return 0.0
        if i == len(q):
            return 1.0
        lo, hi = q[i - 1], q[i]
        frac = (raw - lo) / (hi - lo) if hi > lo else 0.0
        return (i - 1 + frac) / (len(q) - 1)

    def score(self, text: str) -> float:
        return self.calibrate(self.raw(text))

    def explain(self, text: str, top: int = 3) -> list[tuple[str, float]]:
        """The features that moved this prompt's raw score most from an average prompt's, signed."""
        ranked = sorted(zip(self.names, self._terms(text), strict=True), key=lambda t: -abs(t[1]))
        return [(name, round(term, 3)) for name, term in ranked[:top]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "bias": self.bias,
            "quantiles": list(self.quantiles),
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComplexityModel:
        return cls(
            names=tuple(data["names"]),
            mean=tuple(float(v) for v in data["mean"]),
            scale=tuple(float(v) for v in data["scale"]),
            weights=tuple(float(v) for v in data["weights"]),
            bias=float(data["bias"]),
            quantiles=tuple(float(v) for v in data["quantiles"]),
            metrics=dict(data.get("metrics", {})),
        )


def load(path: Path | str) -> ComplexityModel:
    return ComplexityModel.from_dict(json.loads(Path(path).read_text()))


@cache
def default_model() -> ComplexityModel:
    """The shipped parameters, read once (on first use, not at import)."""
    return load(DEFAULT_PATH)
