"""HTTP API: one router per vendor dialect, plus health and metrics."""
