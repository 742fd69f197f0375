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

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage

from attention_moa_graph._core.prompts import STOP_SIGNAL
from attention_moa_graph.testing import ScriptedChatModel
from attention_moa_graph.testing.fake_server.tools import instance_of, mentions, quoted

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


_TOOLS_NOTE = "Tools are available for this request"


def _tool_results(messages: Sequence[BaseMessage], prompt: str) -> list[str]:
    """The results of the calls made for this request, as a stage sees them."""
    native = [str(m.text) for m in messages if isinstance(m, ToolMessage)]
    return native or _fenced("tool-result", prompt)


def _tool_step(
    who: str, messages: Sequence[BaseMessage], prompt: str, stage: str
) -> str | None:
    """With tools: the calls the question needs, or an answer from their results.

    The demo calls every tool the user's latest message mentions (by name, or
    a word of its name), string arguments taken from the phrases it quotes.
    """
    if _TOOLS_NOTE not in prompt:
        return None
    results = _tool_results(messages, prompt)
    if results:
        return f"{who}'s {stage} from the tool results: " + "; ".join(results)
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    fenced = _fenced("question", prompt)  # a stage that quotes the question
    question = fenced[0] if fenced else str(humans[-1].text) if humans else ""
    catalogue = next(iter(_fenced("tools", prompt)), "[]")
    phrases = quoted(question)  # shared out in order across the calls
    calls = []
    for tool in json.loads(catalogue):
        if not mentions(question, tool["name"]):
            continue
        parameters = tool.get("parameters") or {}
        wanted = sum(
            1
            for p in (parameters.get("properties") or {}).values()
            if p.get("type") == "string"
        )
        arguments = instance_of(parameters, "x", phrases[:wanted])
        phrases = phrases[wanted:]
        calls.append(
            {
                "name": tool["name"],
                "arguments": arguments,
                "reason": f"the question asks what {tool['name']} tells",
            }
        )
    if not calls:
        return None
    return (
        f"{who}'s {stage}: the question needs tools.\n"
        f"```tool_calls\n{json.dumps(calls, ensure_ascii=False)}\n```"
    )


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
    if candidates and _TOOLS_NOTE in prompt:
        # The summary makes the calls its candidates propose (the first
        # block), or answers from the results.
        results = _tool_results(messages, prompt)
        if results:
            return f"{who}'s answer from the tool results: " + "; ".join(results)
        blocks = [c for c in candidates if "```tool_calls" in c]
        if blocks:
            return f"{who} makes the calls the answers agree on.\n" + (
                "```tool_calls" + blocks[0].split("```tool_calls", 1)[1]
            )
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
    refining = "<suggestion-" in prompt or "(no suggestions were made)" in prompt
    if "<own-answer-" in prompt and not refining:
        return (
            f"{who}: my draft should state its assumptions and add "
            f"{_pick(persona, question, 'self')}."
        )
    if "<own-answer-" in prompt:
        step = _tool_step(who, messages, prompt, "refined answer")
        if step is not None:
            return step
        count = len(re.findall(r"<suggestion-\d+-", prompt))
        later = any("previous round" in d for d in _fenced("own-answer", prompt))
        return (
            f'{who}\'s refined answer to "{question}", after weighing {count} '
            f"suggestions: now also covers {_pick(persona, question, 'refine')}."
            + (" It builds on the previous round." if later else "")
        )
    step = _tool_step(who, messages, prompt, "draft")
    if step is not None:
        return step
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
