"""Bad configuration fails at build time; bad input fails before any model call.

Every error must say how to fix the problem, so each case checks the message.
"""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from attention_moa_graph import (
    DEFAULT_PROMPTS,
    MoAContext,
    MoAInputError,
    MoAPrompts,
    Proposer,
    create_attention_moa,
)
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import fake_agents

pytestmark = pytest.mark.anyio

TWO = ["demo:a", "demo:b"]

BAD_BUILDS = [
    ("no proposers", dict(proposers=[]), "at least one model"),
    ("a bare string", dict(proposers="openai:gpt-4.1-mini"), "Wrap a single model"),
    (
        "not a model",
        dict(proposers=[42, "demo:b"]),
        "proposers\\[0\\].*chat model instance",
    ),
    ("empty spec", dict(proposers=["", "demo:b"]), "provider:model"),
    ("empty demo name", dict(proposers=["demo:", "demo:b"]), "demo:alpha"),
    (
        "unknown provider",
        dict(proposers=["nosuchprovider:m1", "demo:b"]),
        "cannot resolve model 'nosuchprovider:m1': LangChain knows no provider "
        "'nosuchprovider'[^\n]*$",  # one line, not LangChain's list of providers
    ),
    (
        "no provider",
        dict(proposers=["gpt-5-turbo-xyz", "demo:b"]),
        "'gpt-5-turbo-xyz' names no provider.*'openai:gpt-5-turbo-xyz'",
    ),
    ("no model name", dict(proposers=["openai:", "demo:b"]), "must follow the"),
    (
        "duplicate names",
        dict(proposers=[Proposer("x", "demo:a"), Proposer("x", "demo:b")]),
        "unique.*Proposer\\(name=",
    ),
    (
        "clashing default name",
        dict(proposers=["demo:a", Proposer("proposer_0", "demo:b")]),
        "unique",
    ),
    (
        "invalid name",
        dict(proposers=[Proposer("has space", "demo:a"), "demo:b"]),
        "invalid agent name",
    ),
    ("one agent cross-attending", dict(proposers=["demo:a"]), "cross_attention=False"),
    ("too many agents", dict(proposers=[f"demo:{i}" for i in range(17)]), "at most 16"),
    ("zero layers", dict(max_layers=0), "from 1 to 32"),
    ("too many layers", dict(max_layers=1000), "from 1 to 32"),
    ("layers as text", dict(max_layers="3"), "whole number"),
    ("layers as bool", dict(max_layers=True), "whole number"),
    ("switch as text", dict(early_stopping="yes"), "True or False"),
    ("bad aggregator", dict(aggregator=None), "aggregator.*provider:model"),
    ("bad residual model", dict(residual_model="nosuchprovider:x"), "residual_model"),
    ("temperature too high", dict(temperature=5), "from 0 to 2"),
    ("unknown role temperature", dict(temperatures={"judge": 0.2}), "no roles"),
    ("prompts of the wrong type", dict(prompts={"summary": "x"}), "MoAPrompts"),
    ("retry policy of the wrong type", dict(retry_policy=3), "RetryPolicy"),
    ("empty name", dict(name=""), "non-empty"),
]


@pytest.mark.parametrize("case", BAD_BUILDS, ids=[c[0] for c in BAD_BUILDS])
def test_bad_configuration_is_rejected_at_build_time(case):
    _, overrides, message = case
    kwargs = {"proposers": TWO, "aggregator": "demo:chair", **overrides}
    proposers = kwargs.pop("proposers")
    with pytest.raises(ValueError, match=message):
        create_attention_moa(proposers, **kwargs)


def test_a_prompt_missing_a_placeholder_is_rejected():
    with pytest.raises(ValueError, match="exactly the placeholders.*peer_answer"):
        dataclasses.replace(DEFAULT_PROMPTS, cross_attention="Review {own_answer}.")
    with pytest.raises(ValueError, match="literal braces"):
        MoAPrompts(summary="{responses} {")


def test_a_known_provider_without_its_package_says_what_to_install():
    # langchain-xai is no dependency of this project, so it is not installed.
    assert importlib.util.find_spec("langchain_xai") is None
    with pytest.raises(ValueError, match="not installed.*pip install"):
        create_attention_moa(["xai:grok-4", "demo:b"], aggregator="demo:c")


def test_a_provider_string_builds_without_an_api_key():
    graph = create_attention_moa(
        ["openai:gpt-4.1-mini", "openai:gpt-4.1-nano"], aggregator="openai:gpt-4.1"
    )
    assert set(graph.get_graph().nodes) >= {"prepare", "layer", "finish"}


@pytest.mark.parametrize(
    "bad_context, message",
    [
        ({"max_layers": 0}, "MoAContext: `max_layers` must be a whole number"),
        ({"max_layers": 9}, "built with max_layers=3 and a run may only lower it"),
        ({"temperature": -1}, "from 0 to 2"),
        ({"early_stopping": "no"}, "True or False"),
    ],
)
async def test_bad_context_fails_before_any_model_call(bad_context, message):
    agents = fake_agents(["a", "b"])
    graph = create_attention_moa(agents, aggregator="demo:chair")
    with pytest.raises(ValueError, match=message):
        await graph.ainvoke({"messages": [("user", "hi")]}, context=bad_context)
    assert all(not p.model.calls for p in agents)


BAD_INPUTS = [
    ("no messages", {"messages": []}, "no messages"),
    (
        "only a system message",
        {"messages": [SystemMessage("be brief")]},
        "last message must be the user's",
    ),
    (
        "ends with the assistant",
        {"messages": [HumanMessage("hi"), AIMessage("hello")]},
        "last message must be the user's",
    ),
    ("empty user text", {"messages": [("user", "   ")]}, "empty"),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
@pytest.mark.parametrize("entry", ["invoke", "ainvoke"])
async def test_bad_input_fails_before_any_model_call(case, entry):
    _, payload, message = case
    agents = fake_agents(["a", "b"])
    aggregator = ScriptedChatModel(model_name="agg")
    graph = create_attention_moa(agents, aggregator=aggregator)
    with pytest.raises(MoAInputError, match=message):
        if entry == "invoke":
            graph.invoke(payload)
        else:
            await graph.ainvoke(payload)
    assert all(not p.model.calls for p in agents) and not aggregator.calls


def test_context_values_are_checked_when_built():
    with pytest.raises(ValueError, match="max_layers"):
        MoAContext(max_layers=0)
    assert MoAContext(max_layers=2).max_layers == 2


async def test_a_missing_api_key_fails_before_any_model_call():
    agents = fake_agents(["a", "b"])
    graph = create_attention_moa(
        [*agents, Proposer("gpt", "openai:gpt-4.1-mini")], aggregator="demo:chair"
    )
    with pytest.raises(ValueError, match="'gpt'.*OPENAI_API_KEY"):
        await graph.ainvoke({"messages": [("user", "hi")]})
    assert all(not p.model.calls for p in agents)


@pytest.mark.parametrize("payload", ["hi", ["hi"], 42])
async def test_input_that_is_not_a_dict_is_one_clear_error(payload):
    graph = create_attention_moa(TWO, aggregator="demo:chair", max_layers=1)
    with pytest.raises(MoAInputError, match=r"input is a dict such as \{'messages'"):
        graph.invoke(payload)
    with pytest.raises(MoAInputError, match="wrap the question"):
        await graph.ainvoke(payload)
    with pytest.raises(MoAInputError):
        list(graph.stream(payload))
