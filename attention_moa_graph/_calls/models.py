"""Model specs: `Proposer`, `ModelLike` and lazy `"provider:model"` resolution."""

import functools
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Union

from langchain_core.language_models import BaseChatModel

from attention_moa_graph._calls.errors import keep_model_secrets
from attention_moa_graph._calls.transport import async_http_client

ModelLike = Union[str, BaseChatModel]  # noqa: UP007 - a runtime alias, also on 3.10
"""A chat model instance, or a `"provider:model"` string (`"openai:gpt-4.1-mini"`)."""

PROVIDER_GROUP = "attention_moa_graph.providers"
"""Entry-point group of extra `"provider:model"` prefixes.

Each entry point names a function from the model name (the part after the
prefix) to a chat model. The package registers `demo` (the offline demo
models of `attention_moa_graph.testing.demo`); other packages may add theirs.
"""


@functools.cache
def _providers() -> dict[str, Any]:
    return {entry.name: entry for entry in entry_points(group=PROVIDER_GROUP)}


def registered_provider(spec: str) -> Callable[[str], BaseChatModel] | None:
    """The factory registered for `spec`'s provider prefix, if any."""
    prefix, sep, _ = spec.partition(":")
    entry = _providers().get(prefix) if sep else None
    return None if entry is None else entry.load()


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class Proposer:
    """A named collaborative agent.

    Attributes:
        name: Key of this agent in every per-agent dict of the state and in the
            `moa_agent` metadata of its calls. Letters, digits, `_`, `.` and `-`.
        model: The agent's chat model, or a `"provider:model"` string.
    """

    name: str
    model: ModelLike


@dataclass(frozen=True)
class Agent:
    """A validated agent: a unique name and a lazily resolved model."""

    name: str
    model: "LazyModel"


@dataclass(eq=False)
class LazyModel:
    """A chat model that is built on first use, so building a graph needs no keys."""

    spec: ModelLike
    _resolved: BaseChatModel | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def label(self) -> str:
        """A short human-readable description of the model."""
        if isinstance(self.spec, str):
            return self.spec
        name = getattr(self.spec, "model_name", None) or getattr(
            self.spec, "model", None
        )
        return str(name) if isinstance(name, str) else type(self.spec).__name__

    def get(self) -> BaseChatModel:
        """Return the chat model, building it from its spec the first time."""
        if self._resolved is None:
            with self._lock:
                if self._resolved is None:
                    self._resolved = _build(self.spec)
        return self._resolved


def _build(spec: ModelLike) -> BaseChatModel:
    if isinstance(spec, BaseChatModel):
        return for_graph(spec)
    factory = registered_provider(spec)
    if factory is not None:
        return for_graph(factory(spec.partition(":")[2]))
    from langchain.chat_models import init_chat_model

    model = init_chat_model(spec)
    client = async_http_client()
    if _openai_protocol(model) and client is not None:
        # The provider is known only once the model is made; built again,
        # it sends through the package's transport (see `transport`).
        model = init_chat_model(spec, http_async_client=client)
    return for_graph(model)


def for_graph(model: BaseChatModel) -> BaseChatModel:
    """A copy of the model fit for the graph: no client retries, usage when streamed.

    Retries at both levels would multiply (3 graph attempts x 3 client attempts).
    Models with a `max_retries` field (unset counts: the OpenAI SDK then retries
    twice) get it set to 0; OpenAI-style clients that were already built are
    swapped for zero-retry versions of themselves. Models with a `stream_usage`
    switch left unset get it on: LangGraph streams calls, and langchain-openai
    reports no usage for streamed calls to a custom `base_url` otherwise (an
    explicit False is respected, for servers without `stream_options`). The caller's own
    instance is left unchanged; other models keep their behaviour.
    """
    keep_model_secrets(model)
    update: dict[str, Any] = {}
    if hasattr(model, "stream_usage") and model.stream_usage is None:
        update["stream_usage"] = True
    # None means the client's own default (2 for the OpenAI SDK): not zero.
    if hasattr(model, "max_retries") and model.max_retries != 0:
        update["max_retries"] = 0
        for root, endpoint in (
            ("root_client", "client"),
            ("root_async_client", "async_client"),
        ):
            client = getattr(model, root, None)
            if client is not None and hasattr(client, "with_options"):
                fresh = client.with_options(max_retries=0)
                update[root] = fresh
                if getattr(model, endpoint, None) is not None:
                    update[endpoint] = fresh.chat.completions
    return model.model_copy(update=update) if update else model


