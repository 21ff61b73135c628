"""getReport, getSentRcd, getBalance, recordMo (spec §1.5-§1.8, §7) against vendor samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from simgate.domain import ids
from simgate.domain.accounts import AppKind
from simgate.domain.messages import State
from simgate.lines.base import IncomingSms, PortInfo
from simgate.store.tables import messages
from simgate.testing.clock import FakeClock
from tests.api.itnio.conftest import Itnio, make_itnio
from tests.support.shapes import assert_same_shape

REPORT_SAMPLE = {
    "status": "0",
    "reason": "success",
    "success": "2",
    "fail": "0",
    "sending": "0",
    "nofound": "0",
    "array": [
        {
            "msgId": "2108021054011000095",
            "number": "91856321412",
            "receiveTime": "2021-02-12T09:30:03+08:00",
            "status": "0",
        },
        {
            "msgId": "2108021059531000096",
            "number": "91856321413",
            "receiveTime": "2021-02-12T09:30:03+08:00",
            "status": "0",
        },
    ],
}
# seeds/000 (getSentRcd) response example.
SENT_RCD_SAMPLE = {
    "status": "0",
    "reason": "success",
    "success": "2",
    "fail": "0",
    "array": [
        {
            "msgId": "2108021054011000095",
            "number": "91856321412",
            "receiveTime": "2023-06-12T09:30:03+08:00",
            "status": "0",
        },
        {
            "msgId": "2108021059531000096",
            "number": "91856321413",
            "receiveTime": "2023-06-12T09:30:03+08:00",
            "status": "0",
        },
    ],
}
DAY = "2026-01-01"  # FakeClock starts at 2026-01-01T00:00:00Z = 08:00 in Asia/Shanghai


async def _send(env: Itnio, numbers: str) -> list[str]:
    got = await env.post(
        "/sms/sendSms", {"appId": env.app.app_id, "numbers": numbers, "content": "x"}
    )
    assert got["status"] == "0", got
    return [a["msgId"] for a in got["array"]]


async def _set_state(
    env: Itnio, msg_id: str, state: State, at_ms: int, *, report: bool = True
) -> None:
    column = {
        State.DELIVERED: "delivered_ms",
        State.FAILED: "failed_ms",
        State.SENT: "sent_ms",
        State.EXPIRED: "expired_ms",
        State.REJECTED: "rejected_ms",
        State.UNKNOWN: "unknown_ms",
    }
    values: dict[str, Any] = {"state": int(state), "report_requested": report}
    if state in column:
        values[column[state]] = at_ms
    if state in (State.DELIVERED, State.FAILED):
        values["sent_ms"] = at_ms - 1000

    async def job(conn: Any) -> None:
        await conn.execute(update(messages).where(messages.c.id == int(msg_id)).values(**values))

    await env.rt.store.db.write(job)


async def test_get_report_matches_vendor_sample(itnio: Itnio) -> None:
    a, b = await _send(itnio, "91856321412,91856321413")
    at = itnio.clock.now_ms() + 3000
    await _set_state(itnio, a, State.DELIVERED, at)
    await _set_state(itnio, b, State.DELIVERED, at)
    got = await itnio.get("/sms/getReport", {"appId": itnio.app.app_id, "msgIds": f"{a},{b}"})
    assert_same_shape(got, REPORT_SAMPLE)
    assert {k: got[k] for k in ("status", "success", "fail", "sending", "nofound")} == {
        k: REPORT_SAMPLE[k] for k in ("status", "success", "fail", "sending", "nofound")
    }
    assert [i["msgId"] for i in got["array"]] == [a, b]
    assert got["array"][0]["receiveTime"] == "2026-01-01T08:00:03+08:00"
    assert got["array"][0]["pricedetail"] == {
        "pay": "0.01",
        "chargeCnt": 1,
        "currency": "USD",
        "price": "0.01",
    }


async def test_get_report_status_table(itnio: Itnio) -> None:
    sent = await _send(itnio, ",".join(["8613800138000"] * 8))
    now = itnio.clock.now_ms()
    cases = [
        (State.DELIVERED, True, "0"),
        (State.SENT, False, "0"),  # no report requested: sent is as good as it gets
        (State.SENT, True, "-1"),
        (State.QUEUED, True, "-1"),
        (State.UNKNOWN, True, "-1"),
        (State.FAILED, True, "1"),
        (State.EXPIRED, True, "1"),
        (State.REJECTED, True, "1"),
    ]
    for mid, (state, report, _) in zip(sent, cases, strict=True):
        await _set_state(itnio, mid, state, now + 1000, report=report)
    missing = str(ids.compose(itnio.clock.now_ms(), 9_999_999))
    got = await itnio.get(
        "/sms/getReport", {"appId": itnio.app.app_id, "msgIds": ",".join([*sent, missing])}
    )
    assert [i["status"] for i in got["array"]] == [c[2] for c in cases]
    assert (got["success"], got["fail"], got["sending"], got["nofound"]) == ("2", "3", "3", "1")
    queued = got["array"][3]
    assert queued["receiveTime"] == ""


async def test_get_report_hides_other_apps_and_old_ids(itnio: Itnio) -> None:

    (mid,) = await _send(itnio, "8613800138000")
    other = await itnio.services.accounts.create_app(itnio.account.id, kind=AppKind.SMS)
    got = await itnio.get("/sms/getReport", {"appId": other.app_id, "msgIds": mid})
    assert (got["nofound"], got["array"]) == ("1", [])
    old = str(ids.compose(itnio.clock.now_ms() - 91 * 86_400_000, 1))
    got = await itnio.get("/sms/getReport", {"appId": itnio.app.app_id, "msgIds": old})
    assert got["nofound"] == "1"


@pytest.mark.parametrize(
    ("msg_ids", "code"),
    [
        ("", "-14"),
        ("12a", "-14"),
        ("1" * 20, "-14"),
        (",".join(str(i) for i in range(201)), "-14"),
        ("1,,2", "-14"),
    ],
)
async def test_get_report_refusals(itnio_sqlite: Itnio, msg_ids: str, code: str) -> None:
    got = await itnio_sqlite.get(
        "/sms/getReport", {"appId": itnio_sqlite.app.app_id, "msgIds": msg_ids}
    )
    assert got["status"] == code


async def test_get_report_allows_200_ids(itnio: Itnio) -> None:
    sent = await _send(itnio, ",".join(["8613800138000"] * 200))
    got = await itnio.get("/sms/getReport", {"appId": itnio.app.app_id, "msgIds": ",".join(sent)})
    assert got["status"] == "0"
    assert got["sending"] == "200"
    assert len(got["array"]) == 200


# ---- getSentRcd ---------------------------------------------------------------------------
def _window(
    start: str = f"{DAY}T00:00:00+08:00", end: str = f"{DAY}T23:59:59+08:00"
) -> dict[str, str]:
    return {"startTime": start, "endTime": end}


async def test_get_sent_rcd_matches_seed_sample(itnio: Itnio) -> None:
    a, b, queued, failed = await _send(itnio, "91856321412,91856321413,8613800138000,8613800138001")
    at = itnio.clock.now_ms() + 3000
    for mid in (a, b):
        await _set_state(itnio, mid, State.DELIVERED, at)
    await _set_state(itnio, failed, State.FAILED, at)
    got = await itnio.get(
        "/sms/getSentRcd", {"appId": itnio.app.app_id, **_window(), "startIndex": 0}
    )
    assert_same_shape({**got, "array": got["array"][:2]}, SENT_RCD_SAMPLE)
    assert (got["success"], got["fail"]) == ("2", "1")
    assert [(i["msgId"], i["status"]) for i in got["array"]] == [(a, "0"), (b, "0"), (failed, "2")]
    assert queued not in {i["msgId"] for i in got["array"]}  # §7: queued ones are not listed
    # a window that ends before the messages were sent lists nothing
    early = await itnio.get(
        "/sms/getSentRcd", {"appId": itnio.app.app_id, **_window(end=f"{DAY}T07:59:59+08:00")}
    )
    assert early["array"] == []
    assert early["success"] == "0"


async def test_get_sent_rcd_pages_with_start_index(itnio: Itnio) -> None:
    sent = await _send(itnio, ",".join(["8613800138000"] * 5))
    for mid in sent:
        await _set_state(itnio, mid, State.SENT, itnio.clock.now_ms())
    page = await itnio.get(
        "/sms/getSentRcd", {"appId": itnio.app.app_id, **_window(), "startIndex": "3"}
    )
    assert [i["msgId"] for i in page["array"]] == sent[3:]


async def test_get_sent_rcd_accepts_unencoded_plus(itnio: Itnio) -> None:
    query = f"appId={itnio.app.app_id}&startTime={DAY}T00:00:00+08:00&endTime={DAY}T23:59:59+08:00"
    r = await itnio.client.get(f"/sms/getSentRcd?{query}", headers=itnio.headers())
    assert r.json()["status"] == "0"


@pytest.mark.parametrize(
    ("window", "code"),
    [
        (_window(start="2026-01-01"), "-11"),
        (_window(start="2026-01-01T00:00:00"), "-11"),  # no offset
        (_window(end="yesterday"), "-11"),
        ({"startTime": f"{DAY}T00:00:00+08:00"}, "-11"),
        (
            _window(start="2025-11-01T00:00:00+08:00", end="2025-12-15T00:00:00+08:00"),
            "-25",
        ),  # > 31 days
        (
            _window(start="2025-09-01T00:00:00+08:00", end="2025-09-02T00:00:00+08:00"),
            "-25",
        ),  # > 90 days back
        (_window(start=f"{DAY}T10:00:00+08:00", end=f"{DAY}T09:00:00+08:00"), "-25"),
        (_window() | {"startIndex": "-1"}, "-22"),
        (_window() | {"startIndex": "x"}, "-22"),
    ],
)
async def test_get_sent_rcd_refusals(
    itnio_sqlite: Itnio, window: dict[str, str], code: str
) -> None:
    got = await itnio_sqlite.get("/sms/getSentRcd", {"appId": itnio_sqlite.app.app_id, **window})
    assert got["status"] == code, got


# ---- getBalance ---------------------------------------------------------------------------
async def test_get_balance_strings(itnio: Itnio) -> None:
    await itnio.services.accounts.topup(itnio.account.id, amount="2.5", gift=True)
    await itnio.services.accounts.set_credit(itnio.account.id, "10")
    got = await itnio.get("/sms/getBalance")
    assert got == {
        "status": "0",
        "reason": "success",
        "balance": "100",
        "gift": "2.5",
        "credit": "10",
    }
    await _send(itnio, "8613800138000")  # gift is spent first
    got = await itnio.get("/v3/sms/getBalance")
    assert (got["balance"], got["gift"]) == ("100", "2.49")


# ---- recordMo -----------------------------------------------------------------------------
MO_SAMPLE_RECORD = {
    "number": "91856321412",
    "sendId": "8613800138000",
    "receiveTime": "2022-07-12T09:30:03+08:00",
    "content": "hello",
    "mcc": 460,
    "mnc": 0,
    "operator": "Jio",
    "pricedetail": {"pay": "0", "chargeCnt": 1, "currency": "USD", "price": "0"},
}


async def _incoming(env: Itnio, n: int) -> None:
    port = PortInfo(0, "gsm-1.1", "460001234567890", "8986", "8613800138000", 20, True)
    sms = [
        IncomingSms(0, "91856321412", "8613800138000", f"hello {i}", env.clock.now_ms())
        for i in range(n)
    ]
    await env.services.inbound.receive("sim", sms, [port])


def _mo(env: Itnio, current: Any = 1, size: Any = 2, **params: str) -> dict[str, Any]:
    window = {"strTime": f"{DAY}T00:00:00+08:00", "endTime": f"{DAY}T23:59:59+08:00"} | params
    return {"appId": env.app.app_id, "current": current, "size": size, "params": window}


async def test_record_mo_pages(itnio: Itnio) -> None:
    await _incoming(itnio, 3)
    got = await itnio.post("/sms/recordMo", _mo(itnio))
    assert (got["status"], got["reason"]) == ("0", "success")
    page = got["data"]
    assert {k: page[k] for k in ("total", "size", "current", "pages")} == {
        "total": 3,
        "size": 2,
        "current": 1,
        "pages": 2,
    }
    assert_same_shape(page["records"][0], MO_SAMPLE_RECORD)
    first = page["records"][0]
    assert (first["number"], first["sendId"], first["content"], first["mcc"], first["mnc"]) == (
        "91856321412",
        "8613800138000",
        "hello 0",
        460,
        0,
    )
    assert first["receiveTime"] == "2026-01-01T08:00:00+08:00"
    second = (await itnio.post("/sms/recordMo", _mo(itnio, current=2)))["data"]
    assert [r["content"] for r in second["records"]] == ["hello 2"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"current": 0}, "-22"),
        ({"size": 101}, "-22"),
        ({"size": 0}, "-22"),
        ({"strTime": "2026-01-01 00:00:00"}, "-22"),
        ({"strTime": "2022-06-30T00:00:00+08:00", "endTime": "2022-07-02T00:00:00+08:00"}, "-25"),
        ({"strTime": "2025-11-01T00:00:00+08:00"}, "-25"),
    ],
)
async def test_record_mo_refusals(itnio_sqlite: Itnio, fields: dict[str, Any], code: str) -> None:
    body = _mo(
        itnio_sqlite,
        **{k: v for k, v in fields.items() if k in ("current", "size")},
        **{k: v for k, v in fields.items() if k not in ("current", "size")},
    )
    assert (await itnio_sqlite.post("/sms/recordMo", body))["status"] == code


async def test_record_mo_locked_account_is_minus_13(itnio: Itnio) -> None:
    await itnio.services.accounts.set_locked(itnio.account.id, True)
    assert (await itnio.post("/sms/recordMo", _mo(itnio)))["status"] == "-13"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/sms/getBalance"),
        ("GET", "/sms/getReport"),
        ("GET", "/sms/getSentRcd"),
        ("POST", "/sms/sendSms"),
        ("POST", "/sms/recordMo"),
    ],
)
async def test_database_failure_is_minus_18_not_500(
    itnio_sqlite: Itnio, method: str, path: str
) -> None:
    headers = itnio_sqlite.headers()
    await itnio_sqlite.rt.store.db.close()  # the database goes away under the API
    r = await itnio_sqlite.client.request(
        method, path, headers=headers, json={"appId": "x"} if method == "POST" else None
    )
    assert r.status_code == 200
    assert r.json()["status"] == "-18"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/sms/getBalance"),
        ("GET", "/sms/getReport"),
        ("POST", "/sms/sendSms"),
        ("POST", "/sms/sendSms/batch"),
    ],
)
async def test_database_failure_after_cached_auth_is_minus_18(
    sqlite_url: str, tmp_path: Path, clock: FakeClock, method: str, path: str
) -> None:
    async with make_itnio(sqlite_url, tmp_path, clock, itnio={"auth_cache_seconds": 3600}) as env:
        assert (await env.get("/sms/getBalance"))["status"] == "0"  # key, account and app cached
        body = {"appId": env.app.app_id, "numbers": "8613800138000", "content": "x", "msgIds": "1"}
        body["array"] = [{"numbers": "8613800138000", "content": "x"}]  # type: ignore[assignment]
        await env.rt.store.db.close()
        if method == "GET":
            r = await env.client.get(
                path, params={"appId": env.app.app_id, "msgIds": "1"}, headers=env.headers()
            )
        else:
            r = await env.client.post(path, json=body, headers=env.headers())
        assert r.status_code == 200
        assert r.json()["status"] == "-18"
