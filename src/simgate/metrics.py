"""Prometheus metrics, held in one registry per runtime (no import-time globals).

One /metrics for every process of a ``simgate run`` (issue 15): ``--worker-process`` runs
the worker in a child, ``--workers N`` more HTTP processes, and the counters each one keeps
(messages dispatched, push attempts, ...) are the child's alone. The parent asks each child
for its samples when it is scraped (:class:`MetricsSource`, cli/metrics_share.py) and
answers with one merged exposition (:func:`merge`): counters and process gauges add up across
the processes, and the gauges read from the database when scraped (:data:`DATABASE_GAUGES`)
are the answering process's own (every process reads the same rows: a sum would count them
N times).

Why not prometheus_client's multiprocess mode: it is chosen by an environment variable
before the library is imported (a process-wide global, shared by every registry in the
process, where tests open many runtimes), and it keeps values in files, which a gauge that
reads its value when scraped (``set_function``: the SIP lines' RTP counters) never writes.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


def host_label(endpoint: str) -> str:
    """The host of a push endpoint (``scheme://host:port``), for a label: customers' URLs,
    paths, ports and tokens stay out of /metrics (issue 14 item 16)."""
    try:
        host = urlsplit(endpoint).hostname
    except ValueError:
        host = None
    return host or "invalid"


# Gauges every process reads from the database when scraped (services/health.py,
# services/pushes.py): the same rows for every process, so the answering process's value.
DATABASE_GAUGES = frozenset(
    {
        "simgate_queue_depth",
        "simgate_queue_oldest_age_seconds",
        "simgate_messages",
        "simgate_push_pending",
        "simgate_push_oldest_pending_age_seconds",
        "simgate_push_dead",
    }
)

# A sample: its name (``x_total``, ``x_created``, ...) and its labels, sorted.
SampleKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class Family:
    """One metric family as collected: prometheus_client's Metric, as plain data."""

    name: str
    type: str
    doc: str
    samples: dict[SampleKey, float] = field(default_factory=dict)


Families = dict[str, Family]


def collect(registry: CollectorRegistry) -> Families:
    out: Families = {}
    for metric in registry.collect():
        fam = out.setdefault(metric.name, Family(metric.name, metric.type, metric.documentation))
        for s in metric.samples:
            fam.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# A sample's value as JSON carries it: NaN and the infinities as text (``float`` reads it
# back), since JSON has no such numbers and orjson, the encoder of the children's frames
# (cli/child_channel.py), writes them as null.
Rows = list[list[object]]


def to_rows(families: Families) -> Rows:
    """``families`` as JSON values, for another process (cli/metrics_share.py)."""
    return [
        [
            f.name,
            f.type,
            f.doc,
            [
                [n, list(map(list, labels)), v if math.isfinite(v) else repr(v)]
                for (n, labels), v in f.samples.items()
            ],
        ]
        for f in families.values()
    ]


def from_rows(rows: object) -> Families:
    """What :func:`to_rows` gave, read back (ValueError or TypeError: not its shape)."""
    if not isinstance(rows, list):
        raise ValueError(f"metrics rows are a list, not {type(rows).__name__}")
    out: Families = {}
    for name, typ, doc, samples in rows:
        fam = out[str(name)] = Family(str(name), str(typ), str(doc))
        for n, labels, value in samples:
            fam.samples[(str(n), tuple((str(k), str(v)) for k, v in labels))] = float(value)
    return out


def is_counter(fam: Family, sample: str) -> bool:
    """A sample that only grows while its process lives (not a ``_created`` time)."""
    return fam.type in ("counter", "histogram", "summary") and not sample.endswith("_created")


def merge(own: Families, others: Iterable[Families]) -> Families:
    """One view of several processes: counters and process gauges add up, ``_created`` is
    the earliest, and :data:`DATABASE_GAUGES` are ``own``'s alone."""
    out = {name: Family(f.name, f.type, f.doc, dict(f.samples)) for name, f in own.items()}
    for families in others:
        for name, fam in families.items():
            if name in DATABASE_GAUGES:
                continue
            mine = out.get(name)
            if mine is None:
                mine = out[name] = Family(fam.name, fam.type, fam.doc)
            for key, value in fam.samples.items():
                had = mine.samples.get(key)
                if had is None:
                    mine.samples[key] = value
                elif key[0].endswith("_created"):
                    mine.samples[key] = min(had, value)
                else:
                    mine.samples[key] = had + value
    return out


def add_counters(families: Families, carried: Families) -> Families:
    """``families`` with ``carried``'s counters added: what processes that ended counted."""
    return merge(families, [carried]) if carried else families


def counters_of(families: Families) -> Families:
    """Only the counters of ``families`` (what an ended process leaves behind)."""
    out: Families = {}
    for name, fam in families.items():
        kept = {k: v for k, v in fam.samples.items() if is_counter(fam, k[0])}
        if kept:
            out[name] = Family(fam.name, fam.type, fam.doc, kept)
    return out


class _Fixed(Collector):
    def __init__(self, families: Families) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        for fam in self._families.values():
            metric = Metric(fam.name, fam.doc, fam.type)
            for (name, labels), value in fam.samples.items():
                metric.add_sample(name, dict(labels), value)
            yield metric


def render(families: Families) -> bytes:
    """The Prometheus text exposition of ``families``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return generate_latest(registry)


class MetricsSource(Protocol):
    """Another process's samples (cli/metrics_share.py), asked for when /metrics is."""

    async def families(self) -> Families: ...


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Other processes of this `simgate run` (worker child, HTTP children): /metrics
        # answers for all of them (:meth:`exposition`).
        self.sources: list[MetricsSource] = []
        # In an extra HTTP process of `run --workers N`: /metrics is the first process's
        # (one /metrics whichever process the kernel gave the connection; cli/http_workers.py).
        self.answered_by: Callable[[], Awaitable[bytes]] | None = None
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

    async def exposition(self) -> bytes:
        """What /metrics answers: this process's samples, with every source's merged in."""
        if not self.sources:
            return generate_latest(self.registry)
        others: list[Families] = [await source.families() for source in self.sources]
        return render(merge(collect(self.registry), others))
