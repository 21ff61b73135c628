"""Prometheus metrics, held in one registry per runtime (no import-time globals)."""

from __future__ import annotations

from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge


def host_label(endpoint: str) -> str:
    """The host of a push endpoint (``scheme://host:port``), for a label: customers' URLs,
    paths, ports and tokens stay out of /metrics (issue 14 item 16)."""
    try:
        host = urlsplit(endpoint).hostname
    except ValueError:
        host = None
    return host or "invalid"


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
        # Voice calls (issue #8): every finished attempt, by line and final SIP code.
        self.calls = Counter(
            "simgate_call_attempts", "Finished call attempts", ["line", "sip_code"], registry=r
        )
        self.calls_queued = Gauge("simgate_calls_queued", "Calls queued or in progress", registry=r)
        # SIP voice lines (issue 17): read from each line's own counters when scraped, so the
        # RTP path (50 packets/s a call) pays nothing for them.
        self.sip_calls_up = Gauge(
            "simgate_sip_calls_up", "SIP calls answered and not ended", ["line"], registry=r
        )
        self.sip_rtp_packets = Gauge(
            "simgate_sip_rtp_packets",
            "RTP packets since start (kind: sent, received, lost)",
            ["line", "kind"],
            registry=r,
        )
        # Push engine (issue #3): gauges refreshed by the sender, counters per attempt.
        self.push_pending = Gauge("simgate_push_pending", "Pushes not delivered yet", registry=r)
        self.push_oldest_pending_age = Gauge(
            "simgate_push_oldest_pending_age_seconds", "Age of the oldest pending push", registry=r
        )
        self.push_dead = Gauge("simgate_push_dead", "Dead-lettered pushes", registry=r)
        self.push_attempts = Counter(
            "simgate_push_attempts", "Push attempts by outcome", ["host", "outcome"], registry=r
        )
        self.push_failures = Counter(
            "simgate_push_failures", "Push attempts not accepted", ["host"], registry=r
        )
