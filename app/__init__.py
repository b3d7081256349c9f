"""Parley: an open, self-hostable instant-messaging backend-as-a-service."""