def model_field(model: Any, name: str) -> Any:
    """A model instance's field, or None, without `getattr` on a missing name.

    A pydantic model keeps its fields in `__dict__`; looking up a name it
    lacks goes through pydantic's `__getattr__` and a raised error (2.2 us
    against 0.1), too slow for every call.
    """
    fields = getattr(model, "__dict__", None)
    return fields.get(name) if fields is not None else None


def works_on_any_loop(model: Any) -> bool:
    """Whether the model's async interface may run on any event loop.

    True when its async HTTP client is `async_http_client()`, whose pools
    follow the running loop. Other async clients (langchain-openai's cached
    httpx ones, say) belong to the first loop that uses them.
    """
    client = model_field(model, "http_async_client")
    return client is not None and client is async_http_client()


def _openai_protocol(model: BaseChatModel) -> bool:
    return type(model).__module__.startswith("langchain_openai")


def _compatible_server(model: BaseChatModel) -> bool:
    """An OpenAI-protocol model pointed at a server other than OpenAI's."""
    base = getattr(model, "openai_api_base", None) or ""
    return _openai_protocol(model) and bool(base) and "api.openai.com" not in base


def provider_params(model: BaseChatModel, params: dict[str, Any]) -> dict[str, Any]:
    """A call's parameters in the form this model's client takes.

    `repeat_penalty` is no OpenAI parameter: OpenAI-protocol servers that know
    it (llama.cpp, vLLM) get it in the request body, next to the model's own
    extra fields. langchain-openai sends a token cap as OpenAI's newer
    `max_completion_tokens`, which many OpenAI-compatible servers do not know;
    a server other than OpenAI's gets the classic `max_tokens` instead.

    Raises:
        ValueError: If the model's client has no way to send a parameter.
    """
    body: dict[str, Any] = {}
    chosen = dict(params)
    if "max_tokens" in chosen and _compatible_server(model):
        body["max_tokens"] = chosen.pop("max_tokens")
    if "repeat_penalty" in chosen:
        if not _openai_protocol(model):
            raise ValueError(
                f"`repeat_penalty` cannot be sent to {type(model).__name__}: it "
                "works with OpenAI-protocol servers such as llama.cpp and vLLM "
                "(local: models, --base-url); leave it unset for this model."
            )
        body["repeat_penalty"] = chosen.pop("repeat_penalty")
    if not body:
        return params
    own = getattr(model, "extra_body", None) or {}
    chosen["extra_body"] = {**own, **body}
    return chosen


def response_format_params(
    model: BaseChatModel, response_format: Mapping[str, Any] | None
) -> dict[str, Any]:
    """OpenAI's `response_format` as a call parameter, where the client takes it.

    Other models get the schema from the prompt only.
    """
    if not response_format or not _openai_protocol(model):
        return {}
    if response_format.get("type") == "json_object":
        return {"response_format": {"type": "json_object"}}
    return {"response_format": dict(response_format)}


def json_reply_params(
    model: BaseChatModel, name: str, schema: dict[str, Any]
) -> dict[str, Any]:
    """Call-time parameters that hold a reply to `schema`, where the client has them.

    OpenAI-protocol clients (langchain-openai, so OpenAI, vLLM and llama.cpp
    servers) take a JSON-schema `response_format`; other models get the
    schema's shape from the prompt only.
    """
    if _openai_protocol(model):
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            }
        }
    return {}


