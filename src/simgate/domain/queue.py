"""What the message queue hands to a worker and what a worker and a line hand back.

Rows between the dispatcher, the messaging service and the repositories: a leased message,
the line's answer for it, a part the line accepted, and a delivery report for a part. The
rows built once per message (the lease, the answers, the reports, the rows inside the
service's unit of work) are NamedTuples: a frozen dataclass costs several times as much to
build (``object.__setattr__`` per field: 2.5 µs for SubmitRecord where the NamedTuple takes
0.7), which showed in the dispatch benchmark and, in ``simgate run``, on the GIL the HTTP
sends share (issue 15). Their optional fields are meant to be passed by keyword.
"""

from __future__ import annotations

from typing import NamedTuple

from simgate.codecs.segments import Encoding
from simgate.domain.messages import Event, State


class Leased(NamedTuple):
    """What a worker needs to submit a claimed message."""

    id: int
    sender: str
    recipient: str
    text: str
    encoding: Encoding
    parts: int
    port_hint: str | None
    line: str
    attempts: int
    report_requested: bool
    validity_until_ms: int
    # Which lease of the message this is (1 for the first): a late report names it, so a
    # report for an earlier try cannot settle a message the operator sent again.
    lease_seq: int


class SubmitRecord(NamedTuple):
    """The line's answer for one leased message (the fields after ``event`` by keyword)."""

    message_id: int
    event: Event  # SUBMIT_OK | SUBMIT_RETRY | SUBMIT_REJECTED | SUBMIT_FAILED | LEASE_EXPIRED
    port: int | None = None
    part_refs: tuple[str, ...] = ()
    first_ref: int | None = None
    retry_at_ms: int = 0
    count_attempt: bool = True  # False when the worker merely deferred it (port busy)
    line: str | None = None  # set when failing over to another line
    status_code: int | None = None
    error_text: str | None = None


class ReportHint(NamedTuple):
    """What a line remembered of the submit a report is for, so the report can find its
    message when no part row links ``line_ref`` to it (the process died between the line's
    answer and recording it: README "Crash safety")."""

    message_id: int
    lease_seq: int  # Leased.lease_seq of the submit
    part: int  # 1-based: the first part the report is for
    parts: int  # how many parts the line took for that submit
    port: int | None = None
    # How many parts, from ``part`` on, the one report stands for: a long text the line sent
    # as one payload under one id (SMPP message_payload) has one receipt for all its parts.
    covers: int = 1


class PartReport(NamedTuple):
    """A line's delivery report for one part, found by the reference the line gave it."""

    line: str
    line_ref: str
    status_code: int  # 0 delivered, else the line's failure code
    done_ms: int
    hint: ReportHint | None = None


class NewPart(NamedTuple):
    """A part the line accepted: reports find it by (line, line_ref)."""

    message_id: int
    seq: int
    line: str
    port: int | None
    line_ref: str


class PartStatus(NamedTuple):
    """A report matched to its part, ready to be written on it."""

    message_id: int
    seq: int
    status_code: int
    done_ms: int


class ReportTally(NamedTuple):
    """How far the reports of one message have come (the settle rule decides from it)."""

    message_id: int
    state: State
    recorded: int  # parts the line gave a reference for
    reported: int  # of those, parts with a report
    worst: int | None  # the highest status code reported (0 = all delivered)


class IdState(NamedTuple):
    """A message id with its state as read inside the unit of work."""

    id: int
    state: State
