"""The offline notebooks run top to bottom in a fresh kernel."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
OFFLINE = [
    "01_quickstart.ipynb",
    "02_inside_the_layers.ipynb",
    "04_agent_with_tools.ipynb",
]


@pytest.mark.parametrize("name", OFFLINE)
@pytest.mark.notebooks
def test_notebook_runs_offline(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    outputs = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    ]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert EXPECTED[name] in text


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
