"""The stop signal: whether a residual reply is it, or could still become it."""

from __future__ import annotations

import unicodedata

from attention_moa_graph._core.prompts import STOP_SIGNAL

_MARKUP = set("*_~`")


def _decorative(char: str) -> bool:
    return char.isspace() or char in _MARKUP or unicodedata.category(char)[0] == "P"


def _normalised(text: str) -> str:
    """Without whitespace, markdown emphasis and punctuation at the ends, casefolded."""
    start, end = 0, len(text)
    while start < end and _decorative(text[start]):
        start += 1
    while end > start and _decorative(text[end - 1]):
        end -= 1
    return text[start:end].casefold()


_SIGNAL = _normalised(STOP_SIGNAL)


def is_stop_signal(reply: str) -> bool:
    """Whether a residual reply is the stop signal itself, not text mentioning it.

    Example:
        >>> is_stop_signal("**NO_FURTHER_IMPROVEMENT.**")
        True
        >>> is_stop_signal("Round 2 adds nothing, so: NO_FURTHER_IMPROVEMENT")
        False
    """
    return _normalised(reply) == _SIGNAL


def could_be_stop_signal(start: str) -> bool:
    """Whether a reply beginning with `start` may still turn out to be the signal."""
    return _SIGNAL.startswith(_normalised(start))
