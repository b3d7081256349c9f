"""Logging set-up, health, and (later) metrics."""
