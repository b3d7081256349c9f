"""Use cases, one module per family. Called by api/ and gateway/; they call storage/ and
broker/. Nothing here knows about HTTP or WebSocket."""
