"""Tools in the ensemble: proposed in text, judged, made natively at the end."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool

from attention_moa_graph import MoAContext, Proposer, create_attention_moa
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import prompt_text

QUESTION = "What should I wear in Paris today?"
PLAN = (
    'I need the weather first.\n```tool_calls\n[{"name": "get_weather", '
    '"arguments": {"city": "Paris"}, "reason": "the answer depends on it"}]\n```'
)


@tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"18 C and dry in {city}"


def _system(messages: Sequence[BaseMessage]) -> str:
    return "\n".join(m.text for m in messages if isinstance(m, SystemMessage))


def agent(messages: Sequence[BaseMessage]) -> str:
    """Drafts and refinements plan the call until its result is in."""
    text = prompt_text(messages)
    if "Answers may propose tool calls" in text:  # a critique
        return "1. The get_weather call with city Paris is right and needed."
    if "18 C and dry" in text:
        return "Light layers: it is 18 C and dry."
    return PLAN


def chair(messages: Sequence[BaseMessage]) -> str | AIMessage:
    """Makes the call the answers agree on; answers once the result is in."""
    text = prompt_text(messages)
    if any(isinstance(m, ToolMessage) for m in messages) or "18 C and dry" in text:
        return "Wear light layers: it is 18 C and dry in Paris."
    if "```tool_calls" in text and "Tools are available" in _system(messages):
        return AIMessage(
            content="",
            tool_calls=[
                {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}
            ],
        )
    return "No tools needed."


def build(chair_model=None, **options):
    agents = [Proposer(n, ScriptedChatModel(model_name=n, reply=agent)) for n in "abc"]
    chair_model = chair_model or ScriptedChatModel(model_name="chair", reply=chair)
    graph = create_attention_moa(
        agents,
        aggregator=Proposer("chair", chair_model),
        **{"max_layers": 1, **options},
    )
    return graph, agents, chair_model


def test_the_ensemble_answers_with_the_call_it_agreed_on_then_from_its_result():
    graph, agents, chair_model = build(tools=[get_weather])
    first = graph.invoke({"messages": [HumanMessage(QUESTION)]})
    message = first["messages"][-1]
    assert message.tool_calls == [
        {
            "name": "get_weather",
            "args": {"city": "Paris"},
            "id": "call_1",
            "type": "tool_call",
        }
    ]
    assert first["usage"]["total"]["calls"] == 3 + 9 + 3 + 1  # as without tools
    drafts = [c for c in agents[0].model.calls if c.metadata["moa_role"] == "draft"]
    assert "get_weather" in _system(drafts[0].messages)  # the catalogue
    critique = next(
        c for c in agents[0].model.calls if c.metadata["moa_role"] == "cross_attention"
    )
    assert (
        "Judge every proposed call" in critique.prompt
        and "get_weather" in critique.prompt
    )
    [summary] = chair_model.calls
    assert summary.tools == ("get_weather",) and summary.tool_choice == "auto"
    assert summary.metadata["moa_final"] is True

    result = get_weather.invoke(message.tool_calls[0]["args"])
    messages = [*first["messages"], ToolMessage(result, tool_call_id="call_1")]
    second = graph.invoke({"messages": messages})
    assert second["final_answer"] == "Wear light layers: it is 18 C and dry in Paris."
    assert not second["messages"][-1].tool_calls
    later = [c for c in agents[1].model.calls if c.metadata["moa_role"] == "draft"][-1]
    # Proposers are not bound to the tools: the exchange reaches them as text.
    assert not any(isinstance(m, ToolMessage) for m in later.messages)
    assert "Result of tool call call_1" in later.prompt and "18 C" in later.prompt
    assert '```tool_calls\n[{"name": "get_weather"' in later.prompt  # the call made
    # The bound summary sees the tool messages as they are.
    assert any(isinstance(m, ToolMessage) for m in chair_model.calls[-1].messages)


def test_the_residual_agent_cannot_drop_a_call_the_layer_agreed_on():
    def forgetful(messages: Sequence[BaseMessage]) -> str | AIMessage:
        if "rounds" in _system(messages) or "panel" in _system(messages):
            return "Just wear something comfortable."  # the residual drops the call
        return chair(messages)

    graph, _, chair_model = build(
        ScriptedChatModel(model_name="chair", reply=forgetful),
        tools=[get_weather],
        max_layers=2,
        early_stopping=False,
    )
    result = graph.invoke({"messages": [HumanMessage(QUESTION)]})
    last = result["layers"][-1]
    assert last["residual"] == "Just wear something comfortable."
    message = result["messages"][-1]
    assert [c["name"] for c in message.tool_calls] == ["get_weather"]
    assert message.text == "Just wear something comfortable."


def test_a_model_without_tool_calling_writes_the_calls_in_text():
    class TextOnly(ScriptedChatModel):
        def bind_tools(self, tools, **kwargs):
            raise NotImplementedError

    def writes_block(messages: Sequence[BaseMessage]) -> str:
        return "Checking the weather.\n" + PLAN.split("\n", 1)[1]

    graph, _, chair_model = build(
        TextOnly(model_name="chair", reply=writes_block), tools=[get_weather]
    )
    message = graph.invoke({"messages": [HumanMessage(QUESTION)]})["messages"][-1]
    assert message.text == "Checking the weather."
    [call] = message.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"}
    assert call["id"].startswith("call_")
    assert chair_model.calls[0].tools == ()  # nothing was bound


def test_tool_choice_reaches_the_binding_and_a_run_may_bring_its_own_tools():
    graph, agents, chair_model = build()  # built without tools
    schema = {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a word up.",
            "parameters": {
                "type": "object",
                "properties": {"word": {"type": "string"}},
            },
        },
    }
    graph.invoke(
        {"messages": [HumanMessage("Define 'moa'.")]},
        context=MoAContext(tools=[schema], tool_choice="lookup"),
    )
    [summary] = chair_model.calls
    assert summary.tools == ("lookup",) and summary.tool_choice == "lookup"
    draft = next(c for c in agents[0].model.calls if c.metadata["moa_role"] == "draft")
    assert "The answer must call the tool `lookup`." in _system(draft.messages)
    # Without tools, nothing about them reaches any stage.
    chair_model.reset()
    graph.invoke({"messages": [HumanMessage("Define 'moa'.")]})
    assert chair_model.calls[0].tools == ()
    assert "Tools are available" not in chair_model.calls[0].prompt


@pytest.mark.parametrize(
    ("choice", "tools", "says"),
    [
        ("lookup", [get_weather], "names no tool of the run"),
        ("required", [], "needs tools"),
        (7, [get_weather], "must be 'auto', 'none', 'required'"),
    ],
)
def test_a_bad_tool_choice_is_refused_when_built(choice, tools, says):
    with pytest.raises(ValueError, match=says):
        create_attention_moa(
            ["demo:a", "demo:b"], aggregator="demo:c", tools=tools, tool_choice=choice
        )


def test_tool_choice_none_binds_nothing_and_asks_for_text():
    graph, agents, chair_model = build(tools=[get_weather], tool_choice="none")
    result = graph.invoke({"messages": [HumanMessage(QUESTION)]})
    assert chair_model.calls[0].tools == ()
    assert not result["messages"][-1].tool_calls
    draft = next(c for c in agents[0].model.calls if c.metadata["moa_role"] == "draft")
    assert "Do not call any tool now" in _system(draft.messages)


def test_the_proposed_calls_are_kept_in_the_layer_record():
    graph, _, _ = build(tools=[get_weather])
    record = graph.invoke({"messages": [HumanMessage(QUESTION)]})["layers"][0]
    assert all("```tool_calls" in draft for draft in record["drafts"].values())
    block = record["output"].split("```tool_calls\n", 1)[1].split("\n```")[0]
    assert json.loads(block) == [
        {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_1"}
    ]


def _chat_model(**options):
    from attention_moa_graph import AttentionMoAChatModel

    agents = [Proposer(n, ScriptedChatModel(model_name=n, reply=agent)) for n in "ab"]
    chair_model = ScriptedChatModel(model_name="chair", reply=chair)
    model = AttentionMoAChatModel(
        proposers=agents,
        aggregator=Proposer("chair", chair_model),
        max_layers=1,
        **options,
    )
    return model, chair_model


@pytest.mark.parametrize("stream", [False, True])
def test_the_chat_model_binds_tools_and_answers_with_their_calls(stream):
    model, chair_model = _chat_model()
    bound = model.bind_tools([get_weather], tool_choice="get_weather")
    if stream:
        chunks = list(bound.stream(QUESTION))
        message = chunks[0]
        for chunk in chunks[1:]:
            message += chunk
    else:
        message = bound.invoke(QUESTION)
    [call] = message.tool_calls
    assert (call["name"], call["args"], call["id"]) == (
        "get_weather", {"city": "Paris"}, "call_1",
    )  # fmt: skip
    assert chair_model.calls[0].tool_choice == "get_weather"
    assert message.usage_metadata["total_tokens"] > 0
    with pytest.raises(ValueError, match="names no tool"):
        model.bind_tools([get_weather], tool_choice="nope")


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_an_agent_runs_the_tool_and_answers_from_its_result(stream):
    from langchain.agents import create_agent
    from langgraph.checkpoint.memory import InMemorySaver

    model, _ = _chat_model(streaming=stream)
    saver = InMemorySaver()
    graph = create_agent(model, [get_weather], checkpointer=saver)
    config = {"configurable": {"thread_id": "t"}}
    result = await graph.ainvoke({"messages": [HumanMessage(QUESTION)]}, config)
    kinds = [type(m).__name__ for m in result["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert result["messages"][2].text == "18 C and dry in Paris"
    assert result["messages"][-1].text == (
        "Wear light layers: it is 18 C and dry in Paris."
    )
    saved = await graph.aget_state(config)
    assert len(saved.values["messages"]) == 4
    # The ensemble is the agent's model, not a subgraph: none of its steps is
    # saved in the agent's thread.
    assert {c.config["configurable"]["checkpoint_ns"] for c in saver.list(None)} == {""}


def test_an_invalid_structured_answer_is_repaired_once_then_refused():
    from langchain_core.exceptions import OutputParserException
    from pydantic import BaseModel

    from attention_moa_graph import AttentionMoAChatModel

    class Forecast(BaseModel):
        city: str
        degrees: int

    def chair_json(fixed: bool):
        def reply(messages: Sequence[BaseMessage]) -> str:
            if fixed and "did not match the required format" in prompt_text(messages):
                return '{"city": "Paris", "degrees": 18}'
            return '{"city": "Paris"}'  # degrees missing

        return ScriptedChatModel(model_name="chair", reply=reply)

    def model(chair_model):
        agents = [Proposer(n, ScriptedChatModel(model_name=n)) for n in "ab"]
        return AttentionMoAChatModel(
            proposers=agents, aggregator=Proposer("chair", chair_model), max_layers=1
        )

    fixed = chair_json(True)
    shaped = model(fixed).with_structured_output(Forecast, method="json_schema")
    assert shaped.invoke("Weather in Paris?") == Forecast(city="Paris", degrees=18)
    repair = fixed.calls[-1]
    assert "degrees" in repair.prompt and repair.metadata.get("moa_role") is None

    stuck = model(chair_json(False))
    with pytest.raises(OutputParserException, match="after one retry"):
        stuck.with_structured_output(Forecast, method="json_schema").invoke("Paris?")
    raw = stuck.with_structured_output(
        Forecast, method="json_schema", include_raw=True
    ).invoke("Paris?")
    assert raw["parsed"] is None and "degrees" in str(raw["parsing_error"])
