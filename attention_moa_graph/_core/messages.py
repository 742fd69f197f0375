"""Pure prompt assembly: from stage inputs to the messages a model receives."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)

from attention_moa_graph._core.prompts import STOP_SIGNAL, MoAPrompts

NO_HISTORY = "(none: this is the first message of the conversation)"


def fence(kind: str, text: str) -> str:
    """Wrap text in a tag whose name carries a digest of the text.

    The closing tag can only appear inside the text if the text contains its
    own digest, so a model's output cannot close the fence early and pass the
    rest of itself off as instructions.
    """
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    tag = f"{kind}-{digest}"
    return f"<{tag}>\n{text}\n</{tag}>"


_DIGEST = r"(?:[0-9a-f]{4,12}(?:…|\.\.\.)?|…|\.\.\.)"
# The package's fence names: with a digest, and with a number (and maybe one).
_DIGESTED = "conversation|question|reference|own-answer|peer-answer|candidate"
_NUMBERED = "answer|suggestion|round"
_KINDS = rf"(?:{_DIGESTED})-{_DIGEST}|(?:{_NUMBERED})-\d+(?:-{_DIGEST})?"
_FENCE_TAG = re.compile(
    r"[ \t]*</?[ \t]*("
    rf"{_KINDS}"
    r"|own-answer|peer-answer|candidate"
    # Any name with a digest-like hex suffix, after a number or not: models
    # invent fences of their own in the same shape (`</reserve-4d8059a0f26>`,
    # `</response-1-6a5c911c6d95>`). A short suffix must hold a digit and a
    # letter, so that names such as `<app-feed>` or `<item-2024>` stay.
    r"|[a-z][a-z_-]*(?:-\d+)?-(?:[0-9a-f]{8,16}|(?=[0-9]*[a-f])(?=[a-f]*\d)[0-9a-f]{4,7})"
    r")[ \t]*>",
    re.IGNORECASE,
)
# A fence tag of the package's that the token cap cut off, ending the reply.
_CUT_TAG = re.compile(
    rf"\s*</?[ \t]*(?:{_DIGESTED}|{_NUMBERED})(?:-[0-9a-f]*)*\Z", re.IGNORECASE
)
_ANY_TAG = re.compile(r"</?[ \t]*([a-z][\w.:-]*)[ \t]*>", re.IGNORECASE)

FENCE_TAG_LONGEST = 40
"""No fence tag a model could echo is longer; streams hold back at most this."""


def quoted_tags(conversation: Sequence[BaseMessage]) -> frozenset[str]:
    """The tag names the conversation itself writes (lowercased).

    A user may ask for markup (`<item-2024>v</item-2024>`, `<answer-1>`):
    those tags are the user's, and cleaning leaves them in replies.

    Example:
        >>> sorted(quoted_tags([HumanMessage("Wrap it in <answer-1></answer-1>")]))
        ['answer-1']
    """
    found: set[str] = set()
    for message in conversation:
        text = message_text(message)
        if "<" in text:
            found.update(name.lower() for name in _ANY_TAG.findall(text))
    return frozenset(found)


def strip_fences(text: str, keep: Collection[str] = ()) -> str:
    r"""A model's reply without any fence tag of the package's it echoed.

    Small models copy the tags around quoted material (`</round-2-3fa9…>`)
    into their replies; no stage's output, and so no answer, may carry one.
    Tags only (the package's names with a digest or a number, names no
    ordinary text uses, and any name with a digest-like hex suffix, which
    models invent in the same shape) are removed, the text between them kept,
    and the ends stripped; a tag of the package's cut off at the end of the
    reply goes too. Tags named in `keep` (`quoted_tags`: the ones the user
    wrote) stay. A prefix of a reply cleaned this way is a prefix of the
    whole reply cleaned, as long as it ends outside a tag and not in white
    space (which lets streams clean).

    Example:
        >>> strip_fences("Paris. </round-2-3fa94c0d1e2b>")
        'Paris.'
        >>> strip_fences("7 days.\n<question-ee432930b0")
        '7 days.'
    """
    if "<" in text:

        def drop(tag: re.Match[str]) -> str:
            return tag.group(0) if tag.group(1).lower() in keep else ""

        text = _CUT_TAG.sub("", _FENCE_TAG.sub(drop, text))
    return text.strip()


def clean_reply(text: str, task: Mapping[str, Any]) -> str:
    """A stage reply cleaned of fence tags, the user's own tags kept."""
    return strip_fences(text, quoted_tags(task.get("messages") or ()))


