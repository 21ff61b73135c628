"""One /metrics for the processes of ``simgate run`` (simgate/metrics.py, cli/metrics_share.py).

Real registries, real socket pairs: a child's answerer in this event loop stands for the
child process (tests/process/test_worker_child_metrics.py runs the real one).
"""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from simgate.cli.metrics_share import ChildMetrics, MetricsAnswerer
from simgate.metrics import Metrics, collect, from_json, merge, render, to_json


def _value(text: str, sample: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and s.labels == labels:
                return float(s.value)
    return None


def test_counters_and_process_gauges_add_up_database_gauges_are_the_answerers() -> None:
    parent, child = Metrics(), Metrics()
    parent.accepted.labels("openvox").inc(5)
    child.submits.labels("sim", "ok").inc(7)
    parent.submits.labels("sim", "ok").inc(1)  # a series both count: added
    parent.queue_depth.set(3)  # read from the database by the process asked
    child.queue_depth.set(99)  # stale in the child: never added to the parent's
    child.sip_calls_up.labels("trunk").set(2)  # the child's own state: kept
    text = render(merge(collect(parent.registry), [from_json(to_json(collect(child.registry)))]))
    assert text.decode().count("# TYPE simgate_line_submits_total counter") == 1
    assert _value(text.decode(), "simgate_line_submits_total", line="sim", outcome="ok") == 8
    assert _value(text.decode(), "simgate_messages_accepted_total", dialect="openvox") == 5
    assert _value(text.decode(), "simgate_queue_depth") == 3
    assert _value(text.decode(), "simgate_sip_calls_up", line="trunk") == 2


async def test_an_ended_childs_counters_are_carried_never_dropped() -> None:
    source = ChildMetrics(timeout_s=5)
    parent = Metrics()
    parent.sources.append(source)

    async def child_process() -> tuple[Metrics, MetricsAnswerer]:
        theirs = source.new_pair()
        fd = theirs.detach()  # the child's copy, as inherited (here: this process's)
        child = Metrics()
        answerer = MetricsAnswerer(fd, child)
        answerer.start()
        return child, answerer

    async def submits() -> float | None:
        return _value(
            (await parent.exposition()).decode(),
            "simgate_line_submits_total",
            line="sim",
            outcome="ok",
        )

    first, first_answers = await child_process()
    first.submits.labels("sim", "ok").inc(10)
    assert await submits() == 10
    first.submits.labels("sim", "ok").inc(2)  # counted after the last scrape, then it dies
    await first_answers.stop()
    assert await submits() == 10  # gone: its count as last heard, not 0
    second, second_answers = await child_process()
    assert await submits() == 10  # a new child counts from 0: carried, no drop
    second.submits.labels("sim", "ok").inc(3)
    assert await submits() == 13
    await second_answers.stop()
    await source.close()


async def test_a_late_answer_is_not_taken_for_the_next_one() -> None:
    source = ChildMetrics(timeout_s=0.2)
    theirs = source.new_pair()  # the child's end, read by hand here
    reader, writer = await asyncio.open_unix_connection(sock=theirs)
    pending = asyncio.ensure_future(source.families())
    first = await reader.readexactly(8)  # the request; the answer comes after the timeout
    assert await pending == {}
    late = Metrics()
    late.reaped.inc(1)
    body = to_json(collect(late.registry))
    writer.write(first + len(body).to_bytes(4, "big") + body)
    on_time = Metrics()
    on_time.reaped.inc(4)
    asking = asyncio.ensure_future(source.families())
    second = await reader.readexactly(8)
    body = to_json(collect(on_time.registry))
    writer.write(second + len(body).to_bytes(4, "big") + body)
    families = await asking
    assert families["simgate_leases_reaped"].samples[("simgate_leases_reaped_total", ())] == 4
    writer.close()
    await source.close()


async def test_scrapes_at_once_on_a_new_child_each_get_its_counters() -> None:
    # Two scrapes before the first connected each opened a stream on the one socket, and
    # one's reader took the other's answer: a scrape without the child's counters.
    source = ChildMetrics(timeout_s=5)
    child = Metrics()
    child.submits.labels("sim", "ok").inc(4)
    answerer = MetricsAnswerer(source.new_pair().detach(), child)
    answerer.start()
    got = await asyncio.gather(*(source.families() for _ in range(4)))
    for families in got:
        samples = families["simgate_line_submits"].samples
        assert samples[("simgate_line_submits_total", (("line", "sim"), ("outcome", "ok")))] == 4
    await answerer.stop()
    await source.close()
