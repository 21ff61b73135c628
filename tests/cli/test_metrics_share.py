"""One /metrics for the processes of ``simgate run`` (simgate/metrics.py, cli/metrics_share.py).

Real registries, real socket pairs: a child's answerer in this event loop stands for the
child process (tests/process/test_worker_child_metrics.py runs the real one).
"""

from __future__ import annotations

import asyncio
import math
import struct
from typing import Any

import orjson
from prometheus_client import Gauge
from prometheus_client.parser import text_string_to_metric_families

from simgate.cli.child_channel import MAX_FRAME
from simgate.cli.metrics_share import ChildMetrics, MetricsAnswerer
from simgate.metrics import Families, Metrics, collect, from_rows, merge, render, to_rows

# The pair's frames (cli/child_channel.py): seq, length, JSON; written by hand here.
HEAD = struct.Struct("!QI")


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
    sent = orjson.loads(orjson.dumps(to_rows(collect(child.registry))))  # as the pair sends
    text = render(merge(collect(parent.registry), [from_rows(sent)]))
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


async def _request(reader: asyncio.StreamReader) -> int:
    seq, size = HEAD.unpack(await reader.readexactly(HEAD.size))
    assert orjson.loads(await reader.readexactly(size)) == {"op": "metrics"}
    return int(seq)


def _answer(seq: int, metrics: Metrics) -> bytes:
    body = orjson.dumps({"families": to_rows(collect(metrics.registry))})
    return HEAD.pack(seq, len(body)) + body


async def test_a_late_answer_is_not_taken_for_the_next_one() -> None:
    source = ChildMetrics(timeout_s=0.2)
    theirs = source.new_pair()  # the child's end, read by hand here
    reader, writer = await asyncio.open_unix_connection(sock=theirs)
    pending = asyncio.ensure_future(source.families())
    first = await _request(reader)  # the answer comes after the timeout
    assert await pending == {}
    late = Metrics()
    late.reaped.inc(1)
    writer.write(_answer(first, late))
    on_time = Metrics()
    on_time.reaped.inc(4)
    asking = asyncio.ensure_future(source.families())
    second = await _request(reader)
    writer.write(_answer(second, on_time))
    families = await asking
    assert families["simgate_leases_reaped"].samples[("simgate_leases_reaped_total", ())] == 4
    writer.close()
    await source.close()


async def _scraped(child: Metrics) -> Families:
    source = ChildMetrics(timeout_s=5)
    answerer = MetricsAnswerer(source.new_pair().detach(), child)
    answerer.start()
    try:
        return await source.families()
    finally:
        await answerer.stop()
        await source.close()


async def test_values_json_has_no_number_for_come_back_as_they_were() -> None:
    # JSON has no NaN or infinity, and the pair's encoder (orjson) writes them as null.
    child = Metrics()
    odd = Gauge("simgate_test_odd", "odd values", ["v"], registry=child.registry)
    for label, value in (("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf)):
        odd.labels(label).set(value)
    samples = (await _scraped(child))["simgate_test_odd"].samples
    assert math.isnan(samples[("simgate_test_odd", (("v", "nan"),))])
    assert samples[("simgate_test_odd", (("v", "inf"),))] == math.inf
    assert samples[("simgate_test_odd", (("v", "-inf"),))] == -math.inf


async def test_an_answer_larger_than_a_port_actions_frame_is_taken() -> None:
    # Samples grow with the lines (a series per line and outcome): past the 1 MiB that
    # bounds the port actions' frames on the same machinery.
    child = Metrics()
    outcomes = [f"outcome-{i:03}-{'x' * 40}" for i in range(100)]
    for n in range(120):
        for outcome in outcomes:
            child.submits.labels(f"line-{n:03}", outcome).inc()
    assert len(orjson.dumps(to_rows(collect(child.registry)))) > MAX_FRAME
    samples = (await _scraped(child))["simgate_line_submits"].samples
    assert (
        samples[("simgate_line_submits_total", (("line", "line-119"), ("outcome", outcomes[99])))]
        == 1
    )


async def test_a_child_that_fails_to_answer_leaves_its_counters_as_last_heard() -> None:
    source = ChildMetrics(timeout_s=5)
    theirs = source.new_pair()
    reader, writer = await asyncio.open_unix_connection(sock=theirs)
    child = Metrics()
    child.reaped.inc(3)
    child.queue_depth.set(2)
    asking = asyncio.ensure_future(source.families())
    writer.write(_answer(await _request(reader), child))
    assert "simgate_queue_depth" in await asking
    asking = asyncio.ensure_future(source.families())
    failed: dict[str, Any] = {"error": "failed", "text": "collect failed"}  # ChildAnswers'
    body = orjson.dumps(failed)
    writer.write(HEAD.pack(await _request(reader), len(body)) + body)
    families = await asking
    assert families["simgate_leases_reaped"].samples[("simgate_leases_reaped_total", ())] == 3
    assert "simgate_queue_depth" not in families  # a gauge: stale, left out
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