def message_text(message: BaseMessage) -> str:
    """The text of a message, whatever shape its content has."""
    return str(message.text)


def latest_turn(messages: Sequence[AnyMessage]) -> int:
    """The index of the latest user message.

    Usually the last message; in an agent loop, tool calls and their results
    follow it.
    """
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return index
    return len(messages) - 1


def transcript_lines(messages: Sequence[AnyMessage]) -> list[str]:
    """One `[type] text` line per message; tool calls written out by name."""
    lines = []
    for m in messages:
        text = message_text(m)
        calls = getattr(m, "tool_calls", None) or []
        if calls:
            text += "".join(
                f"\n(calls {c['name']} with "
                f"{json.dumps(c['args'], ensure_ascii=False)}, id {c.get('id')})"
                for c in calls
            )
        lines.append(f"[{m.type}] {text.strip()}")
    return lines


def conversation_transcript(messages: Sequence[AnyMessage]) -> str:
    """Render the turns before the latest user message as a fenced transcript."""
    earlier = messages[: latest_turn(messages)]
    if not earlier:
        return NO_HISTORY
    return fence("conversation", "\n\n".join(transcript_lines(earlier)))


def latest_question(messages: Sequence[AnyMessage]) -> str:
    """The latest user message, fenced."""
    return fence("question", message_text(messages[latest_turn(messages)]))


def with_instructions(
    messages: Sequence[AnyMessage], instructions: str
) -> list[AnyMessage]:
    """Prepend stage instructions as the system message of the conversation.

    A caller's own system message is kept first and the instructions are added
    to it, because several providers accept only one leading system message.
    """
    if messages and isinstance(messages[0], SystemMessage):
        first = messages[0]
        combined = SystemMessage(content=f"{message_text(first)}\n\n{instructions}")
        return [combined, *messages[1:]]
    return [SystemMessage(content=instructions), *messages]


def build_draft_messages(
    prompts: MoAPrompts, messages: Sequence[AnyMessage], reference: str | None
) -> list[AnyMessage]:
    """Layer 1 drafts see the conversation as is; later ones get a reference."""
    if reference is None:
        return list(messages)
    return with_instructions(
        messages, prompts.draft.format(reference=fence("reference", reference))
    )


def after_review_context(
    prompts: MoAPrompts,
    messages: Sequence[AnyMessage],
    own_answer: str,
    request: str,
    note: str | None = None,
) -> list[AnyMessage]:
    """One message: the agent's review context, then what its stage asks.

    Every call an agent makes after drafting begins with the same text (the
    conversation, the latest message, its own draft), so a server or provider
    with a prompt cache (a llama.cpp slot, vLLM, OpenAI, Anthropic) reads
    that part from the cache; the stage's request, and the run's tools note
    for it, come last.
    """
    context = prompts.review_context.format(
        conversation=conversation_transcript(messages),
        question=latest_question(messages),
        own_answer=fence("own-answer", own_answer),
    )
    parts = [context, request, *([note] if note else [])]
    return [HumanMessage(content="\n\n".join(parts))]


def build_cross_attention_messages(
    prompts: MoAPrompts,
    messages: Sequence[AnyMessage],
    own_answer: str,
    peer_answer: str,
    note: str | None = None,
) -> list[AnyMessage]:
    """Critic j sees the conversation, its own draft and its target's draft only."""
    request = prompts.cross_attention.format(
        peer_answer=fence("peer-answer", peer_answer)
    )
    return after_review_context(prompts, messages, own_answer, request, note)


def build_self_attention_messages(
    prompts: MoAPrompts,
    messages: Sequence[AnyMessage],
    own_answer: str,
    note: str | None = None,
) -> list[AnyMessage]:
    """Agent i sees the conversation and its own draft."""
    request = prompts.self_attention.format()
    return after_review_context(prompts, messages, own_answer, request, note)


def build_batched_critique_messages(
    prompts: MoAPrompts,
    messages: Sequence[AnyMessage],
    own_answer: str,
    answers: Sequence[tuple[str, bool]],
    note: str | None = None,
) -> list[AnyMessage]:
    """Critic j sees the conversation, its draft and every draft under review.

    `answers` are (draft, is the critic's own) in target order; they are
    numbered from 1, as the reply's `[[answer N]]` sections are.
    """
    listed = "\n\n".join(
        f"Answer {number}{' (your own)' if own else ''}:\n"
        + fence(f"answer-{number}", defang_markers(text))
        for number, (text, own) in enumerate(answers, start=1)
    )
    request = prompts.batched_critique.format(answers=listed)
    return after_review_context(
        prompts, messages, defang_markers(own_answer), request, note
    )


