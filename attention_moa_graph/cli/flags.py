"""One command-line flag per option, parsed by the option's declared type.

An option's knob names its flag (`Flag`); how the flag's words become a
value follows from the option's type: a number, a choice, a switch turned
off, `ROLE=VALUE` pairs for a per-role mapping, an attempt count for the retry
policy, a JSON file for the prompts.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from langgraph.types import RetryPolicy

from attention_moa_graph._calls.policy import with_attempts
from attention_moa_graph._core.options import MoAOptions
from attention_moa_graph._core.prompts import DEFAULT_PROMPTS, MoAPrompts
from attention_moa_graph._knobs import Setting


def attempts(text: str) -> RetryPolicy:
    """`--retries N`: the default policy with N attempts in all."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(
            f"--retries counts attempts per call and must be a whole number >= 1, "
            f"got {text!r} (1 means no retry)"
        )
    return with_attempts(count)


def prompts_file(text: str) -> MoAPrompts:
    """`--prompts FILE`: a JSON object of the templates to replace."""
    try:
        overrides = json.loads(Path(text).read_text(encoding="utf-8"))
        if not isinstance(overrides, dict):
            raise ValueError("the file must hold a JSON object of stage: template")
        return replace(DEFAULT_PROMPTS, **overrides)
    except (OSError, ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(
            f"cannot use prompts from {text}: {exc}"
        ) from None


def _stop_text(text: str) -> tuple[str, ...]:
    r"""One stop sequence as typed: `\n` and `\t` stand for a newline and a tab."""
    if not text:
        raise ValueError
    return (text.replace("\\n", "\n").replace("\\t", "\t"),)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Repeated `ROLE=VALUE` flags as a dict; texts for one role add up."""
    found: dict[str, Any] = {}
    for role, value in pairs:
        if isinstance(value, tuple) and role in found:
            value = found[role] + value
        found[role] = value
    return found


def _role_value(kind: Callable[[str], Any], metavar: str) -> Callable[[str], Any]:
    """`ROLE=VALUE`, the value converted by `kind`."""

    def parse(text: str) -> tuple[str, Any]:
        role, sep, value = text.partition("=")
        try:
            if not sep or not role.strip():
                raise ValueError
            return role.strip(), kind(value.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {metavar}, e.g. summary=1, got {text!r}"
            ) from None

    return parse


def _unwrap(kind: Any) -> Any:
    """`X | None` -> `X`."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kinds = [k for k in typing.get_args(kind) if k is not type(None)]
        if len(kinds) == 1:
            return kinds[0]
    return kind


def _or_none(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """`parse`, with the word `none` for an option that may be None."""

    def either(text: str) -> Any:
        return None if text.strip().lower() == "none" else parse(text)

    return either


def parser_for(setting: Setting) -> tuple[Callable[[str], Any], bool]:
    """How one flag word becomes the option's value, and whether it repeats.

    An option that may be None takes the word `none` too (to undo a default
    such as the local lineup's).
    """
    kind = _unwrap(setting.kind)
    parse, repeats = _parser_of(setting, kind)
    if kind is not setting.kind and not repeats:
        parse = _or_none(parse)
    return parse, repeats


def _parser_of(setting: Setting, kind: Any) -> tuple[Callable[[str], Any], bool]:
    if kind is RetryPolicy:
        return attempts, False
    if kind is MoAPrompts:
        return prompts_file, False
    if typing.get_origin(kind) in (Mapping, dict):
        value_kind = typing.get_args(kind)[1]
        if typing.get_origin(value_kind) is tuple:  # several texts: one a flag
            value_kind = _stop_text
        return _role_value(value_kind, setting.knob.flag.metavar or "KEY=VALUE"), True
    if kind in (int, float):
        return kind, False
    return str, False  # choices: the option's own check names them


def add_option_flags(group: Any) -> None:
    """One flag per option of `MoAOptions`, as its knob declares it.

    Flags not given are left out of the parsed arguments (`SUPPRESS`), so
    `options_from` leaves those options at their defaults.
    """
    for setting in MoAOptions.settings():
        flag = setting.knob.flag
        text = setting.knob.doc.replace("%", "%%").replace("`", "")
        if flag.negate:
            group.add_argument(
                *flag.names,
                dest=setting.name,
                action="store_const",
                const=False,
                default=argparse.SUPPRESS,
                help=f"switch off {setting.name} (on by default): {text}",
            )
            continue
        parse, repeats = parser_for(setting)
        group.add_argument(
            *flag.names,
            dest=setting.name,
            type=parse,
            metavar=flag.metavar,
            action="append" if repeats else "store",
            default=argparse.SUPPRESS,
            help=f"{text} (default: {setting.default_text}"
            + (
                "; the word none for None)"
                if _unwrap(setting.kind) is not setting.kind and not repeats
                else ")"
            ),
        )


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options the command line gave, by name (`none` included), checked."""
    chosen: dict[str, Any] = {}
    for setting in MoAOptions.settings():
        if hasattr(args, setting.name):
            value = getattr(args, setting.name)
            chosen[setting.name] = _pairs(value) if parser_for(setting)[1] else value
    MoAOptions.build(where="the command line", **chosen)
    return chosen


def options_from(args: argparse.Namespace) -> MoAOptions:
    """The options the command line set; the others keep their defaults."""
    return MoAOptions.build(where="the command line", **given_options(args))
