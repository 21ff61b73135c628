"""Voice sends, records and pushes over HTTP (spec §1.11, §1.12, §1.14-§1.16, seed 003, §7).

Calls are finished through the store the way the call dispatcher finishes them (lease, then
``finish`` with a result and its charge), so the records and pushes are the real ones.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from simgate.api.dialects.itnio import render
from simgate.domain import ids
from simgate.domain.billing import voice_charge
from simgate.domain.calls import CallFinal, CallResult, sip_reason
from simgate.testing.clock import FakeClock
from tests.api.itnio.conftest import Itnio, add_voice_app, make_itnio
from tests.support.itnio_voice import (
    SEED_RECORD,
    SEND_CODE,
    TODAY,
    need_espeak,
    other_account,
    send_group,
    upload,
)
from tests.support.shapes import assert_same_shape

# seed 003 request body.
SEED_QUERY = {
    "current": 1,
    "size": 20,
    "params": {"strTime": "2022-02-18T00:00:00+08:00", "endTime": "2022-02-19T00:00:00+08:00"},
}


async def finish_calls(
    env: Itnio, *, sip: int = 200, dtmf: str = "1", ring_s: int = 3, talk_s: int = 5
) -> list[int]:
    """Dial every queued call and end it with ``sip`` (200 = answered), as the dispatcher
    would: lease, then finish with the result and its charge in one transaction."""
    calls = env.services.calls
    now = env.clock.now_ms()
    leased = await calls.lease(owner="test", now_ms=now, lease_until_ms=now + 600_000, limit=1000)
    finals = []
    for c in leased:
        ringing = now + 1000
        answer = ringing + ring_s * 1000 if sip == 200 else None
        hangup = (answer if answer is not None else ringing + ring_s * 1000) + talk_s * 1000
        result = CallResult(c.id, "sim", now, ringing, answer, hangup, sip, sip_reason(sip), dtmf)
        charge = voice_charge(
            answered=result.answered,
            duration_s=result.duration_s,
            rate_micros=c.pricing.rate_micros,
            bill_period=c.pricing.bill_period,
            currency=c.pricing.currency,
            quote_exchange_micros=c.pricing.quote_exchange_micros,
        )
        finals.append(CallFinal(result, charge))
    return await calls.finish(finals=finals, owner="test", now_ms=now + 60_000)


async def set_fx(env: Itnio, currency: str, per_usd: str) -> None:
    store = env.rt.store
    micros = int(float(per_usd) * 1_000_000)
    await store.db.write(
        functools.partial(
            store.fx.set_rate,
            currency=currency,
            per_usd_micros=micros,
            now_ms=env.clock.now_ms(),
        )
    )


# ---- sendGroup ----------------------------------------------------------------------------
async def test_send_group_then_record_group(itnio: Itnio) -> None:
    app = await add_voice_app(itnio)
    up = await upload(itnio)
    got = await send_group(
        itnio,
        app,
        "932111111111,12ab,8613800138000",
        fileId=up["data"],
        calledInfo="order-7",
        maxRingingTime=30,
    )
    assert got["status"] == "0", got
    assert [(i["callee"], i["terminationCode"]) for i in got["data"]] == [
        ("932111111111", "0"),
        ("12ab", "-9"),  # §7: the per-callee submission result; no call exists for it
        ("8613800138000", "0"),
    ]
    first, bad, _ = got["data"]
    assert (bad["voiceId"], bad["terminationReason"]) == ("", "abnormal number")
    assert len(first["voiceId"]) == 19
    assert first["terminationReason"] == "success"

    queued = await itnio.get(f"/voice/recordGroup/{first['voiceId']}")
    assert queued["status"] == "0", queued
    record = queued["data"]
    assert (record["terminationCode"], record["answerTime"], record["hangupTime"]) == (
        "",
        None,
        None,
    )
    assert record["submitTime"] == "2026-01-01T08:00:00+08:00"  # the account's Asia/Shanghai

    assert len(await finish_calls(itnio, dtmf="5")) == 2
    done = (await itnio.get(f"/v3/voice/recordGroup/{first['voiceId']}"))["data"]
    assert_same_shape(done, {k: v for k, v in SEED_RECORD.items() if k in done})
    assert {k: done[k] for k in ("terminationCode", "sipCode", "terminationReason")} == {
        "terminationCode": "200",
        "sipCode": "200",
        "terminationReason": "success",
    }
    assert (done["callDuration"], done["chargedDuration"], done["billPeriod"]) == (5, 60, "60+60")
    assert (done["rate"], done["baseCost"], done["cost"]) == ("0.05", "0.05", "0.05")
    assert (done["voiceFileId"], done["feedbackValue"], done["calledInfo"]) == (
        up["data"],
        "5",
        "order-7",
    )
    assert done["code"].startswith("Afghanistan")
    assert "currency" not in done  # a USD account: no quote-currency fields


async def test_send_group_refusals(itnio: Itnio) -> None:
    app = await add_voice_app(itnio)
    up = await upload(itnio)
    many = ",".join(f"93211{n:07d}" for n in range(201))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"callee": many}, "-22"),  # §1.12: at most 200
        ({"callee": ""}, "-22"),
        ({"fileId": "1202601019999.wav"}, "-22"),  # not a file of this account
        ({"fileId": ""}, "-22"),
        ({"displayNum": "12"}, "-22"),
        ({"loopCount": 4}, "-22"),
        ({"appId": itnio.app.app_id}, "-22"),  # the SMS app
        ({"appId": "nosuchapp"}, "-22"),
        ({"appId": None}, "-22"),
    ]
    for extra, status in cases:
        body = {"appId": app.app_id, "callee": "932111111111", "fileId": up["data"], **extra}
        got = await itnio.post("/voice/sendGroup", body)
        assert got["status"] == status, (extra, got)
    other = await other_account(itnio)
    body = {"appId": other.app.app_id, "callee": "932111111111", "fileId": up["data"]}
    assert (await itnio.post("/voice/sendGroup", body))["status"] == "-22"  # not ours
    body["appId"] = app.app_id
    got = await other.post("/voice/sendGroup", body)  # our app, their key
    assert got["status"] == "-22"


async def test_send_group_without_pricing_is_minus_26(
    sqlite_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    async with make_itnio(sqlite_url, tmp_path, clock, voice={"default_price": None}) as env:
        app = await add_voice_app(env)
        got = await send_group(env, app, "932111111111")
        assert (got["status"], got["reason"].split(":")[0]) == ("-26", "getting fee failed")


async def test_send_group_needs_balance(itnio: Itnio) -> None:
    poor = await other_account(itnio, balance="0")
    got = await send_group(poor, poor.app, "932111111111")
    assert got["status"] == "-10", got


async def test_send_group_replay_sends_once(itnio: Itnio) -> None:
    app = await add_voice_app(itnio)
    up = await upload(itnio)
    headers = itnio.headers()
    body = {"appId": app.app_id, "callee": "932111111111", "fileId": up["data"]}
    first = await itnio.post("/voice/sendGroup", body, headers=headers)
    again = await itnio.post("/voice/sendGroup", body, headers=headers)
    assert first == again
    assert first["status"] == "0"
    assert len(await finish_calls(itnio)) == 1


# ---- sendCode (text to speech) ------------------------------------------------------------
async def test_send_code_documented_request(itnio: Itnio) -> None:
    need_espeak()
    app = await add_voice_app(itnio)
    got = await itnio.post("/voice/sendCode", {"appId": app.app_id, **SEND_CODE})
    assert got["status"] == "0", got
    voice_id = got["data"]
    assert isinstance(voice_id, str)
    assert len(voice_id) == 19
    record = (await itnio.get(f"/voice/recordGroup/{voice_id}"))["data"]
    assert (record["callee"], record["displayNum"], record["calledInfo"]) == (
        "8613800138000",
        "1008122211",
        "calledInfo",
    )
    assert record["voiceFileId"] == ""  # TTS plays no uploaded file
    assert record["code"].startswith("China")
    store = itnio.rt.store
    async with store.db.read() as conn:
        stored = await store.calls.get_one(conn, int(voice_id))
    assert stored is not None
    assert (stored.loop_count, stored.recall_count) == (2, 1)


async def test_send_code_refusals(itnio: Itnio) -> None:
    need_espeak()
    app = await add_voice_app(itnio)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"language": "XX"}, "-22"),  # not a language we speak
        ({"language": "TH"}, "-22"),  # espeak-ng cannot split Thai words: refused, not noise
        ({"text": ""}, "-22"),
        ({"text": "x" * 1001}, "-22"),
        ({"callee": "12"}, "-22"),  # §1.11 lists no -9
        ({"callee": "8613800138000,8613800138001"}, "-22"),  # one callee only
        ({"appId": itnio.app.app_id}, "-22"),
        ({"speakingRate": 5}, "-22"),
        ({"recallInterval": 0}, "-22"),
    ]
    for extra, status in cases:
        got = await itnio.post("/voice/sendCode", {**SEND_CODE, "appId": app.app_id, **extra})
        assert got["status"] == status, (extra, got)


# ---- recordGroup ----------------------------------------------------------------------------
async def test_record_group_refuses_what_is_not_ours(itnio: Itnio) -> None:
    other = await other_account(itnio)
    got = await send_group(other, other.app, "932111111111")
    theirs = got["data"][0]["voiceId"]
    assert (await other.get(f"/voice/recordGroup/{theirs}"))["status"] == "0"
    now = itnio.clock.now_ms()
    old = ids.compose(now - 63 * 86_400_000, 1)
    for path in (
        f"/voice/recordGroup/{theirs}",  # another account's call
        f"/voice/recordGroup/{ids.compose(now, 9_999_999)}",  # nobody's
        f"/voice/recordGroup/{old}",  # older than the two months kept
        "/voice/recordGroup/abc",
        "/voice/recordGroup/12345678901234567890",
        "/voice/recordGroup/9999999999999999999",  # 19 digits that are no date
        "/voice/recordGroup/",
        "/voice/recordGroup",
        "/voice/recordGroup/1/2",
        "/voice/recordGroup/%00",
    ):
        got = await itnio.get(path)
        assert got["status"] == "-22", (path, got)
    assert "older than" in (await itnio.get(f"/voice/recordGroup/{old}"))["reason"]


# ---- recordGroupQuery -------------------------------------------------------------------------
async def test_record_group_query_seed_request_eur(tmp_path: Path, backend: str) -> None:
    # The seed's window is 2022-02-18 (+08:00): put the server there, a few hours in.
    start = render.parse_iso("2022-02-18T10:00:00+08:00")
    assert start is not None
    async with make_itnio(backend, tmp_path, FakeClock(start)) as env:
        eur = await other_account(env, currency="EUR")
        await set_fx(env, "EUR", "0.938")
        sent = await send_group(eur, eur.app, "932111111111,919845012345,8613800138000")
        assert sent["status"] == "0", sent
        await finish_calls(env)
        got = await eur.post("/voice/recordGroupQuery", SEED_QUERY)
        assert got["status"] == "0", got
        page = got["data"]
        assert {k: page[k] for k in ("total", "size", "current", "pages", "searchCount")} == {
            "total": 3,
            "size": 20,
            "current": 1,
            "pages": 1,
            "searchCount": True,
        }
        assert [r["voiceId"] for r in page["records"]] == [i["voiceId"] for i in sent["data"]]
        for record in page["records"]:
            # every key of the seed's sample record, with the same JSON type
            assert_same_shape(record, SEED_RECORD)
            assert set(record) == {*SEED_RECORD, "sipCode"}
        first = page["records"][0]
        assert (first["currency"], first["quoteExchange"], first["rate"]) == (
            "EUR",
            "0.938",
            "0.05",
        )
        assert (first["settleRate"], first["settlePay"]) == ("0.0469", "0.0469")
        assert first["submitTime"] == "2022-02-18T02:00:00+00:00"  # that account is UTC
        # The USD account sees none of them.
        mine = await env.post("/voice/recordGroupQuery", SEED_QUERY)
        assert (mine["data"]["total"], mine["data"]["records"]) == (0, [])


async def test_record_group_query_paging_and_unfinished_calls(itnio: Itnio) -> None:
    app = await add_voice_app(itnio)
    sent = await send_group(itnio, app, ",".join(f"93211{n:07d}" for n in range(5)))
    query = {"current": 1, "size": 2, "params": TODAY}
    before = await itnio.post("/voice/recordGroupQuery", query)
    assert before["data"]["total"] == 0  # queued calls are not records yet
    await finish_calls(itnio, sip=486, dtmf="")
    pages = []
    for current in (1, 2, 3, 4):
        got = await itnio.post("/voice/recordGroupQuery", {**query, "current": current})
        assert (got["data"]["total"], got["data"]["pages"]) == (5, 3)
        pages.append([r["voiceId"] for r in got["data"]["records"]])
    assert pages[:3] == [[i["voiceId"] for i in sent["data"][n : n + 2]] for n in (0, 2, 4)]
    assert pages[3] == []
    busy = (await itnio.post("/voice/recordGroupQuery", {"params": TODAY}))["data"]
    assert busy["size"] == 25  # the default page size
    record = busy["records"][0]
    assert (record["terminationCode"], record["terminationReason"]) == ("486", "busy")
    assert (record["answerTime"], record["chargedDuration"], record["cost"]) == (None, 0, "0")
    assert record["feedbackValue"] == "-1"


async def test_record_group_query_windows(itnio_sqlite: Itnio) -> None:
    env = itnio_sqlite
    cases: list[tuple[Any, str]] = [
        ({"strTime": "2025-12-01T00:00:00+08:00", "endTime": "2026-01-01T00:00:00+08:00"}, "0"),
        # 32 days: past the 31-day window (§1.15)
        ({"strTime": "2025-11-30T00:00:00+08:00", "endTime": "2026-01-01T00:00:00+08:00"}, "-22"),
        # three months back: out of the two months kept
        ({"strTime": "2025-10-01T00:00:00+08:00", "endTime": "2025-10-02T00:00:00+08:00"}, "-25"),
        ({"strTime": "2026-01-02T00:00:00+08:00", "endTime": "2026-01-01T00:00:00+08:00"}, "-22"),
        ({"strTime": "2026-01-01 00:00:00", "endTime": "2026-01-02 00:00:00"}, "-22"),
        ({"strTime": "2026-01-01T00:00:00", "endTime": "2026-01-02T00:00:00+08:00"}, "-22"),
        ({"strTime": "", "endTime": "2026-01-02T00:00:00+08:00"}, "-22"),
        ({"endTime": "2026-01-02T00:00:00+08:00"}, "-22"),
        ({"strTime": 1767225600, "endTime": 1767312000}, "-22"),
        ("2026-01-01", "-22"),
        (None, "-22"),
    ]
    for params, status in cases:
        got = await env.post(
            "/voice/recordGroupQuery", {"current": 1, "size": 20, "params": params}
        )
        assert got["status"] == status, (params, got)
    for paging in ({"current": 0}, {"size": 101}, {"size": "x"}, {"current": True}):
        got = await env.post("/voice/recordGroupQuery", {**paging, "params": TODAY})
        assert got["status"] == "-22", (paging, got)


# ---- pushVoiceReport ----------------------------------------------------------------------
async def test_voice_push_single_then_batch(itnio: Itnio) -> None:
    app = await add_voice_app(itnio)
    accounts = itnio.services.accounts
    await accounts.update_app_push(app.app_id, {"voice_url": "https://c.example/voice"})
    sent = await send_group(itnio, app, "932111111111,932111111112")
    await finish_calls(itnio, dtmf="7")
    pushes = await itnio.services.pushes.list(kind="itnio.voice")
    bodies = sorted((json.loads(p.body or b"") for p in pushes), key=lambda b: b["voiceId"])
    assert [b["voiceId"] for b in bodies] == [i["voiceId"] for i in sent["data"]]
    assert {p.url for p in pushes} == {"https://c.example/voice"}
    assert {p.order_key for p in pushes} == {f"call:{i['voiceId']}" for i in sent["data"]}
    first = bodies[0]
    assert (first["type"], first["terminationCode"], first["feedbackValue"]) == (1, "200", "7")
    assert (first["ringDuration"], first["outRecallCount"], first["callDuration"]) == (3, 0, 5)
    assert isinstance(first["submitTime"], int)
    assert first["submitTime"] == itnio.clock.now_ms()

    await accounts.update_app_push(app.app_id, {"voice_batch": "true"})
    again = await send_group(itnio, app, "932111111113,932111111114,932111111115")
    await finish_calls(itnio, sip=480)
    batch = [
        p
        for p in await itnio.services.pushes.list(kind="itnio.voice")
        if b'"array"' in (p.body or b"")
    ]
    assert len(batch) == 1  # one POST per app for the calls finished together
    items = json.loads(batch[0].body or b"")["array"]
    assert [i["voiceId"] for i in items] == [i["voiceId"] for i in again["data"]]
    assert {i["terminationCode"] for i in items} == {"480"}


async def test_voice_push_needs_a_url(itnio: Itnio) -> None:
    app = await add_voice_app(itnio)
    await send_group(itnio, app, "932111111111")
    assert len(await finish_calls(itnio)) == 1
    assert await itnio.services.pushes.list(kind="itnio.voice") == []
