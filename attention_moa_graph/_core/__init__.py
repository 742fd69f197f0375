"""The algorithm: options, state, prompts, the layer subgraph and the outer loop."""
