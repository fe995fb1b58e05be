"""Accounts: staff passwords and API keys."""
