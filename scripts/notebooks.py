"""The offline notebooks, run in a fresh kernel and saved with their outputs.

A reader on the web then sees what each cell prints. The demo models are
deterministic, so the outputs are the same on every machine; a test runs each
notebook again and checks that the saved outputs are the ones it prints.
`make notebooks` (`python -m scripts.notebooks`) rewrites them. The notebook
that needs provider keys (`03_real_models.ipynb`) is left without outputs:
none could be made here honestly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
OFFLINE = (
    "01_quickstart.ipynb",
    "02_inside_the_layers.ipynb",
    "04_agent_with_tools.ipynb",
)


def executed(name: str) -> Any:
    """The notebook `name`, run top to bottom in a fresh kernel."""
    import nbclient
    import nbformat

    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    return notebook


def shown(notebook: Any) -> list[str]:
    """Per code cell, the text a reader sees of its outputs, joined.

    Joined because a kernel may split one cell's printing into several stream
    outputs, differently from run to run.
    """
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cells.append(
            "".join(
                output.get("text", "")
                or str(output.get("data", {}).get("text/plain", ""))
                for output in cell.outputs
            )
        )
    return cells


def main() -> None:
    import nbformat

    for name in OFFLINE:
        notebook = executed(name)
        notebook.metadata.pop("widgets", None)
        nbformat.write(notebook, NOTEBOOKS / name)
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
