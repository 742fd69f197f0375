"""`python -m attention_moa_graph.cli`."""

import sys

from attention_moa_graph.cli import run

sys.exit(run())
