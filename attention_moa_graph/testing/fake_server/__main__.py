"""`python -m attention_moa_graph.testing.fake_server`: serve until interrupted."""

from attention_moa_graph.testing.fake_server.process import main

main()
