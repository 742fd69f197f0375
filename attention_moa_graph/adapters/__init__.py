"""The ensemble behind other interfaces: a chat model, a server, a stream, Studio."""
