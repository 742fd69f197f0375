"""Attention-MoA as a LangGraph graph: agents draft, critique each other, refine, merge.

The one entry point is `create_attention_moa`; see its docstring and the README.
Every public name is importable from here and reports this module as its home;
the private packages (`_core`, `_calls`) may change without notice.
Submodules with a public surface of their own: `adapters.server` (the
OpenAI-compatible server), `evaluation`, `testing`, `transport`, `local`.
"""

import importlib
import inspect
from typing import TYPE_CHECKING, Any

# `X as X`: a re-export, for type checkers run with `--no-implicit-reexport`.
if TYPE_CHECKING:
    from attention_moa_graph._calls.errors import (
        AgentFailedError as AgentFailedError,
        AgentsExhaustedError as AgentsExhaustedError,
        AggregatorFailedError as AggregatorFailedError,
        MoAError as MoAError,
        MoAInputError as MoAInputError,
    )
    from attention_moa_graph._calls.models import (
        ModelLike as ModelLike,
        Proposer as Proposer,
    )
    from attention_moa_graph._calls.policy import (
        DEFAULT_RETRY_POLICY as DEFAULT_RETRY_POLICY,
        CallPolicy as CallPolicy,
    )
    from attention_moa_graph._calls.usage import (
        CostEstimate as CostEstimate,
        UsageReport as UsageReport,
        estimate_cost as estimate_cost,
    )
    from attention_moa_graph._core.context import MoAContext as MoAContext
    from attention_moa_graph._core.graph import (
        create_attention_moa as create_attention_moa,
    )
    from attention_moa_graph._core.options import (
        MoAOptions as MoAOptions,
        MoAOptionsDict as MoAOptionsDict,
    )
    from attention_moa_graph._core.prompts import (
        DEFAULT_PROMPTS as DEFAULT_PROMPTS,
        STOP_SIGNAL as STOP_SIGNAL,
        MoAPrompts as MoAPrompts,
    )
    from attention_moa_graph._core.sampling import Sampling as Sampling
    from attention_moa_graph._core.state import (
        LayerRecord as LayerRecord,
        MoAInput as MoAInput,
        MoAOutput as MoAOutput,
        MoAState as MoAState,
    )
    from attention_moa_graph._core.stop import is_stop_signal as is_stop_signal
    from attention_moa_graph.adapters.chat_model import (
        AttentionMoAChatModel as AttentionMoAChatModel,
    )
    from attention_moa_graph.adapters.streaming import (
        StreamEvent as StreamEvent,
        astream_answer as astream_answer,
    )

__version__ = "0.1.0"

# Where each public name is defined. They are imported on first use, so that
# `import attention_moa_graph` costs little more than LangGraph itself, and
# each then names this package as its module (tracebacks, reprs, pickles).
_HOMES = {
    "AgentFailedError": "_calls.errors",
    "AgentsExhaustedError": "_calls.errors",
    "AggregatorFailedError": "_calls.errors",
    "AttentionMoAChatModel": "adapters.chat_model",
    "CallPolicy": "_calls.policy",
    "CostEstimate": "_calls.usage",
    "DEFAULT_PROMPTS": "_core.prompts",
    "DEFAULT_RETRY_POLICY": "_calls.policy",
    "LayerRecord": "_core.state",
    "MoAContext": "_core.context",
    "MoAError": "_calls.errors",
    "MoAInput": "_core.state",
    "MoAInputError": "_calls.errors",
    "MoAOptions": "_core.options",
    "MoAOptionsDict": "_core.options",
    "MoAOutput": "_core.state",
    "MoAPrompts": "_core.prompts",
    "MoAState": "_core.state",
    "ModelLike": "_calls.models",
    "Proposer": "_calls.models",
    "STOP_SIGNAL": "_core.prompts",
    "Sampling": "_core.sampling",
    "StreamEvent": "adapters.streaming",
    "UsageReport": "_calls.usage",
    "astream_answer": "adapters.streaming",
    "create_attention_moa": "_core.graph",
    "estimate_cost": "_calls.usage",
    "is_stop_signal": "_core.stop",
}

__all__ = sorted([*_HOMES, "__version__"])


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    if isinstance(value, type) or inspect.isfunction(value):
        value.__module__ = __name__
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
