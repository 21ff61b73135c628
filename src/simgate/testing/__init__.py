"""Shipped fakes for tests: fake clock, scripted peers, push receiver."""
