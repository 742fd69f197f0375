"""Attention-MoA as a LangGraph graph: agents draft, critique each other, refine, merge.

The one entry point is `create_attention_moa`; see its docstring and the README.
"""

from attention_moa_graph._calls.errors import (
    AgentFailedError,
    AgentsExhaustedError,
    AggregatorFailedError,
    MoAError,
    MoAInputError,
)
from attention_moa_graph._calls.models import ModelLike, Proposer
from attention_moa_graph._calls.usage import CostEstimate, estimate_cost
from attention_moa_graph._core.context import MoAContext
from attention_moa_graph._core.graph import create_attention_moa
from attention_moa_graph._core.prompts import DEFAULT_PROMPTS, STOP_SIGNAL, MoAPrompts
from attention_moa_graph._core.routing import is_stop_signal
from attention_moa_graph._core.state import (
    LayerRecord,
    MoAInput,
    MoAOutput,
    MoAState,
    UsageReport,
)
from attention_moa_graph.adapters.chat_model import AttentionMoAChatModel

__version__ = "0.1.0"

__all__ = [
    "AgentFailedError",
    "AgentsExhaustedError",
    "AggregatorFailedError",
    "AttentionMoAChatModel",
    "CostEstimate",
    "DEFAULT_PROMPTS",
    "LayerRecord",
    "MoAContext",
    "MoAError",
    "MoAInput",
    "MoAInputError",
    "MoAOutput",
    "MoAPrompts",
    "MoAState",
    "ModelLike",
    "Proposer",
    "STOP_SIGNAL",
    "UsageReport",
    "__version__",
    "create_attention_moa",
    "estimate_cost",
    "is_stop_signal",
]
