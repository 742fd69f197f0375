"""The stop decision: the verdict's strict parse, converged rounds, the signal.

With `stop_decision="verdict"` (the default) the loop stops after a layer
whose summary repeats the previous round (`converged`) or whose verdict call
answers `{"better": false}` (`parse_verdict`). With `"signal"` the residual
reply itself may be the stop signal (`is_stop_signal`). With the `agreement`
option a layer whose drafts agree ends the run too (`drafts_agree`).
"""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Any

from attention_moa_graph._core.answers import answer_key, is_short
from attention_moa_graph._core.prompts import STOP_SIGNAL

_NUMBERED = re.compile(r"\d")

_MARKUP = set("*_~`")


def _decorative(char: str) -> bool:
    return char.isspace() or char in _MARKUP or unicodedata.category(char)[0] == "P"


def _normalised(text: str) -> str:
    """Without whitespace, markdown emphasis and punctuation at the ends, casefolded.

    Compatibility forms are folded (NFKC: full-width letters, ligatures) and
    invisible format characters (zero-width spaces and joiners) dropped first,
    so a signal dressed in either still counts.
    """
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    start, end = 0, len(text)
    while start < end and _decorative(text[start]):
        start += 1
    while end > start and _decorative(text[end - 1]):
        end -= 1
    return text[start:end].casefold()


_SIGNAL = _normalised(STOP_SIGNAL)


def is_stop_signal(reply: str) -> bool:
    r"""Whether a reply is the stop signal, not text that mentions it.

    A reply is the signal when it is nothing else, or when its first line is
    the signal (whatever follows is then the model restating the answer it
    found no better: the signal decides, the rest is no new answer).

    Example:
        >>> is_stop_signal("**NO_FURTHER_IMPROVEMENT.**")
        True
        >>> is_stop_signal("NO_\u200bFURTHER_IMPROVEMENT")  # a zero-width space
        True
        >>> is_stop_signal("NO_FURTHER_IMPROVEMENT\n\nThe answer is 4.")
        True
        >>> is_stop_signal("Round 2 adds nothing, so: NO_FURTHER_IMPROVEMENT")
        False
    """
    first = reply.strip().split("\n", 1)[0]
    return _normalised(reply) == _SIGNAL or _normalised(first) == _SIGNAL


def could_be_stop_signal(start: str) -> bool:
    """Whether a reply beginning with `start` is, or may yet be, the signal."""
    return _SIGNAL.startswith(_normalised(start)) or is_stop_signal(start)


def without_signal_lines(text: str) -> str:
    r"""`text` without the lines that are the stop signal alone.

    Example:
        >>> without_signal_lines("The answer is 4.\n\nNO_FURTHER_IMPROVEMENT")
        'The answer is 4.'
    """
    kept = [line for line in text.split("\n") if _normalised(line) != _SIGNAL]
    return "\n".join(kept).strip()


VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"better": {"type": "boolean"}},
    "required": ["better"],
    "additionalProperties": False,
}
"""The verdict's reply, enforced by servers that take a JSON schema."""

_CODE_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def parse_verdict(reply: str) -> bool | None:
    """Whether a verdict says the latest round is better; None if it says neither.

    Strict: the reply must be the JSON object `{"better": true|false}` and
    nothing else (a markdown code fence around it is allowed).

    Example:
        >>> parse_verdict('{"better": false}'), parse_verdict("Not better.")
        (False, None)
    """
    text = reply.strip()
    fenced = _CODE_FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or set(value) != {"better"}:
        return None
    better = value["better"]
    return better if isinstance(better, bool) else None


CONVERGED_SIMILARITY = 0.95
"""How alike, word for word, two rounds must be to count as one answer repeated."""


def _words(text: str) -> list[str]:
    return [w for w in (_normalised(w) for w in text.split()) if w]


def converged(previous: str, latest: str) -> bool:
    """Whether the latest round repeats the previous one (it cannot be better).

    Compared word by word, ignoring case, punctuation at word ends and spacing.

    Example:
        >>> converged("The capital is Paris.", "the capital is  Paris")
        True
        >>> converged("I am not sure.", "The capital of France is Paris.")
        False
    """
    before, after = _words(previous), _words(latest)
    if before == after:
        return True
    ratio = SequenceMatcher(None, before, after, autojunk=False).ratio()
    return ratio >= CONVERGED_SIMILARITY


def drafts_agree(drafts: Sequence[str], similarity: float) -> bool:
    """Whether a layer's drafts agree (the `agreement` option's rule).

    Two drafts or more agree when their words are the same (case, spacing and
    punctuation at word ends aside); when all are short answers (at most
    `SHORT_ANSWER_WORDS` words) that hold numbers and end on the same one
    (`answer_key`); or when every two of them are at least `similarity` alike
    word for word (difflib's ratio, 0 to 1).

    Example:
        >>> drafts_agree(["Paris.", "paris", "PARIS!"], 1.0)
        True
        >>> drafts_agree(["The answer is 1,024.", "1024", "It is 1024."], 1.0)
        True
        >>> drafts_agree(["The capital is Paris.", "It is Lyon."], 0.8)
        False
    """
    words = [_words(draft) for draft in drafts]
    if len(words) < 2 or not words[0]:
        return False
    if all(w == words[0] for w in words):
        return True
    if all(is_short(draft) for draft in drafts):
        keys = {answer_key(draft) for draft in drafts}
        if len(keys) == 1 and _NUMBERED.search(drafts[0]):
            return True
    return all(
        SequenceMatcher(None, a, b, autojunk=False).ratio() >= similarity
        for a, b in itertools.combinations(words, 2)
    )
