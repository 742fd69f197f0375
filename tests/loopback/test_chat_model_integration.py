"""LangChain's standard integration tests, run on the ensemble over real HTTP.

Every model of the ensemble is langchain-openai's `ChatOpenAI` talking to the
loopback fake server, whose tool calls and JSON replies are pure functions of
the request (see `attention_moa_graph.testing.fake_server.tools`).

43 of the suite's 50 tests pass. The 7 it skips here, and why:
- `test_image_inputs`, `test_pdf_inputs`, `test_audio_inputs`,
  `test_image_tool_message`, `test_pdf_tool_message`: the ensemble's critiques,
  summaries and syntheses read the conversation as text, so an image, a PDF or a
  sound would reach the first drafts only; the model does not claim them
  (`supports_*_inputs` stay off).
- `test_anthropic_inputs`: messages in Anthropic's content-block format are not
  converted for the other providers of an ensemble.
- `test_stream_time`: a timing benchmark (VCR cassettes); speed is measured in
  `make bench`, never in tests.
"""

from __future__ import annotations

import pytest
from langchain_openai import ChatOpenAI
from langchain_tests.integration_tests import ChatModelIntegrationTests

from attention_moa_graph import AttentionMoAChatModel, Proposer
from attention_moa_graph.testing.fake_server import FakeOpenAIServer

pytestmark = pytest.mark.anyio
_SERVING: list[FakeOpenAIServer] = []


@pytest.fixture(autouse=True)
def _serving(monkeypatch):
    # A server per test: langchain-openai shares one async HTTP client per base
    # URL across the process, bound to the first event loop that used it, and
    # each async test runs on a loop of its own.
    with FakeOpenAIServer() as server:
        _SERVING.append(server)
        # A per-call `model="openai:..."` (the aggregator for that call) is made
        # by init_chat_model, which reads these.
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "unused")
        yield
        _SERVING.pop()


def _model(name: str) -> ChatOpenAI:
    return ChatOpenAI(
        model=name, base_url=_SERVING[-1].base_url, api_key="unused", stream_usage=True
    )


class TestAttentionMoAChatModelIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[AttentionMoAChatModel]:
        return AttentionMoAChatModel

    @property
    def chat_model_params(self) -> dict:
        return {
            "proposers": [Proposer(n, _model(n)) for n in ("alpha", "beta")],
            "aggregator": Proposer("chair", _model("chair")),
            "max_layers": 1,
            "model": "attention-moa",
        }

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "openai:another-chair"  # the aggregator for that call
