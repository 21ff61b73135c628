"""Prometheus metrics, held in one registry per runtime (no import-time globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.submits = Counter(
            "simgate_line_submits", "Line submit outcomes", ["line", "outcome"], registry=r
        )
        self.reports = Counter(
            "simgate_line_reports", "Delivery reports per line", ["line", "status"], registry=r
        )
        self.incoming = Counter(
            "simgate_line_incoming", "Incoming SMS per line", ["line"], registry=r
        )
        self.accepted = Counter(
            "simgate_messages_accepted", "Messages accepted", ["dialect"], registry=r
        )
        self.queue_depth = Gauge("simgate_queue_depth", "Messages queued", registry=r)
        self.oldest_queued_age = Gauge(
            "simgate_queue_oldest_age_seconds", "Age of the oldest queued message", registry=r
        )
        self.messages_by_state = Gauge(
            "simgate_messages", "Messages by state", ["state"], registry=r
        )
        self.reaped = Counter("simgate_leases_reaped", "Expired leases reaped", registry=r)
        self.expired = Counter("simgate_messages_expired", "Messages past validity", registry=r)
