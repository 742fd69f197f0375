"""`CallPolicy`: how every model call is made, for the ensemble and the baselines.

Retries, time limits, hedging, straggler deadlines and the concurrency cap;
what a call asks the model to generate is `Sampling`'s concern.
"""

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from langgraph.types import RetryPolicy

from attention_moa_graph._calls.errors import is_transient
from attention_moa_graph._knobs import (
    Flag,
    Options,
    instance_of,
    option,
    seconds,
    whole,
)

DEFAULT_RETRY_POLICY = RetryPolicy(
    max_attempts=3,
    initial_interval=0.5,
    backoff_factor=2.0,
    max_interval=8.0,
    jitter=True,
    retry_on=is_transient,
)
"""Three attempts with jittered backoff, on transient failures only.

Transient: rate limits, 5xx, timeouts, dropped connections, unparseable or
empty replies. A bad request, a bad key or an unknown model fails at once.
"""


def with_attempts(count: int) -> RetryPolicy:
    """The default retry policy with `count` attempts in all (1: no retry)."""
    return DEFAULT_RETRY_POLICY._replace(max_attempts=max(1, count))


@dataclass(frozen=True, kw_only=True)
class CallPolicy(Options):
    """How every model call is made: retries, time limits, hedging, a cap.

    Example:
        >>> from attention_moa_graph import CallPolicy
        >>> CallPolicy(call_timeout=30, stage_deadline=10).deadline("critique")
        10.0
    """

    retry_policy: RetryPolicy | None = option(
        DEFAULT_RETRY_POLICY,
        doc="Retries of a failed model call (a LangGraph `RetryPolicy`; default: 3 "
        "attempts with jittered backoff from 0.5 s, on transient failures only); "
        "None disables them. Client-side retries of the models are turned off, so "
        "attempts do not multiply.",
        check=instance_of(
            RetryPolicy,
            "build one with langgraph.types.RetryPolicy(max_attempts=...)",
            optional=True,
        ),
        flag=Flag(("--retries",), metavar="N"),
        example=with_attempts(5),
        answers=False,
        baselines=True,
        shown="DEFAULT_RETRY_POLICY (3 attempts)",
    )
    call_timeout: float | None = option(
        120.0,
        doc="Seconds a model call may take before it counts as a (retryable) "
        "timeout; None waits forever.",
        check=seconds,
        flag=Flag(("--call-timeout",), metavar="SECONDS"),
        example=30.0,
        answers=False,
        baselines=True,
    )
    hedge_after: float | None = option(
        None,
        doc="Straggler policy: a call with no reply after this many seconds is sent "
        "again to the same model and the first reply wins (the other is "
        "cancelled; the provider may bill both).",
        check=seconds,
        flag=Flag(("--hedge-after",), metavar="SECONDS"),
        example=2.0,
        answers=False,
        baselines=True,
    )
    critique_deadline: float | None = option(
        None,
        doc="Straggler policy: seconds each critique call may take; a critique "
        "not back by then is left out (listed in the layer's `late_critiques`) "
        "and its target refines without it. Departs from the paper.",
        check=seconds,
        flag=Flag(("--critique-deadline",), metavar="SECONDS"),
        example=5.0,
    )
    stage_deadline: float | None = option(
        None,
        doc="Straggler policy: seconds each draft, critique and refinement call may "
        "take (`critique_deadline` overrides it for critiques). A late draft keeps "
        "its agent out of the layer; after a late refinement the summary merges "
        "the draft. Listed in the layer's `late_agents`. Departs from the paper.",
        check=seconds,
        flag=Flag(("--stage-deadline",), metavar="SECONDS"),
        example=10.0,
    )
    max_concurrent_calls: int | None = option(
        None,
        doc="At most this many model calls in flight at once, across every run of "
        "the graph in this process (threads, event loops and sync callers "
        "included); the rest wait their turn. None: no cap.",
        check=whole(1, optional=True),
        flag=Flag(("--max-concurrent-calls",), metavar="N"),
        example=8,
        answers=False,
        baselines=True,
    )

    def deadline(self, stage: str) -> float | None:
        """Seconds each call of `stage` may take, or None.

        Critiques have their own deadline, else the stage deadline; drafts and
        refinements the stage deadline; the summary and residual calls none.
        """
        if stage == "critique" and self.critique_deadline is not None:
            return self.critique_deadline
        if stage in ("draft", "critique", "refine"):
            return self.stage_deadline
        return None

    def pauses(self) -> Iterator[float]:
        """Seconds to wait before each retry: exponential, capped, maybe jittered."""
        policy = self.retry_policy
        if policy is None:
            return
        interval = policy.initial_interval
        for _ in range(policy.max_attempts - 1):
            pause = min(interval, policy.max_interval)
            yield pause + (random.uniform(0, pause) if policy.jitter else 0.0)
            interval *= policy.backoff_factor

    def retryable(self, error: Exception) -> bool:
        """Whether the retry policy retries this failure."""
        policy = self.retry_policy
        if policy is None:
            return False
        retry_on = policy.retry_on
        if isinstance(retry_on, type):
            return isinstance(error, retry_on)
        if isinstance(retry_on, Sequence):
            return isinstance(error, tuple(retry_on))
        return bool(retry_on(error))

    def budget(self, elapsed: float, deadline: float | None) -> float | None:
        """Seconds the next attempt may take: the call timeout, cut to the deadline.

        Returns 0 when the deadline has passed; None means no limit.
        """
        if deadline is None:
            return self.call_timeout
        left = max(0.0, deadline - elapsed)
        return left if self.call_timeout is None else min(self.call_timeout, left)
