"""Parley's benchmark suite. Each scenario starts what it needs on loopback and stops it."""
