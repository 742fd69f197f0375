"""The core runs on LangGraph and LangChain alone; each extra's absence is one line.

Each test runs in a fresh interpreter where the extras' modules cannot be
imported, as after `pip install attention-moa-graph` with no extras.
"""

from __future__ import annotations

import pytest

from tests.helpers import run_python

EXTRAS = (
    "rich",
    "starlette",
    "uvicorn",
    "matplotlib",
    "sklearn",
    "langchain_openai",
    "langchain_anthropic",
    "openai",
    "aiohttp",
    "psycopg",
    "langgraph.checkpoint.sqlite",
    "langgraph.checkpoint.postgres",
)


def without(modules: tuple[str, ...], body: str) -> str:
    """`body`, run where `modules` (and their submodules) cannot be imported."""
    return f"""
import importlib.abc, sys
HIDDEN = {modules!r}
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == m or name.startswith(m + ".") for m in HIDDEN):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Hide())
{body}
"""


def test_the_core_builds_runs_and_chats_without_any_extra():
    done = run_python(
        without(
            EXTRAS,
            """
from attention_moa_graph import AttentionMoAChatModel, create_attention_moa
graph = create_attention_moa(["demo:a", "demo:b"], aggregator="demo:c", max_layers=2)
print(graph.invoke({"messages": [("user", "hi")]})["stop_reason"])
model = AttentionMoAChatModel(proposers=["demo:a", "demo:b"], aggregator="demo:c")
print(bool(model.invoke("hi").content))
print(sorted(m for m in sys.modules if m.split(".")[0] in ("rich", "starlette")))
""",
        )
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["max_layers", "True", "[]"]


@pytest.mark.parametrize(
    ("hidden", "argv", "extra"),
    [
        (("rich",), ["ask", "--demo", "hi"], "cli"),
        (("langgraph.checkpoint.sqlite",), ["ask", "--demo", "hi"], "cli"),
        (("uvicorn",), ["serve", "--demo"], "serve"),
    ],
)
def test_a_command_without_its_extra_names_the_install_command(hidden, argv, extra):
    done = run_python(
        without(
            hidden,
            f"from attention_moa_graph.cli import main; sys.exit(main({argv!r}))",
        )
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"needs the `{extra}` extra" in lines[0]
    assert lines[0].endswith(f"pip install 'attention-moa-graph[{extra}]'")


def test_the_server_class_without_its_extra_names_the_install_command():
    done = run_python(
        without(
            ("starlette",),
            """
from attention_moa_graph.adapters.server import ServeLimits
print(ServeLimits().max_running)
try:
    from attention_moa_graph.adapters.server import ChatCompletionsServer
except ImportError as exc:
    print(exc)
""",
        )
    )
    assert done.returncode == 0, done.stderr
    limits, message = done.stdout.strip().splitlines()
    assert limits == "8"
    assert message.endswith("pip install 'attention-moa-graph[serve]'")
