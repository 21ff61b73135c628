"""The overview: traffic per minute (charts), delivery rate, queue, pushes, calls, balances,
and every line with its rates; the figures refresh through htmx every 10 s."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response

from simgate.console.context import Console
from simgate.console.security import scope
from simgate.services.console_queries import DAY_BUCKET_MS as DAY_STEP_MS
from simgate.services.console_queries import MINUTE_MS, Buckets, Overview


def chart_data(o: Overview) -> str:
    """uPlot's data shape, per chart: x (epoch seconds) then one array per series. Kept as
    JSON in the page (a ``<script type="application/json">``), so the page needs no second
    request and the figures are there as a table for readers without JavaScript."""

    def series(start: int, step: int, b: Buckets) -> list[list[int]]:
        xs = [(start + i * step) // 1000 for i in range(len(b.accepted))]
        return [xs, b.accepted, b.sent, b.delivered, b.failed]

    data = {
        "hour": series(o.hour_start_ms, MINUTE_MS, o.hour),
        "day": series(o.day_start_ms, DAY_STEP_MS, o.day),
    }
    # "</" cannot end the script element early: JSON allows "\/" for "/".
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def add_routes(router: APIRouter, console: Console) -> None:
    @router.get("")
    @router.get("/")
    async def overview(request: Request) -> Response:
        session = await console.session(request)
        o = await console.services.console.overview(scope(session))
        return console.render(
            request, session, "overview.html", o=o, charts=chart_data(o), title="Overview"
        )

    @router.get("/live")
    async def live(request: Request) -> Response:
        session = await console.session(request)
        o = await console.services.console.overview(scope(session))
        return console.render(request, session, "_figures.html", o=o)
