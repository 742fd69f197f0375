"""The package's errors, and which model-call failures are worth a retry."""

import os
import re
from typing import Any

from langchain_core.exceptions import ModelError, ModelTimeoutError
from pydantic import SecretStr


class MoAError(Exception):
    """Base of the errors a run of the ensemble raises."""


class MoAInputError(MoAError, ValueError):
    """A run's input cannot be answered; raised before any model is called."""


class AgentFailedError(MoAError):
    """An agent's call failed in a way no retry can fix (bad request, auth, ...).

    Attributes:
        agent: The agent's name.
        role: The `moa_role` of the failed call.
        layer: The layer, from 1.
    """

    def __init__(self, agent: str, role: str, layer: int, cause: BaseException):
        """Describe the failure and how to go on."""
        self.agent, self.role, self.layer = agent, role, layer
        super().__init__(
            f"agent {agent!r} failed in {role} at layer {layer} with an error that "
            f"retrying cannot fix: {describe(cause)}. Fix the model's configuration "
            "(key, model name, request size); with a checkpointer, resume with "
            "graph.invoke(None, config) to redo only the calls that did not finish."
        )


class AgentsExhaustedError(MoAError):
    """Too few agents are left in a layer after their calls failed.

    Attributes:
        layer: The layer, from 1.
        failures: Agent name -> what failed.
        min_agents: The configured minimum.
    """

    def __init__(
        self, layer: int, failures: dict[str, str], min_agents: int | None = None
    ):
        """Name every failed agent and say how to resume."""
        self.layer, self.failures, self.min_agents = layer, failures, min_agents
        listed = "; ".join(f"{agent}: {why}" for agent, why in failures.items())
        minimum = "min_agents" if min_agents is None else f"min_agents={min_agents}"
        super().__init__(
            f"layer {layer}: fewer than {minimum} agents are left after "
            f"retries ({listed}). With a checkpointer the state is saved: once the "
            "provider answers again, resume with graph.invoke(None, config) to retry "
            "exactly these calls."
        )


class AggregatorFailedError(MoAError):
    """The summary or residual call failed after its retries; the layer cannot end.

    Attributes:
        agent: The aggregator's (or residual agent's) name.
        role: `summary` or `residual`.
        layer: The layer, from 1.
    """

    def __init__(self, agent: str, role: str, layer: int, cause: BaseException):
        """Describe the failure and how to resume."""
        self.agent, self.role, self.layer = agent, role, layer
        super().__init__(
            f"the {role} call of {agent!r} failed at layer {layer}: "
            f"{describe(cause)}. With a checkpointer the state is saved: resume with "
            "graph.invoke(None, config) to redo only this call."
        )


class EmptyReplyError(ModelError):
    """The model answered with no text."""

    is_retryable = True


class MalformedReplyError(ModelError):
    """The provider's response could not be parsed."""

    is_retryable = True


class CallTimeoutError(ModelTimeoutError):
    """The model did not answer within the call timeout."""


def is_transient(error: BaseException) -> bool:
    """Whether a retry may cure this failure (rate limits, 5xx, timeouts, ...)."""
    if isinstance(error, ModelError):
        return error.is_retryable
    return isinstance(error, (TimeoutError, ConnectionError))


_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
# Key-shaped words: OpenAI-style `sk-...` keys and bearer tokens.
_KEY_SHAPED = re.compile(
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{12,}|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{8,}=*"
)


_GIVEN: set[str] = set()
_SHORTEST_SECRET = 8


def keep_secret(value: str | None) -> None:
    """Take `value` out of every text `redact` sees from now on, in this process.

    For the keys a run is given, whatever the variable that held them was
    called. Values shorter than 8 characters are not secrets worth the cost
    (they would blank common words).
    """
    if value and len(value.strip()) >= _SHORTEST_SECRET:
        _GIVEN.add(value.strip())


def secret_from(variable: str) -> str | None:
    """The value of environment variable `variable` (None when unset), kept secret."""
    value = os.environ.get(variable) or None
    keep_secret(value)
    return value


def keep_model_secrets(model: Any) -> None:
    """`keep_secret` each secret field of a chat model (its API key, say)."""
    for value in getattr(model, "__dict__", {}).values():
        if isinstance(value, SecretStr):
            keep_secret(value.get_secret_value())


def redact(text: str, *keys: str | None) -> str:
    """`text` without secrets.

    Taken out: `keys`, every key a run was given (`keep_secret`: the keys of
    its models and those read from the variables its flags name), the values
    of environment variables named like keys, tokens, secrets or passwords,
    and key-shaped words. Provider errors sometimes echo the key they were
    sent; what is recorded (checkpoints, logs, messages) passes through here
    first.

    Example:
        >>> redact("Incorrect API key provided: sk-proj-4f2a9c81b7d3e6")
        'Incorrect API key provided: [redacted]'
    """
    secrets = {k for k in keys if k} | _GIVEN
    secrets |= {
        value
        for name, value in os.environ.items()
        if _SECRET_NAME.search(name) and len(value) >= 8
    }
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return _KEY_SHAPED.sub("[redacted]", text)


def describe(error: BaseException) -> str:
    """A one-line description of an exception, for records and messages.

    Secrets are taken out (see `redact`): it is stored in checkpoints. Client
    libraries wrap transport failures in generic ones ("Connection error."),
    so the causes that say more are added.
    """
    text = " ".join(str(error).split())
    cause, seen = error.__cause__, {id(error)}
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        said = " ".join(str(cause).split())
        if said and said not in text:
            text = f"{text} ({type(cause).__name__}: {said})" if text else said
        cause = cause.__cause__
    text = redact(text)
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
