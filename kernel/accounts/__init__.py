"""Accounts: users, sign-in, sessions, API keys, one-time tokens, rate limits, mail."""
