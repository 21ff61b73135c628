"""Lines and ports: each port's traffic today and its errors (issue 19, second pass)."""

from __future__ import annotations

import re

from simgate.domain.messages import Event
from simgate.domain.queue import SubmitRecord
from tests.console.conftest import Site, make_incoming
from tests.store import util

ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.S)
TAG = re.compile(r"<[^>]+>")


def port_rows(page: str) -> dict[str, list[str]]:
    """Port index → the row's last four cells (sent, delivered, errors, received today)."""
    out = {}
    for row in ROW.findall(page):
        cells = [TAG.sub("", c).strip() for c in CELL.findall(row)]
        if len(cells) > 10 and cells[0].isdigit():
            out[cells[0]] = cells[9:13]
    return out


async def test_each_port_shows_todays_traffic_and_errors(site: Site) -> None:
    sent, delivered, rejected, elsewhere = await util.queue(site.rt, site.acme, 4)
    now = site.clock.now_ms()
    await util.lease(site.rt.store, now)
    rejection = SubmitRecord(rejected, Event.SUBMIT_REJECTED, port=3, status_code=8)
    await util.record(
        site.services,
        [util.ok(sent, port=3), util.ok(delivered, port=3), rejection, util.ok(elsewhere, port=5)],
        now,
    )
    await util.report(site.services, [(f"{delivered}.0", 0)], now + 1000)
    await make_incoming(site.rt, site.acme, mo_url="http://127.0.0.1:9/mo")  # on port 2
    root = await site.login("root")
    page = await root.get("/console/lines")
    assert page.status_code == 200
    rows = port_rows(page.text)
    assert rows["3"] == ["2", "1", "1", "0"]
    assert rows["5"] == ["1", "0", "0", "0"]
    assert rows["2"] == ["0", "0", "0", "1"]
    assert rows["0"] == ["0", "0", "0", "0"]
