"""Guards that hold for any model: loops trimmed, cut answers never passed on.

Small models repeat themselves ("The answer is: The answer is: ...") and
long replies stop at their token cap mid-sentence. Every stage reply is
trimmed at its first repetition before another agent reads it, and marked in
its layer's record (`flags`): `repeated` when it was trimmed, `cut` when the
model stopped at its cap. The answer a run gives is the last layer's output,
trimmed; if that output was cut, it ends at its last complete sentence; if
nothing complete is left, the run's other candidates are tried in order (see
`final_answer`).

The rules are exact and tested:

- A unit is a sentence (ended by `.`, `!` or `?` and white space) or a line.
  A reply repeats itself from the first unit of three or more words that it
  already holds earlier (letters and digits compared, case ignored).
- Within a unit, a run of one to eight words said three or more times in a
  row, six or more words in all, is a loop too ("shorter, shorter, shorter,
  shorter, shorter, shorter"): the unit is cut where the run is said again.
- A trimmed reply is always a prefix of the reply, so a stream can apply the
  same rule as it goes (`settled`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from langchain_core.messages import BaseMessage

from attention_moa_graph._core.stop import is_stop_signal, without_signal_lines

MIN_UNIT_WORDS = 3
"""Shorter units ("Yes.", "1.") may repeat without being a loop."""
MAX_RUN_WORDS = 8
MIN_RUN_REPEATS = 3
MIN_RUN_WORDS = 6

_UNIT_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?][\"')\]*_`]*\s*$|```\s*$")

CUT_REASONS = frozenset({"length", "max_tokens", "MAX_TOKENS"})
"""`finish_reason` / `stop_reason` values that mean the reply hit its cap
(OpenAI, llama.cpp and vLLM: `length`; Anthropic: `max_tokens`)."""


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _units(text: str) -> list[tuple[int, int]]:
    """(start, end) of each unit of `text`, in order."""
    spans, start = [], 0
    for end in _UNIT_END.finditer(text):
        spans.append((start, end.start()))
        start = end.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def _run_cut(text: str) -> int | None:
    """Where a unit should end if a word run loops in it, else None."""
    matches = list(_WORD.finditer(text))
    words = [m.group().lower() for m in matches]
    for size in range(1, MAX_RUN_WORDS + 1):
        for first in range(len(words) - size * MIN_RUN_REPEATS + 1):
            run = words[first : first + size]
            repeats = 1
            while words[first + repeats * size : first + (repeats + 1) * size] == run:
                repeats += 1
            if repeats >= MIN_RUN_REPEATS and repeats * size >= MIN_RUN_WORDS:
                return matches[first + size].start()  # where it is said again
    return None


def settled(text: str, near_cap: bool = False) -> str:
    """The part of a reply still being written that no later text can take back.

    Its finished units, trimmed at a repetition; then, of the unit being
    written, its finished words up to any that may be starting a repetition:
    words that begin an earlier unit again, or that say again the words just
    before them (a run that may become a loop). `near_cap`: the reply may stop
    at its cap mid-sentence, so the unit being written is held back whole.
    """
    ends = list(_UNIT_END.finditer(text))
    start = ends[-1].end() if ends else 0
    finished, repeated = trim_repetition(text[: ends[-1].start()] if ends else "")
    head = finished.rstrip()
    if repeated or near_cap:
        return head
    tail = text[start:]
    matches = list(_WORD.finditer(tail))
    if matches and matches[-1].end() == len(tail):
        matches.pop()  # the last word may not be finished
    words = [m.group().lower() for m in matches]
    earlier = [tuple(_words(finished[s:e])) for s, e in _units(finished)]
    if words and any(
        len(unit) >= MIN_UNIT_WORDS and unit[: len(words)] == tuple(words)
        for unit in earlier
    ):
        return head
    hold = next(
        (
            j
            for j in range(1, len(words))
            for i in range(max(0, j - MAX_RUN_WORDS), j)
            if words[j:] == words[i : i + len(words) - j]
        ),
        len(words),
    )
    if hold < len(words):
        return text[: start + matches[hold].start()].rstrip()
    if matches:
        return text[: start + matches[-1].end()].rstrip() if hold else head
    return head


def trim_repetition(text: str) -> tuple[str, bool]:
    """`text` up to its first repetition (see the rules above), and whether it had one.

    Example:
        >>> trim_repetition("It is Paris. It is Paris. It is Paris.")
        ('It is Paris.', True)
        >>> trim_repetition("Paris is the capital. Lyon is not.")
        ('Paris is the capital. Lyon is not.', False)
    """
    seen: set[tuple[str, ...]] = set()
    for start, end in _units(text):
        unit = text[start:end]
        cut = _run_cut(unit)
        if cut is not None:
            return text[: start + cut].rstrip(), True
        words = tuple(_words(unit))
        if len(words) >= MIN_UNIT_WORDS:
            if words in seen:
                return text[:start].rstrip(), True
            seen.add(words)
    return text, False


def ends_a_sentence(text: str) -> bool:
    """Whether `text` ends at the end of a sentence (or of a code block)."""
    return bool(_SENTENCE_END.search(text))


def last_whole_sentences(text: str) -> str:
    """`text` without its unfinished last sentence ('' if it has no whole one)."""
    if ends_a_sentence(text):
        return text
    ends = [m.end() for m in re.finditer(r"[.!?][\"')\]]*(?=\s)", text)]
    return text[: ends[-1]].rstrip() if ends else ""


def was_cut(metadata: Mapping[str, object]) -> bool:
    """Whether a reply's response metadata says it stopped at its token cap."""
    for key in ("finish_reason", "stop_reason"):
        if metadata.get(key) in CUT_REASONS:
            return True
    return False


def flag_names(repeated: bool, cut: bool) -> list[str]:
    """The flags of one reply, for its layer's record."""
    return [name for name, on in (("repeated", repeated), ("cut", cut)) if on]


def guard_reply(reply: BaseMessage, text: str) -> tuple[str, list[str]]:
    """A stage reply's text as others may read it, and its flags.

    Tool calls written out in text are left whole.
    """
    cut = was_cut(reply.response_metadata)
    if "```tool_calls" in text:
        return text, flag_names(False, cut)
    trimmed, repeated = trim_repetition(text)
    return trimmed or text, flag_names(repeated, cut)


def final_answer(candidates: Iterable[tuple[str, Sequence[str]]]) -> str:
    """The run's answer from its candidates, best first: (text, flags) pairs.

    The first candidate that is complete wins: not empty, not the stop
    signal, trimmed of any repetition, and, if it was cut at its cap, ended
    at its last whole sentence (a candidate with no whole sentence left is
    not complete). With none complete, the first non-empty one, trimmed.

    Example:
        >>> final_answer([("The sky is blue because the", ["cut"]),
        ...               ("Sunlight scatters.", [])])
        'Sunlight scatters.'
    """
    fallback = None
    for text, flags in candidates:
        if is_stop_signal(text):
            continue
        trimmed, _ = trim_repetition(without_signal_lines(text))
        if not trimmed:
            continue
        if fallback is None:
            fallback = trimmed
        whole = last_whole_sentences(trimmed) if "cut" in flags else trimmed
        if whole:
            return whole
    return fallback or ""
