"""What a short answer says: the key that agreement and voting compare."""

from __future__ import annotations

import re

_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")
_WORDS = re.compile(r"[^\W_]+")

SHORT_ANSWER_WORDS = 12
"""A reply of at most this many words is a short answer, compared by its key."""


def answer_key(text: str) -> str:
    """What a short answer says, for a vote or an agreement.

    Its last number when it holds one (thousands commas aside), else its
    words, lowercased, punctuation aside.

    Example:
        >>> answer_key("The answer is 1,024."), answer_key("It's Paris!")
        ('1024', 'it s paris')
    """
    numbers: list[str] = _NUMBER.findall(text)
    if numbers:
        return numbers[-1].replace(",", "")
    return " ".join(_WORDS.findall(text.lower()))


def is_short(text: str) -> bool:
    """Whether `text` is a short answer (at most `SHORT_ANSWER_WORDS` words)."""
    return 0 < len(text.split()) <= SHORT_ANSWER_WORDS
