"""How an option is declared once and read everywhere.

An options class is a frozen, keyword-only dataclass deriving from `Options`,
whose fields are made with `option(...)`, or with `group(...)` for a nested
options class. Each `option` declares its default, its documentation, its
check, how a run may override it, whether it changes the answers, whether the
comparison baselines take it, and its command-line flag. The factories, the
chat model, the run context, the evaluation systems, the command line and the
README's table read these declarations instead of repeating them.
"""

from __future__ import annotations

import difflib
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, TypeVar, cast

Check = Callable[[Any, str], Any]
"""(value, option name) -> the value to keep; raises ValueError saying how to fix it."""

RunOverride = Literal["any", "lower", "disable"]
"""How a run's context may override an option.

`any`: with any valid value; `lower`: only with a value no higher than the
built one (a depth cap); `disable`: only by switching off a stage built on.
"""


@dataclass(frozen=True)
class Flag:
    """How the command line spells an option (`cli/` turns it into a parser).

    Attributes:
        names: The flag and its aliases, e.g. `("-l", "--layers")`.
        metavar: The value's name in `--help`.
        negate: For a switch on by default: the flag turns it off.
    """

    names: tuple[str, ...]
    metavar: str | None = None
    negate: bool = False


@dataclass(frozen=True)
class Knob:
    """Everything declared about one option besides its name and default."""

    doc: str
    check: Check
    flag: Flag
    example: Any
    """A valid value other than the default (for `--help` and the tests)."""
    run: RunOverride | None = None
    """How a run may override it through its context; None: it is fixed at build."""
    answers: bool = True
    """Whether it changes the answers (and so an evaluation system's fingerprint)."""
    baselines: bool = False
    """Whether the comparison ensembles (`create_moa`, ...) take it too."""
    shown: str | None = None
    """How `--help` and the README show the default, when `repr` will not do."""


def option(
    default: Any,
    *,
    doc: str,
    check: Check,
    flag: Flag,
    example: Any,
    run: RunOverride | None = None,
    answers: bool = True,
    baselines: bool = False,
    shown: str | None = None,
) -> Any:
    """Declare one option of an `Options` class (a dataclass field)."""
    knob = Knob(doc, check, flag, example, run, answers, baselines, shown)
    return field(default=default, metadata={"knob": knob})


def group(default: Options) -> Any:
    """Declare a nested options class, whose options are set by their own names."""
    return field(default=default, metadata={"group": True})


@dataclass(frozen=True)
class Setting:
    """One option of an options class, nested groups flattened."""

    name: str
    knob: Knob
    default: Any
    group: str | None
    """The field of the root class holding it, for options of a nested group."""
    kind: Any = None
    """Its type, as annotated (e.g. `int | None`)."""

    @property
    def default_text(self) -> str:
        """The default as `--help` and the README show it."""
        if self.knob.shown is not None:
            return self.knob.shown
        return "None" if self.default is None else repr(self.default)


OptionsT = TypeVar("OptionsT", bound="Options")
_SETTINGS: dict[type[Any], tuple[Setting, ...]] = {}


