"""Messaging: the outbox (every message's state), the dispatcher, rendering and the channels."""