def check_model_spec(spec: object, where: str) -> ModelLike:
    """Validate a model spec at build time without needing provider credentials.

    Raises:
        ValueError: If the spec is neither a chat model nor a resolvable
            `"provider:model"` string, or its integration package is missing.
    """
    if isinstance(spec, BaseChatModel):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            f"{where}: expected a chat model instance or a 'provider:model' string "
            f"such as 'openai:gpt-4.1-mini' or 'demo:alpha', got {spec!r}."
        )
    provider, colon, name = spec.partition(":")
    if not colon or not provider.strip():
        raise ValueError(
            f"{where}: model {spec!r} names no provider: write it as "
            f"'provider:model', e.g. 'openai:{name.strip() or spec.strip()}', "
            "'anthropic:claude-sonnet-4-5' or 'demo:alpha' (or pass a chat model "
            "instance)."
        )
    if not name.strip():
        raise ValueError(
            f"{where}: a model name must follow the provider prefix, "
            f"e.g. 'openai:gpt-4.1-mini' or 'demo:alpha'; got {spec!r}."
        )
    if registered_provider(spec) is not None:
        return spec
    from langchain.chat_models import init_chat_model

    # Constructing the model is the only public way to ask LangChain whether it
    # knows the provider. Unknown providers raise ValueError and missing
    # integrations ImportError; anything else (usually missing credentials) is
    # left for the first call, so building never needs a key.
    try:
        init_chat_model(spec)
    except ImportError as exc:
        raise ValueError(
            f"{where}: the integration package for {spec!r} is not installed "
            f"({exc}). Install it, e.g. `pip install 'attention-moa-graph[openai]'`."
        ) from exc
    except ValueError:
        # LangChain's own message lists every provider it knows: too long to
        # read in a traceback; the page it points to has the same list.
        raise ValueError(
            f"{where}: cannot resolve model {spec!r}: LangChain knows no provider "
            f"{provider!r}. Use 'provider:model' with a provider it knows (e.g. "
            "'openai:gpt-4.1-mini', 'anthropic:claude-sonnet-4-5'; the list: "
            "https://docs.langchain.com/oss/python/integrations/providers), "
            "'demo:<name>' for the offline demo, or pass a chat model instance."
        ) from None
    except Exception:  # credentials are checked at call time
        pass
    return spec


def resolve_agents(
    proposers: Sequence[ModelLike | Proposer] | object,
) -> tuple[Agent, ...]:
    """Turn the `proposers` argument into named agents, validating it."""
    if isinstance(proposers, (str, BaseChatModel, Proposer)) or not isinstance(
        proposers, Sequence
    ):
        raise ValueError(
            "`proposers` must be a list of chat models, 'provider:model' strings or "
            f"Proposer objects, got {type(proposers).__name__}. "
            "Wrap a single model in a list: proposers=[model]."
        )
    if not proposers:
        raise ValueError(
            "`proposers` is empty: pass at least one model, e.g. "
            "proposers=['openai:gpt-4.1-mini', 'anthropic:claude-sonnet-4-5']."
        )
    agents: list[Agent] = []
    for index, item in enumerate(proposers):
        where = f"proposers[{index}]"
        if isinstance(item, Proposer):
            name = check_agent_name(item.name, where)
            spec = check_model_spec(item.model, where)
        else:
            name = f"proposer_{index}"
            spec = check_model_spec(item, where)
        agents.append(Agent(name, LazyModel(spec)))
    names = [agent.name for agent in agents]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"proposer names must be unique, but {duplicates} appear more than once; "
            "give each one its own name with Proposer(name=..., model=...)."
        )
    return tuple(agents)


def resolve_single(spec: ModelLike | Proposer, where: str, default_name: str) -> Agent:
    """Resolve the aggregator or residual model into an `Agent`."""
    if isinstance(spec, Proposer):
        return Agent(
            check_agent_name(spec.name, where),
            LazyModel(check_model_spec(spec.model, where)),
        )
    return Agent(default_name, LazyModel(check_model_spec(spec, where)))


def check_agent_name(name: object, where: str) -> str:
    """Validate an agent name (it keys state dicts and trace metadata)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"{where}: invalid agent name {name!r}. Use 1-64 letters, digits, '_', "
            "'.' or '-', starting with a letter or digit, e.g. Proposer(name='gpt4')."
        )
    return name
