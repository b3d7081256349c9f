"""Events for App Servers: the outbox, its dispatcher, request signing, and the
synchronous before-send hook.

An event is written to the outbox (``webhook_events``) in the same transaction as what
caused it. The dispatcher on every node claims due deliveries, signs and sends them,
and retries with backoff; delivery is at least once, with the event ID for the
receiver's de-duplication.
"""
