"""Durable pushes of results to customers' URLs (outbox, sender, signer, SSRF guard)."""