class Options:
    """Base of the options classes: each field checked, groups set by flat names."""

    def __post_init__(self) -> None:
        """Check every option; keep the values the checks return."""
        for item in fields(self):  # type: ignore[arg-type]
            value = getattr(self, item.name)
            if item.metadata.get("group"):
                kind = type(item.default)
                if not isinstance(value, kind):
                    raise ValueError(
                        f"`{item.name}` must be a {kind.__name__}, got "
                        f"{type(value).__name__}; e.g. {kind.__name__}()."
                    )
                continue
            knob: Knob = item.metadata["knob"]
            object.__setattr__(self, item.name, knob.check(value, item.name))

    @classmethod
    def settings(cls) -> tuple[Setting, ...]:
        """Every option, the nested groups' included, in declaration order."""
        cached = _SETTINGS.get(cls)
        if cached is None:
            found: list[Setting] = []
            hints = typing.get_type_hints(cls)
            for item in fields(cls):  # type: ignore[arg-type]
                if item.metadata.get("group"):
                    nested: Options = item.default  # type: ignore[assignment]
                    found += [replace(s, group=item.name) for s in nested.settings()]
                else:
                    knob = item.metadata["knob"]
                    kind = hints[item.name]
                    found.append(Setting(item.name, knob, item.default, None, kind))
            names = [s.name for s in found]
            assert len(set(names)) == len(names), f"option names repeat in {names}"
            cached = _SETTINGS[cls] = tuple(found)
        return cached

    @classmethod
    def groups(cls) -> dict[str, type[Options]]:
        """The nested options classes, by the field that holds each."""
        return {
            item.name: cast(type[Options], type(item.default))
            for item in fields(cls)  # type: ignore[arg-type]
            if item.metadata.get("group")
        }

    @classmethod
    def setting(cls, name: str) -> Setting:
        """The option called `name`."""
        for candidate in cls.settings():
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    @classmethod
    def build(
        cls: type[OptionsT],
        base: OptionsT | None = None,
        *,
        where: str = "options",
        allowed: Callable[[Setting], bool] | None = None,
        **values: Any,
    ) -> OptionsT:
        """An instance from option names (nested ones included), over `base`.

        Raises:
            TypeError: If a name is no option (or not one `allowed` accepts);
                the message suggests the nearest name.
            ValueError: If a value fails its option's check.
        """
        start = base if base is not None else cls()
        groups = cls.groups()
        whole_groups = {n: values.pop(n) for n in list(values) if n in groups}
        if whole_groups:
            start = replace(start, **whole_groups)  # type: ignore[type-var]
        known = {s.name: s for s in cls.settings() if allowed is None or allowed(s)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise TypeError(_unknown_message(where, unknown[0], known))
        top = {n: v for n, v in values.items() if known[n].group is None}
        nested: dict[str, dict[str, Any]] = {}
        for name, value in values.items():
            owner = known[name].group
            if owner is not None:
                nested.setdefault(owner, {})[name] = value
        for owner, changes in nested.items():
            top[owner] = replace(getattr(start, owner), **changes)
        return replace(start, **top) if top else start  # type: ignore[type-var]

    def get(self, name: str) -> Any:
        """The value of the option called `name` (nested ones included)."""
        owner = self.setting(name).group
        return getattr(getattr(self, owner) if owner else self, name)

    def values(self) -> dict[str, Any]:
        """Every option's value by name, the nested groups' included."""
        return {s.name: self.get(s.name) for s in self.settings()}

    def changed(self) -> dict[str, Any]:
        """The options whose value is not their default, by name."""
        return {
            s.name: value
            for s in self.settings()
            if (value := self.get(s.name)) != s.default
        }


_RUN = {None: "no", "any": "yes", "lower": "lower only", "disable": "off only"}


def markdown_table(options: type[Options]) -> str:
    """The options of `options` as a markdown table (the README's)."""
    rows = [
        "| option | default | per run | command line | what it does |",
        "|---|---|---|---|---|",
    ]
    for s in options.settings():
        flag = s.knob.flag
        spelled = ", ".join(f"`{name}`" for name in flag.names)
        if flag.metavar:
            spelled = spelled[:-1] + f" {flag.metavar}`"
        where = f"`{s.name}`" + (f" ({s.group})" if s.group else "")
        doc = " ".join(s.knob.doc.split()).replace("|", "\\|")
        rows.append(
            f"| {where} | `{s.default_text}` | {_RUN[s.knob.run]} | {spelled} | {doc} |"
        )
    return "\n".join(rows) + "\n"


def _unknown_message(where: str, name: str, known: Mapping[str, Setting]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean `{close[0]}`?" if close else ""
    return f"{where} got an unknown option `{name}`{hint} Options: {', '.join(known)}."


# Checks: each returns the value to keep, or raises ValueError saying how to fix it.


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def whole(low: int, high: int | None = None, *, optional: bool = False) -> Check:
    """A whole number from `low` (to `high`), or None when `optional`."""
    span = f"from {low} to {high}" if high is not None else f">= {low}"

    def check(value: Any, name: str) -> Any:
        if value is None and optional:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < low
            or (high is not None and value > high)
        ):
            unset = " or None" if optional else ""
            raise ValueError(
                f"`{name}` must be a whole number {span}{unset}, got {value!r}."
            )
        return value

    return check


def number(low: float, high: float, *, optional: bool = True) -> Check:
    """A number from `low` to `high`, or None when `optional`."""

    def check(value: Any, name: str) -> Any:
        if value is None and optional:
            return None
        if not _is_number(value) or not low <= value <= high:
            raise ValueError(
                f"`{name}` must be a number from {low:g} to {high:g}, got {value!r}."
            )
        return float(value)

    return check


def seconds(value: Any, name: str) -> float | None:
    """A positive number of seconds, or None (no limit)."""
    if value is None:
        return None
    if not _is_number(value) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive number of seconds or None, got {value!r}."
        )
    return float(value)


def switch(value: Any, name: str) -> bool:
    """True or False."""
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False, got {value!r}.")
    return value


def one_of(*choices: str) -> Check:
    """One of `choices`."""

    def check(value: Any, name: str) -> Any:
        if value not in choices:
            listed = ", ".join(map(repr, choices))
            raise ValueError(f"`{name}` must be one of {listed}, got {value!r}.")
        return value

    return check


def instance_of(kind: type, how: str, *, optional: bool = False) -> Check:
    """An instance of `kind` (or None when `optional`); `how` says how to make one."""

    def check(value: Any, name: str) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, kind):
            raise ValueError(
                f"`{name}` must be a {kind.__name__}{' or None' if optional else ''}, "
                f"got {type(value).__name__}; {how}."
            )
        return value

    return check
