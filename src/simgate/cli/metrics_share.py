"""The children of ``simgate run`` tell the parent their metrics, for one /metrics (issue 15).

Each child (the ``--worker-process`` worker; each ``--workers N`` HTTP process) inherits one
end of a ``socketpair(AF_UNIX, SOCK_STREAM)`` for this. When /metrics is asked for, the
parent asks each child over it (cli/child_channel.py, whose frames are matched to requests by
``seq``: a child that answers late, after a scrape timed out, never shifts the answers of
later scrapes); the child answers with its registry's samples (:class:`MetricsAnswerer`,
simgate.metrics.to_rows), and the parent merges them into its own (simgate.metrics.merge).
A pair apart from the worker's port actions (cli/port_remote.py): the HTTP children have
none, and cli/worker_child.py gives each child its pairs.

Restarts: a child's counters start from zero in each new process. :class:`ChildMetrics` keeps
the counters it last heard from each ended child and adds them to what the running one says,
so a merged counter never goes down while the parent lives (Prometheus would read a drop as a
reset to zero and count the rest again). What a child counted after its last scrape and
before it died is lost, as it is for any process that dies between two scrapes.
"""

from __future__ import annotations

import functools
import logging
import socket
from typing import Any

from simgate.cli.child_channel import ChildAnswers, ChildChannel
from simgate.metrics import (
    Families,
    Metrics,
    add_counters,
    collect,
    counters_of,
    from_rows,
    merge,
    to_rows,
)

log = logging.getLogger(__name__)

ANSWER_TIMEOUT_S = 2.0  # a scrape waits this long for a child, then answers without it
# A registry's samples may outgrow the port actions' frames (a line's series each).
MAX_ANSWER = 64 * 1024 * 1024
_REQUEST: dict[str, Any] = {"op": "metrics"}


class ChildMetrics:
    """One child's samples, across the processes that child slot has had (a MetricsSource).

    :meth:`new_pair` before each start of the child; :meth:`families` when scraped."""

    def __init__(self, timeout_s: float = ANSWER_TIMEOUT_S) -> None:
        self._timeout_s = timeout_s
        self._channel = ChildChannel(max_frame=MAX_ANSWER)
        self._last: Families = {}  # what the running child said last
        self._carried: Families = {}  # the counters of the children before it

    def new_pair(self) -> socket.socket:
        """A pair for the child about to start; returns its end (close it once started).
        What the previous child counted is carried from here on."""
        if self._last:
            self._carried = merge(self._carried, [counters_of(self._last)])
            self._last = {}
        return self._channel.new_pair()

    async def close(self) -> None:
        await self._channel.close()

    async def families(self) -> Families:
        try:
            answer = await self._channel.ask(_REQUEST, self._timeout_s)
            live = from_rows(answer.get("families"))
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            # OSError: ChildGone. ValueError, TypeError: no samples in the answer (the
            # child's failure, said in it). Gone, restarting, too slow or failing: its
            # counters as last heard (they must not drop), none of its gauges (stale).
            log.debug("no metrics from the child: %r", exc)
            return add_counters(counters_of(self._last), self._carried)
        self._last = live
        return add_counters(live, self._carried)


class MetricsAnswerer(ChildAnswers):
    """In a child: answers the parent's requests with this process's samples."""

    def __init__(self, fd: int, metrics: Metrics) -> None:
        super().__init__(fd, functools.partial(_samples, metrics))


async def _samples(metrics: Metrics, request: dict[str, Any]) -> dict[str, Any]:
    return {"families": to_rows(collect(metrics.registry))}
