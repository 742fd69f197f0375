"""Attention-MoA as a LangGraph graph: agents draft, critique each other, refine, merge.

The one entry point is `create_attention_moa`; see its docstring and the README.
Everything public is imported here; the private packages (`_core`, `_calls`)
may change without notice.
"""

from attention_moa_graph._calls.errors import (
    AgentFailedError,
    AgentsExhaustedError,
    AggregatorFailedError,
    MoAError,
    MoAInputError,
)
from attention_moa_graph._calls.models import ModelLike, Proposer
from attention_moa_graph._calls.policy import DEFAULT_RETRY_POLICY, CallPolicy
from attention_moa_graph._calls.transport import async_http_client
from attention_moa_graph._calls.usage import CostEstimate, UsageReport, estimate_cost
from attention_moa_graph._core.context import MoAContext
from attention_moa_graph._core.graph import create_attention_moa
from attention_moa_graph._core.options import MoAOptions
from attention_moa_graph._core.prompts import DEFAULT_PROMPTS, STOP_SIGNAL, MoAPrompts
from attention_moa_graph._core.state import LayerRecord, MoAInput, MoAOutput, MoAState
from attention_moa_graph._core.stop import is_stop_signal
from attention_moa_graph.adapters.chat_model import AttentionMoAChatModel
from attention_moa_graph.adapters.streaming import StreamEvent, astream_answer

__version__ = "0.1.0"

__all__ = [
    "AgentFailedError",
    "AgentsExhaustedError",
    "AggregatorFailedError",
    "AttentionMoAChatModel",
    "CallPolicy",
    "CostEstimate",
    "DEFAULT_PROMPTS",
    "DEFAULT_RETRY_POLICY",
    "LayerRecord",
    "MoAContext",
    "MoAError",
    "MoAInput",
    "MoAInputError",
    "MoAOptions",
    "MoAOutput",
    "MoAPrompts",
    "MoAState",
    "ModelLike",
    "Proposer",
    "STOP_SIGNAL",
    "StreamEvent",
    "UsageReport",
    "__version__",
    "astream_answer",
    "async_http_client",
    "create_attention_moa",
    "estimate_cost",
    "is_stop_signal",
]