SECTION_MARKER = "[[answer {number}]]"
"""The line that opens a batched critique's section for answer `number`.

A marker of the package's own rather than a Markdown heading: answers under
review contain headings of every kind, and a critic that quotes one must not
open a section with it.
"""

_MARKER_LINE = re.compile(
    r"[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*)?\[\[[ \t]*answer[ \t]+(\d+)[ \t]*\]\]"
    r"(?:\*\*)?[ \t]*:?[ \t]*",
    re.IGNORECASE,
)
_MARKER_START = re.compile(r"\[\[(?=[ \t]*answer[ \t]+\d)", re.IGNORECASE)
_CODE_FENCE = re.compile(r"[ \t]*(?:```|~~~)")


def defang_markers(text: str) -> str:
    """`text` with no section marker in it (`[[answer 2]]` becomes `[ [answer 2]]`).

    Applied to the answers a batched critic reviews, so that a critic quoting
    an answer cannot open a section the answer wrote.
    """
    return _MARKER_START.sub("[ [", text)


def split_batched_critique(reply: str, count: int) -> list[str]:
    """The suggestions for each of `count` answers from a batched critique.

    Sections start at marker lines (`[[answer N]]`, alone on their line, also
    as a heading or in bold); markers inside code blocks do not count, and the
    first section for a number wins. An answer without a section of its own
    (a reply that ignored the format) gets the whole reply: the suggestions are
    kept, at the cost of some meant for other answers.
    """
    sections: dict[int, str] = {}
    number: int | None = None
    body: list[str] = []
    in_code = False

    def close() -> None:
        text = "\n".join(body).strip()
        if number is not None and 1 <= number <= count and text:
            sections.setdefault(number, text)

    for line in reply.splitlines():
        if _CODE_FENCE.match(line):
            in_code = not in_code
        marker = None if in_code else _MARKER_LINE.fullmatch(line)
        if marker:
            close()
            number, body = int(marker.group(1)), []
        else:
            body.append(line)
    close()
    return [sections.get(n, reply.strip()) for n in range(1, count + 1)]


def build_refine_messages(
    prompts: MoAPrompts,
    messages: Sequence[AnyMessage],
    draft: str,
    suggestions: Sequence[str],
    note: str | None = None,
) -> list[AnyMessage]:
    """Agent i sees its draft and the suggestions addressed to it, unattributed."""
    listed = "\n\n".join(
        fence(f"suggestion-{index}", text)
        for index, text in enumerate(suggestions, start=1)
    )
    request = prompts.refine.format(suggestions=listed or "(no suggestions were made)")
    return after_review_context(prompts, messages, draft, request, note)


def build_summary_messages(
    prompts: MoAPrompts, messages: Sequence[AnyMessage], answers: Sequence[str]
) -> list[AnyMessage]:
    """The summary agent sees the answers anonymously, then the conversation."""
    listed = "\n\n".join(fence("candidate", text) for text in answers)
    return with_instructions(messages, prompts.summary.format(responses=listed))


def build_verdict_messages(
    prompts: MoAPrompts,
    messages: Sequence[AnyMessage],
    previous: str,
    latest: str,
    layer: int,
) -> list[AnyMessage]:
    """The stop decision sees the question, the previous round and the latest.

    The rounds are fenced with their numbers (`round-<layer-1>`, `round-<layer>`).
    """
    text = prompts.verdict.format(
        question=latest_question(messages),
        previous=fence(f"round-{layer - 1}", previous),
        latest=fence(f"round-{layer}", latest),
    )
    return [HumanMessage(content=text)]


def build_residual_messages(
    prompts: MoAPrompts,
    messages: Sequence[AnyMessage],
    rounds: Sequence[str],
    offer_signal: bool,
) -> list[AnyMessage]:
    """The residual agent sees every earlier layer output plus the new summary.

    With `offer_signal` its prompt lets it reply with the stop signal instead.
    """
    listed = "\n\n".join(
        fence(f"round-{index}", text) for index, text in enumerate(rounds, start=1)
    )
    if offer_signal:
        instructions = prompts.residual_early_stop.format(
            rounds=listed, stop_signal=STOP_SIGNAL
        )
    else:
        instructions = prompts.residual.format(rounds=listed)
    return with_instructions(messages, instructions)
