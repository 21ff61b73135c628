"""Prometheus series of the SMPP server, per SMPP account (issue 18 "Metrics").

Registered on the process registry (simgate.metrics.Metrics.registry) so /metrics shows
them with the rest: binds open, submit_sm by outcome (accepted, throttled, window_full,
refused, failed), receipts and incoming SMS waiting in the outbox per account.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class SmppMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.binds = Gauge(
            "simgate_smpp_binds", "Open SMPP binds", ["system_id", "bind_type"], registry=registry
        )
        self.submits = Counter(
            "simgate_smpp_submits",
            "submit_sm/data_sm by outcome",
            ["system_id", "outcome"],
            registry=registry,
        )
        self.pending = Gauge(
            "simgate_smpp_outbox_pending",
            "deliver_sm (receipts, incoming SMS) not answered yet, per account",
            ["account_id"],
            registry=registry,
        )
        self.connections = Gauge(
            "simgate_smpp_connections", "Open SMPP connections", registry=registry
        )

    def count(self, system_id: str, outcome: str, n: int = 1) -> None:
        self.submits.labels(system_id, outcome).inc(n)
