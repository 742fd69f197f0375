"""The offline notebooks run top to bottom in a fresh kernel."""

from __future__ import annotations

import re

import nbformat
import pytest

from scripts.notebooks import NOTEBOOKS, OFFLINE, executed, shown

CLOCK = re.compile(r"\b\d{2}:\d{2}\b")  # the tools notebook asks for the time


def _readable(cells: list[str]) -> list[str]:
    return [CLOCK.sub("HH:MM", text) for text in cells]


@pytest.mark.parametrize("name", OFFLINE)
@pytest.mark.notebooks
def test_notebook_runs_offline_and_ships_the_outputs_it_prints(name):
    notebook = executed(name)
    outputs = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    ]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert EXPECTED[name] in text
    # A reader on the web sees the outputs: the saved ones, still current.
    saved = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert _readable(shown(saved)) == _readable(shown(notebook)), (
        f"{name}'s saved outputs are stale: run `make notebooks`"
    )


EXPECTED = {
    "01_quickstart.ipynb": "stop reason: early_stop",
    "02_inside_the_layers.ipynb": "plain MoA:   9 calls",
    "04_agent_with_tools.ipynb": "', '5']",  # both tools ran
}


def test_the_real_models_notebook_says_it_needs_keys_before_any_call():
    notebook = nbformat.read(NOTEBOOKS / "03_real_models.ipynb", as_version=4)
    first, guard = notebook.cells[0], notebook.cells[1]
    assert first.cell_type == "markdown" and "OPENAI_API_KEY" in first.source
    assert guard.cell_type == "code" and "raise RuntimeError" in guard.source
