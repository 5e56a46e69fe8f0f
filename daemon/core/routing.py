"""Routing rules, pure: what a request needs of a model, which tier a score falls in, how a budget
running low caps the tier, a weighted (sticky) pick, the domain of a prompt, and the order of
models by live latency. No I/O, no clock: the stage (pipeline/routing.py) passes what it knows."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# --- what a request needs ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Needs:
    tokens: int  # the prompt's tokens plus the answer's cap
    tools: bool = False
    json: bool = False
    vision: bool = False

    def missing(self, supports: frozenset[str], context_window: int | None) -> str | None:
        """Why a model with these capabilities cannot serve it, or None if it can."""
        if context_window is not None and self.tokens > context_window:
            return f"needs {self.tokens} tokens of context > {context_window}"
        for need in ("tools", "json", "vision"):
            if getattr(self, need) and need not in supports:
                return f"no {need}"
        return None


def needs_of(body: Mapping[str, Any], prompt_tokens: int, answer_tokens: int) -> Needs:
    response_format = body.get("response_format")
    json_mode = isinstance(response_format, dict) and response_format.get("type") in (
        "json_object", "json_schema",
    )  # fmt: skip
    return Needs(
        prompt_tokens + answer_tokens,
        tools=bool(body.get("tools") or body.get("functions")),
        json=json_mode,
        vision=_has_image(body.get("messages") or ()),
    )


def _has_image(messages: Sequence[Any]) -> bool:
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(part, dict) and part.get("type") == "image_url" for part in content
        ):
            return True
    return False


def prompt_text(messages: Sequence[Any]) -> str:
    """What a scorer reads: the last user message's text (the question being asked now)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "\n".join(
                    part.get("text", "")
                    for part in content
                    if isinstance(part, dict) and part.get("type") == "text"
                )
    return ""


# --- tiers ---------------------------------------------------------------------------------


def tier_index(score: float, bounds: Sequence[float | None]) -> int:
    """The first tier whose `below` the score is under; the last tier takes the rest."""
    for index, below in enumerate(bounds):
        if below is not None and score < below:
            return index
    return len(bounds) - 1


def budget_cap(remaining: float | None, rules: Sequence[tuple[float, int]]) -> int | None:
    """The dearest tier allowed when `remaining` (0..1) of the tightest budget is left: the rule
    with the smallest `remaining_below` that still applies wins. None: no cap."""
    if remaining is None:
        return None
    applying = [(below, tier) for below, tier in rules if remaining < below]
    return min(applying)[1] if applying else None


# --- weighted ------------------------------------------------------------------------------


def unit_hash(*parts: str) -> float:
    """A stable number in [0, 1) for `parts`: the same user lands in the same bucket every time."""
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def weighted_pick(weights: Sequence[float], draw: float) -> int:
    """The index whose share of the total covers `draw` in [0, 1)."""
    total = sum(weights)
    point, running = draw * total, 0.0
    for index, weight in enumerate(weights):
        running += weight
        if point < running:
            return index
    return max(range(len(weights)), key=lambda i: weights[i])  # draw at the very top: float rounding


# --- domains -------------------------------------------------------------------------------

DOMAIN_CUES: dict[str, tuple[str, ...]] = {
    "code": (
        "code",
        "function",
        "python",
        "javascript",
        "typescript",
        "java",
        "rust",
        "golang",
        "c++",
        "sql",
        "regex",
        "bug",
        "debug",
        "compile",
        "compiler",
        "stack trace",
        "exception",
        "api",
        "class",
        "method",
        "variable",
        "script",
        "git",
        "docker",
        "json",
        "html",
        "css",
        "algorithm",
        "refactor",
    ),  # fmt: skip
    "math": (
        "equation",
        "integral",
        "derivative",
        "solve",
        "theorem",
        "prove",
        "proof",
        "probability",
        "matrix",
        "algebra",
        "calculus",
        "geometry",
        "polynomial",
        "prime",
        "logarithm",
        "sum of",
    ),  # fmt: skip
    "legal": (
        "contract",
        "lawsuit",
        "liability",
        "statute",
        "court",
        "plaintiff",
        "defendant",
        "attorney",
        "lawyer",
        "legal",
        "law",
        "tenant",
        "landlord",
        "copyright",
        "trademark",
        "gdpr",
        "clause",
        "jurisdiction",
        "negligence",
    ),  # fmt: skip
    "medical": (
        "symptom",
        "symptoms",
        "diagnosis",
        "disease",
        "patient",
        "treatment",
        "medication",
        "dose",
        "dosage",
        "doctor",
        "clinical",
        "blood pressure",
        "infection",
        "pain",
        "allergy",
        "surgery",
        "prescription",
        "vaccine",
    ),  # fmt: skip
    "finance": (
        "tax",
        "taxes",
        "invest",
        "investment",
        "stock",
        "stocks",
        "portfolio",
        "interest rate",
        "loan",
        "mortgage",
        "accounting",
        "revenue",
        "dividend",
        "inflation",
        "budget",
        "bond",
        "etf",
    ),  # fmt: skip
    "creative": (
        "poem",
        "story",
        "lyrics",
        "haiku",
        "novel",
        "fiction",
        "character",
        "plot",
        "limerick",
        "screenplay",
        "rhyme",
    ),  # fmt: skip
}

# Code fences and call syntax say "code" louder than any word.
_CODE_SYNTAX = re.compile(r"```|\bdef \w+\(|\bfunction \w*\(|=>|;\s*$|\w+\(\)", re.MULTILINE)
DOMAIN_TEXT_LIMIT = 4000  # cue words are near the question: a huge paste is read only this far


def cue_pattern(words: Sequence[str]) -> re.Pattern[str]:
    escaped = sorted((re.escape(word.lower()) for word in words), key=len, reverse=True)
    return re.compile(r"(?<![\w+])(?:" + "|".join(escaped) + r")(?![\w+])")


def domain_of(text: str, patterns: Mapping[str, re.Pattern[str]]) -> tuple[str | None, int]:
    """The domain with the most cue words (ties: the first listed), and its count; None if none."""
    head = text[:DOMAIN_TEXT_LIMIT].lower()
    best, best_hits = None, 0
    for domain, pattern in patterns.items():
        hits = len(pattern.findall(head))
        if domain == "code":
            hits += 2 * len(_CODE_SYNTAX.findall(text[:DOMAIN_TEXT_LIMIT]))
        if hits > best_hits:
            best, best_hits = domain, hits
    return best, best_hits


# --- latency -------------------------------------------------------------------------------


def latency_order(figures: Sequence[float | None]) -> list[int]:
    """Indices from the fastest; a model not measured yet comes first, so that it gets measured."""
    return sorted(range(len(figures)), key=lambda i: (figures[i] is not None, figures[i] or 0.0))
