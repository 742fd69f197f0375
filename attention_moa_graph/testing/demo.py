"""The offline `demo:` provider: deterministic, readable replies with no keys.

A demo model cannot answer questions. It recognises which stage is asking (from
the fenced blocks of the default prompts) and replies with a short text that
says what a real model would be doing there, so a run shows the ensemble's flow
end to end. The stop decision judges a round no better once the previous round
was itself a synthesis (and the residual stage, asked for the stop signal,
gives it once it has seen three rounds), so a default three-layer demo run
shows an early stop.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage

from attention_moa_graph._core.prompts import STOP_SIGNAL
from attention_moa_graph.testing import ScriptedChatModel

DEMO_TAG = "[demo]"
"""Starts every demo answer, so no output can pass for a real model's."""

_ASPECTS = (
    "the key definitions",
    "a worked example",
    "the main trade-offs",
    "common pitfalls",
    "the underlying reason",
    "practical next steps",
)


def _fenced(kind: str, text: str) -> list[str]:
    """Bodies of the fenced blocks of one kind, in order."""
    pattern = re.compile(
        rf"<({kind}(?:-\d+)?-[0-9a-f]{{12}})>\n(.*?)\n</\1>", re.DOTALL
    )
    return [body for _, body in pattern.findall(text)]


def _question(messages: Sequence[BaseMessage], prompt: str) -> str:
    fenced = _fenced("question", prompt)
    if fenced:
        text = fenced[0]
    else:
        humans = [m for m in messages if isinstance(m, HumanMessage)]
        text = str(humans[-1].text) if humans else ""
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _pick(persona: str, *salt: str) -> str:
    digest = hashlib.sha256("|".join((persona, *salt)).encode()).digest()
    return _ASPECTS[digest[0] % len(_ASPECTS)]


def demo_reply(persona: str, messages: Sequence[BaseMessage]) -> str:
    """The demo model's reply: a pure function of its persona and prompt."""
    prompt = "\n".join(str(m.text) for m in messages)
    question = _question(messages, prompt)
    who = persona.capitalize()
    rounds = _fenced("round", prompt)
    if rounds and '"better"' in prompt:  # the stop decision: previous, latest
        # From the third round on the previous round is itself a synthesis:
        # the demo judges that nothing more is gained and stops there.
        return json.dumps({"better": "synthesis of" not in rounds[0]})
    if rounds:
        if len(rounds) >= 3:
            return STOP_SIGNAL
        return (
            f'{who}\'s synthesis of {len(rounds)} rounds on "{question}": the '
            "latest round's answer, with the best points of the earlier ones kept."
        )
    candidates = _fenced("candidate", prompt)
    if candidates:
        return (
            f'{who}\'s summary of {len(candidates)} answers to "{question}": '
            f"one reply that keeps what they agree on, including "
            f"{_pick(persona, question, 'summary')}"
            + (
                ", building on the earlier rounds."
                if any("previous round" in c for c in candidates)
                else "."
            )
        )
    reviewed = _fenced("answer", prompt)
    if reviewed:  # a batched critique: one section per answer
        sections = [
            f"[[answer {number}]]\n{who}: this answer would gain from "
            f"{_pick(persona, body, 'cross')}."
            for number, body in enumerate(reviewed, start=1)
        ]
        return f"{who}'s reviews of {len(reviewed)} answers:\n\n" + "\n\n".join(
            sections
        )
    if "<peer-answer-" in prompt:
        return (
            f"{who}: the answer would gain from "
            f"{_pick(persona, prompt, 'cross')}, which my own answer covers."
        )
    if "<own-answer-" in prompt and "<question-" in prompt:
        return (
            f"{who}: my draft should state its assumptions and add "
            f"{_pick(persona, question, 'self')}."
        )
    if "<own-answer-" in prompt:
        count = len(re.findall(r"<suggestion-\d+-", prompt))
        later = any("previous round" in d for d in _fenced("own-answer", prompt))
        return (
            f'{who}\'s refined answer to "{question}", after weighing {count} '
            f"suggestions: now also covers {_pick(persona, question, 'refine')}."
            + (" It builds on the previous round." if later else "")
        )
    if _fenced("reference", prompt):
        return (
            f'{who}\'s new draft on "{question}", building on the previous round '
            f"and adding {_pick(persona, question, 'next')}."
        )
    return (
        f'{who}\'s first draft on "{question}", focused on '
        f"{_pick(persona, question, 'draft')}."
    )


def demo_model(persona: str) -> ScriptedChatModel:
    """A demo chat model for `demo:<persona>`."""

    def reply(messages: Sequence[BaseMessage]) -> str:
        text = demo_reply(persona, messages)
        if text == STOP_SIGNAL or text.startswith('{"better"'):
            return text  # a decision, not an answer: no tag
        return f"{DEMO_TAG} {text}"

    return ScriptedChatModel(
        reply=reply,
        model_name=f"demo:{persona}",
        keep_calls=100,  # a served demo answers for long: memory stays bounded
    )
