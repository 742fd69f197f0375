"""Self-consistency's vote: which answer most samples give."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from attention_moa_graph._core.answers import answer_key

__all__ = ["answer_key", "majority_answer"]


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
