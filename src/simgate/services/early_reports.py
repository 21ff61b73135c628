"""Delivery reports against the submit answers they overtook, and what applying reports did.

The dispatcher holds the line's reports that came before their submit's record
(dispatch/report_hold.py) and hands them to the unit of work that records it
(services/messaging.py ``record_submits``): :class:`EarlyReports` sorts them against the
SUBMIT_OK answers written, so their statuses go on the parts as they are inserted and a
message every part of which is reported settles in the same row write (issue 15).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from simgate.domain.events import MessageChange
from simgate.domain.messages import TRANSITIONS, Event, State
from simgate.domain.queue import PartReport, PartStatus, ReportTally, SubmitRecord


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying delivery reports did: how many matched a part, the changes, and the
    messages that orphans kept with a line's hint name."""

    matched: int
    changes: list[MessageChange]
    hinted: frozenset[int] = frozenset()


@dataclass(slots=True)
class EarlyReports:
    """Reports that came before their submit's record, sorted against the parts it adds:
    ``statuses`` go on the parts as they are inserted, ``settled`` holds the tallies of the
    messages every part of which is reported so, ``rest`` go the ordinary way (a message
    not recorded here, a part not among its refs, some parts still unreported)."""

    statuses: dict[tuple[int, int], PartStatus]
    settled: dict[tuple[Event, State], list[ReportTally]]  # by (report event, final state)
    rest: list[PartReport]

    @classmethod
    def sort(cls, applied: Sequence[SubmitRecord], reports: Sequence[PartReport]) -> EarlyReports:
        if not reports:
            return cls({}, {}, [])
        # A newer report for a ref replaces the older (as orphans do); what is left in
        # ``rest`` once the settled messages took theirs goes the ordinary way, in order.
        latest = {(report.line, report.line_ref): report for report in reports}
        taken: set[tuple[str, str]] = set()
        statuses: dict[tuple[int, int], PartStatus] = {}
        settled: dict[tuple[Event, State], list[ReportTally]] = {}
        # Per message on the worker's record path (a tenth of a batch's CPU, issue 15): the
        # one-part message, nearly every one, without the general loop, and the records
        # built as tuples (a NamedTuple's own constructor is a Python call per record).
        new, sent = tuple.__new__, State.SENT
        for r in applied:
            refs = r.part_refs
            if not refs:
                continue
            mid, line = r.message_id, r.line or ""
            if len(refs) == 1:
                key = (line, refs[0])
                rep = latest.get(key)
                if rep is None or rep.hint is None or rep.hint.message_id != mid:
                    continue
                worst = max(0, rep.status_code)
                statuses[(mid, 0)] = new(PartStatus, (mid, 0, rep.status_code, rep.done_ms))
                taken.add(key)
                tally = new(ReportTally, (mid, sent, 1, 1, worst))
                settled.setdefault(_SETTLED_BY[not worst], []).append(tally)
                continue
            mine: list[PartReport] = []
            for ref in refs:
                rep = latest.get((line, ref))
                if rep is None or rep.hint is None or rep.hint.message_id != mid:
                    break  # not every part reported (or a ref of another message)
                mine.append(rep)
            else:
                worst = 0
                for seq, rep in enumerate(mine):
                    statuses[(mid, seq)] = PartStatus(mid, seq, rep.status_code, rep.done_ms)
                    worst = max(worst, rep.status_code)
                    taken.add((line, rep.line_ref))
                tally = ReportTally(mid, sent, len(mine), len(mine), worst)
                settled.setdefault(_SETTLED_BY[not worst], []).append(tally)
        if not taken:
            return cls(statuses, settled, list(latest.values()))
        rest = [rep for key, rep in latest.items() if key not in taken]
        return cls(statuses, settled, rest)


# A SENT message whose parts are all reported: (report event, final state), by "delivered".
_SETTLED_BY: dict[bool, tuple[Event, State]] = {
    ok: (event, TRANSITIONS[(State.SENT, event)])
    for ok, event in ((True, Event.REPORT_DELIVERED), (False, Event.REPORT_FAILED))
}
