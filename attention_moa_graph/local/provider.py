"""The `local:` provider: chat models served by the package's own llama-server.

`"local:smollm2"` is the bundled SmolLM2-135M-Instruct; `"local:smollm2@3"`
the same model sampling with seed 3, so several agents of one model still
answer differently. `"local:/path/to/model.gguf"` serves another GGUF file.
Every process of a user shares one server per model file (see `server`), and
each agent's calls keep to a slot of their own there, with prompt caching
on, so an agent's successive calls reuse the prompt they share.
"""

from __future__ import annotations

from pathlib import Path

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from attention_moa_graph._calls.transport import async_http_client
from attention_moa_graph.local.runtime import (
    INSTALL_COMMAND,
    LocalRuntimeError,
    installed_runtime,
)
from attention_moa_graph.local.server import ServerSettings, shared_server

DEFAULT_NAME = "smollm2"


def parse_name(name: str) -> tuple[str, int | None]:
    """`smollm2@3` -> (`smollm2`, 3); a name without `@` has no fixed seed.

    Raises:
        ValueError: If the seed is not a whole number.
    """
    model, sep, seed = name.rpartition("@") if "@" in name else (name, "", "")
    if not sep:
        return name, None
    if not seed.isdigit():
        raise ValueError(
            f"local model {name!r}: the part after '@' is a seed, a whole number "
            "such as local:smollm2@3."
        )
    return model, int(seed)


def local_model(name: str) -> BaseChatModel:
    """A chat model answered by the shared local server.

    Raises:
        LocalRuntimeError: If the runtime is not installed or cannot start.
    """
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise LocalRuntimeError(
            "local models are served over the OpenAI protocol and need "
            "langchain-openai: pip install 'attention-moa-graph[local]', then "
            f"`{INSTALL_COMMAND}`."
        ) from exc
    model, seed = parse_name(name)
    runtime = installed_runtime()
    path = Path(runtime.model) if model == DEFAULT_NAME else Path(model)
    if not path.is_file():
        raise LocalRuntimeError(
            f"local model {model!r} is neither {DEFAULT_NAME!r} nor a GGUF file "
            f"that exists; give a path, e.g. local:/models/qwen2.5-1.5b.gguf."
        )
    lease = shared_server(runtime, path, ServerSettings())
    return ChatOpenAI(
        model=path.stem,
        base_url=lease.base_url,
        api_key=SecretStr(lease.api_key),
        seed=seed,
        stream_usage=True,
        max_retries=0,
        http_async_client=async_http_client(),
        extra_body={"id_slot": lease.slot_for(name), "cache_prompt": True},
    )
