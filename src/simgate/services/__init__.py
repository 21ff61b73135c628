"""Use cases: the only API that dialects, console and CLI call."""
