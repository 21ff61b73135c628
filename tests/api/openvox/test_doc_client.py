"""A client written from the OpenVox document alone (seed 002, spec §3.2, §3.3, Amendments).

It POSTs JSON bodies with ``username`` and ``password`` as the document shows, reads every
answer as ``{uri, code, msg, data}`` with HTTP 200, takes the box rows straight from ``data``
(the document lists the row keys as data's sub-keys) and the paging figures from the extra
top-level keys ``total``, ``current_page`` and ``pages``. Unknown uris and other methods are
answered in the same envelope; other dialects' unknown paths keep their own answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simgate.domain.messages import State
from simgate.lines.base import IncomingSms
from simgate.testing.clock import FakeClock
from tests.api.openvox.conftest import OV, PASSWORD, USER, numbers, open_ov, send, settle

ENVELOPE = {"uri", "code", "msg", "data"}
PAGING = {"total", "current_page", "pages"}
OUTBOX_KEYS = {"port_name", "phonenumber", "time", "message", "status"}  # seed 002 §2.2.1


async def call(client: httpx.AsyncClient, uri: str, **fields: Any) -> dict[str, Any]:
    """What the document's client does: POST JSON, expect the fixed-format JSON answer."""
    resp = await client.post(uri, json={"username": USER, "password": PASSWORD, **fields})
    assert resp.status_code == 200, (uri, resp.status_code, resp.text)
    doc: dict[str, Any] = resp.json()
    assert doc["uri"] == uri
    return doc


def plain_envelope(resp: httpx.Response, uri: str, code: int) -> dict[str, Any]:
    assert resp.status_code == 200, (uri, resp.status_code, resp.text)
    doc: dict[str, Any] = resp.json()
    assert set(doc) == ENVELOPE, doc
    assert (doc["uri"], doc["code"], doc["data"]) == (uri, code, []), doc
    assert isinstance(doc["msg"], str)
    assert doc["msg"]
    return doc


@pytest.fixture
async def small_pages(backend: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[OV]:
    rt, handle = await open_ov(backend, tmp_path, clock, openvox={"page_size": 2})
    try:
        yield handle
    finally:
        await handle.client.aclose()
        await rt.close()


async def test_outbox_rows_are_data_and_paging_is_top_level(small_pages: OV) -> None:
    ov = small_pages
    await ov.rt.start_worker()
    ids = await send(ov, numbers(5), "from the doc")
    await settle(ov, ids, {State.DELIVERED})

    first = await call(ov.client, "/smsoutbox/get")
    assert set(first) == ENVELOPE | PAGING
    assert first["code"] == 200
    assert (first["total"], first["current_page"], first["pages"]) == (5, 1, 3)
    assert len(first["data"]) == 2
    seen: list[str] = []
    page = 1
    while True:
        doc = first if page == 1 else await call(ov.client, "/smsoutbox/get", current_page=page)
        assert doc["current_page"] == page
        for row in doc["data"]:
            assert set(row) >= OUTBOX_KEYS, row
            assert row["status"] == "DELIVERD"  # the vendor's spelling
            assert row["message"] == "from the doc"
            seen.append(row["phonenumber"])
        if doc["current_page"] >= doc["pages"]:
            break
        page += 1
    assert sorted(seen) == sorted(numbers(5))

    beyond = await call(ov.client, "/smsoutbox/get", current_page=9)
    assert (beyond["data"], beyond["total"], beyond["current_page"], beyond["pages"]) == (
        [],
        5,
        9,
        3,
    )
    empty = await call(ov.client, "/smsoutbox/get", phone_number_filter="10086")
    assert (empty["data"], empty["total"], empty["pages"]) == ([], 0, 0)


async def test_inbox_rows_are_data_and_paging_is_top_level(ov: OV) -> None:
    line = ov.sv.lines["sim"]
    sms = [
        IncomingSms(port=0, sender="10086", recipient="", text=f"m{i}", received_ms=0)
        for i in range(3)
    ]
    await ov.sv.inbound.receive("sim", sms, line.ports())
    doc = await call(ov.client, "/smsinbox/get", current_page=1)
    assert set(doc) == ENVELOPE | PAGING
    assert (doc["code"], doc["total"], doc["current_page"], doc["pages"]) == (200, 3, 1, 1)
    assert sorted(r["message"] for r in doc["data"]) == ["m0", "m1", "m2"]
    assert all(r["phonenumber"] == "10086" and r["port_name"] == "gsm-1.1" for r in doc["data"])


async def test_errors_of_the_boxes_are_the_plain_envelope(ov: OV) -> None:
    for uri in ("/smsoutbox/get", "/smsinbox/get"):
        resp = await ov.client.post(
            uri, json={"username": USER, "password": PASSWORD, "current_page": "x"}
        )
        plain_envelope(resp, uri, 400)
        resp = await ov.client.post(uri, json={"username": USER, "password": "wrong"})
        plain_envelope(resp, uri, 401)
        resp = await ov.client.post(uri, content=b"\xff{not json")
        plain_envelope(resp, uri, 400)


UNKNOWN_URIS = (
    "/sms/nope",
    "/sms/get_sms_status",
    "/sms/send/now",
    "/sms",
    "/smsoutbox/nope",
    "/smsoutbox",
    "/smsinbox",
    "/smsinbox/x/y",
)


async def test_unknown_uris_are_404_in_the_envelope(ov: OV) -> None:
    for uri in UNKNOWN_URIS:
        resp = await ov.client.post(uri, json={"username": USER, "password": PASSWORD})
        doc = plain_envelope(resp, uri, 404)
        assert uri in doc["msg"]
        for method in ("GET", "PUT", "DELETE", "OPTIONS", "PATCH"):
            plain_envelope(await ov.client.request(method, uri), uri, 404)
    # Hostile bodies and headers do not change the answer.
    for body in (b"", b"\xff\xfe", b"[1]", b"{" * 10_000):
        resp = await ov.client.post("/sms/nope", content=body)
        plain_envelope(resp, "/sms/nope", 404)
    resp = await ov.client.post(
        "/sms/nope", content=b"{}", headers={"Content-Length": "-1", "Content-Type": "text/x"}
    )
    plain_envelope(resp, "/sms/nope", 404)


async def test_other_methods_on_known_uris_are_the_envelope(ov: OV) -> None:
    for uri in (
        "/sms/get_valid_spans",
        "/sms/send",
        "/smsoutbox/get",
        "/smsoutbox/get_config",
        "/smsoutbox/set_config",
        "/smsinbox/get",
    ):
        for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
            doc = plain_envelope(await ov.client.request(method, uri), uri, 400)
            assert "POST" in doc["msg"]


async def test_other_dialects_keep_their_unknown_path_answers(ov: OV) -> None:
    # itniotech clients carry their credentials in headers on every call (§1.1).
    itnio = {"Api-Key": "k", "Timestamp": "1630468800", "Sign": "0" * 32}
    resp = await ov.client.get("/sms/nope", headers=itnio)
    assert (resp.status_code, resp.json()) == (404, {"detail": "Not Found"})
    resp = await ov.client.delete("/sms/sendSms", headers=itnio)
    assert resp.status_code == 405
    resp = await ov.client.delete("/sms/sendSms")  # an itniotech path, whoever asks
    assert resp.status_code == 405
    for uri in ("/api/nope", "/nope", "/smsx/get", "/v3/sms/nope"):
        resp = await ov.client.post(uri, json={"username": USER, "password": PASSWORD})
        assert (resp.status_code, resp.json()) == (404, {"detail": "Not Found"}), uri
