"""The README's configuration table, generated from the option declarations.

`make docs` (`python -m scripts.readme_table`) rewrites it; a test checks it.
"""

from __future__ import annotations

import re
from pathlib import Path

from attention_moa_graph import MoAOptions
from attention_moa_graph._knobs import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(
    r"(<!-- options-table:[^\n]*-->\n)(.*?)(<!-- /options-table -->)", re.DOTALL
)


def current() -> str:
    """The table the README holds now."""
    found = BLOCK.search(README.read_text(encoding="utf-8"))
    assert found, "README.md has no options-table block"
    return found.group(2)


def expected() -> str:
    """The table the declarations give."""
    return markdown_table(MoAOptions)


def main() -> None:
    text = README.read_text(encoding="utf-8")
    README.write_text(
        BLOCK.sub(lambda m: m.group(1) + expected() + m.group(3), text),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
