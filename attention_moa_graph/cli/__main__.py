"""`python -m attention_moa_graph.cli`."""

import sys

from attention_moa_graph.cli import main

sys.exit(main())
