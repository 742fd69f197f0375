"""Multi-turn: the loop runs for the latest user turn; earlier turns are context."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver

from attention_moa_graph import create_attention_moa
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import fake_agents

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("durability", ["async", "sync", "exit"])
async def test_threads_keep_every_turn_in_each_durability_mode(durability):
    saver = InMemorySaver()
    graph = create_attention_moa(
        fake_agents(["a", "b"]),
        aggregator=ScriptedChatModel(model_name="agg"),
        max_layers=2,
        checkpointer=saver,
    )
    thread = {"configurable": {"thread_id": "t1"}}
    first = await graph.ainvoke(
        {"messages": [("user", "Capital of France?")]}, thread, durability=durability
    )
    second = await graph.ainvoke(
        {"messages": [("user", "And of Spain?")]}, thread, durability=durability
    )
    assert [m.type for m in second["messages"]] == ["human", "ai", "human", "ai"]
    assert second["messages"][1].content == first["final_answer"]
    saved = list(saver.list(thread))
    if durability == "exit":  # one checkpoint per run: its end
        assert len(saved) == 2
    else:  # one per step
        assert len(saved) > 2


async def test_a_thread_answers_the_follow_up_with_the_first_turn_as_context():
    agents = fake_agents(["a", "b"])
    graph = create_attention_moa(
        agents,
        aggregator=ScriptedChatModel(model_name="agg"),
        max_layers=2,
        checkpointer=InMemorySaver(),
    )
    thread = {"configurable": {"thread_id": "t1"}}
    first = await graph.ainvoke({"messages": [("user", "Capital of France?")]}, thread)
    for agent in agents:
        agent.model.reset()
    second = await graph.ainvoke({"messages": [("user", "And of Spain?")]}, thread)

    assert [m.type for m in second["messages"]] == ["human", "ai", "human", "ai"]
    assert second["messages"][1].content == first["final_answer"]
    assert second["messages"][-1].content == second["final_answer"]
    assert [r["layer"] for r in second["layers"]] == [1, 2]
    assert second["usage"]["total"]["calls"] == 2 * (4 + 4 + 1) + 2

    for agent in agents:
        drafts = [c for c in agent.model.calls if c.metadata["moa_role"] == "draft"]
        layer_one = next(c for c in drafts if c.metadata["moa_layer"] == 1)
        assert [m.type for m in layer_one.messages] == ["human", "ai", "human"]
        critique = next(
            c for c in agent.model.calls if c.metadata["moa_role"] == "cross_attention"
        )
        # Earlier turns reach critics as a transcript; the question is the new one.
        assert "Capital of France?" in critique.prompt
        assert first["final_answer"] in critique.prompt
        assert critique.prompt.index("Capital of France?") < critique.prompt.index(
            "And of Spain?"
        )


async def test_a_whole_conversation_can_be_passed_without_a_checkpointer():
    agents = fake_agents(["a", "b"])
    graph = create_attention_moa(agents, aggregator="demo:chair", max_layers=1)
    history = [
        SystemMessage("Answer in one word."),
        HumanMessage("Capital of France?"),
        AIMessage("Paris."),
        HumanMessage("And of Spain?"),
    ]
    result = await graph.ainvoke({"messages": history})
    assert len(result["messages"]) == 5
    refine = next(
        c for c in agents[0].model.calls if c.metadata["moa_role"] == "refine"
    )
    # The refinement quotes the whole conversation, the caller's system message
    # included, before the agent's draft.
    [message] = refine.messages
    assert message.type == "human"
    for turn in (
        "Answer in one word.",
        "Capital of France?",
        "Paris.",
        "And of Spain?",
    ):
        assert turn in message.text
    assert message.text.index("Capital of France?") < message.text.index("Paris.")


async def test_the_previous_turns_records_do_not_leak_into_the_next():
    graph = create_attention_moa(
        fake_agents(["a", "b"]),
        aggregator="demo:chair",
        max_layers=3,
        checkpointer=InMemorySaver(),
    )
    thread = {"configurable": {"thread_id": "t2"}}
    await graph.ainvoke({"messages": [("user", "one")]}, thread)
    second = await graph.ainvoke(
        {"messages": [("user", "two")]}, thread, context={"max_layers": 1}
    )
    assert len(second["layers"]) == 1
    assert '"two"' in second["final_answer"]
    assert second["usage"]["total"]["calls"] == 4 + 4 + 1


def test_a_sync_only_saver_serves_sync_runs_through_every_layer():
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    from attention_moa_graph import create_attention_moa

    saver = SqliteSaver(sqlite3.connect(":memory:", check_same_thread=False))
    graph = create_attention_moa(
        ["demo:a", "demo:b"], aggregator="demo:c", max_layers=2, checkpointer=saver
    )
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"messages": [("user", "hi")]}, config)
    second = graph.invoke({"messages": [("user", "and then?")]}, config)
    assert len(second["messages"]) == 4 and len(second["layers"]) == 2
    # The layers' own checkpoints went through the sync saver too.
    namespaces = {c.config["configurable"]["checkpoint_ns"] for c in saver.list(None)}
    assert any(ns.startswith("layer:") for ns in namespaces)
