"""Optional parts of the package and the extra that installs each.

The core needs only LangGraph and LangChain; the command line, the server,
the evaluation plots and the provider clients come with extras. A part whose
extra is missing says, in one line, what to install.
"""

from __future__ import annotations

import importlib.util


class MissingExtraError(ImportError):
    """A part of the package was used without the extra that installs it."""


def missing(*modules: str) -> list[str]:
    """Those of `modules` that cannot be imported."""
    absent = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            absent.append(name)
    return absent


def require(extra: str, *modules: str, what: str | None = None) -> None:
    """Raise `MissingExtraError` naming the install command if a module is missing."""
    absent = missing(*modules)
    if absent:
        part = what or "this part of attention-moa-graph"
        raise MissingExtraError(
            f"{part} needs the `{extra}` extra ({', '.join(absent)} not installed): "
            f"pip install 'attention-moa-graph[{extra}]'"
        )
