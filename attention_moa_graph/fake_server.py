"""Where the loopback fake server used to live; it is in `testing` now.

`python -m attention_moa_graph.fake_server` still starts it.
"""

from attention_moa_graph.testing.fake_server import *  # noqa: F403
from attention_moa_graph.testing.fake_server import main

if __name__ == "__main__":
    main()
