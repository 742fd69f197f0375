"""Self-consistency's vote: which answer most samples give."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")
_WORDS = re.compile(r"[^\W_]+")


def answer_key(text: str) -> str:
    """What a short answer says, for a vote.

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


def majority_answer(answers: Sequence[str]) -> str:
    """The first answer among those whose `answer_key` most answers share.

    Example:
        >>> majority_answer(["It is 12.", "13", "Twelve: 12", "13."])
        'It is 12.'
    """
    keys = [answer_key(answer) for answer in answers]
    counts = Counter(keys)
    best = max(counts.values())
    winner = next(key for key in keys if counts[key] == best)
    return answers[keys.index(winner)]
