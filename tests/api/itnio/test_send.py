"""sendSms and sendSms/batch (spec §1.3, §1.4, §1.19, §7), with the vendor's sample shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simgate.domain.accounts import AppKind
from simgate.domain.messages import State
from simgate.testing.clock import FakeClock
from tests.api.itnio.conftest import Itnio, make_itnio
from tests.support.shapes import assert_same_shape

SEND = "/sms/sendSms"
BATCH = "/sms/sendSms/batch"


# Sample response of the batch page (spec §1.3 [S-clone]).
SEND_SAMPLE = {
    "status": "0",
    "reason": "success",
    "success": "2",
    "fail": "0",
    "array": [
        {"msgId": "2207201629421000001", "number": "86156584848", "orderId": "56584"},
        {"msgId": "2207201629421000002", "number": "86156584849", "orderId": "56585"},
    ],
}


async def _messages(env: Itnio) -> list[Any]:
    async with env.rt.store.db.read() as conn:
        return await env.rt.store.messages.page(conn, account_id=env.account.id, limit=5000)


@pytest.mark.parametrize("prefix", ["", "/v3"])
async def test_post_send_matches_vendor_sample(itnio: Itnio, prefix: str) -> None:
    body = {
        "appId": itnio.app.app_id,
        "numbers": "86156584848,86156584849",
        "content": "hello world",
        "senderId": "ACME",
        "orderId": "56584,56585",
    }
    got = await itnio.post(prefix + SEND, body)
    assert_same_shape(got, SEND_SAMPLE)
    assert {k: got[k] for k in ("status", "reason", "success", "fail")} == {
        k: SEND_SAMPLE[k] for k in ("status", "reason", "success", "fail")
    }
    assert [(a["number"], a["orderId"]) for a in got["array"]] == [
        ("86156584848", "56584"),
        ("86156584849", "56585"),
    ]
    for item in got["array"]:
        assert len(item["msgId"]) == 19
        assert item["msgId"].isdigit()
    rows = {str(m.id): m for m in await _messages(itnio)}
    assert set(rows) == {a["msgId"] for a in got["array"]}
    first = rows[got["array"][0]["msgId"]]
    assert (first.sender, first.client_ref, first.text, first.app_id, first.dialect) == (
        "ACME",
        "56584",
        "hello world",
        itnio.app.id,
        "itnio",
    )


async def test_get_send_with_url_encoded_content(itnio: Itnio) -> None:
    params = {"appId": itnio.app.app_id, "numbers": "91856321412", "content": "a+b & c=d é"}
    got = await itnio.get(SEND, params)
    assert got["status"] == "0"
    assert got["success"] == "1"
    assert got["fail"] == "0"
    assert got["array"][0]["orderId"] == ""
    assert (await _messages(itnio))[0].text == "a+b & c=d é"


async def test_invalid_numbers_are_counted_in_fail_and_left_out(itnio: Itnio) -> None:
    body = {
        "appId": itnio.app.app_id,
        "numbers": "8613800138000,12,abc",
        "content": "x",
        "orderId": "a,b,c",
    }
    got = await itnio.post(SEND, body)
    assert (got["status"], got["success"], got["fail"]) == ("0", "1", "2")
    assert got["array"] == [
        {"msgId": got["array"][0]["msgId"], "number": "8613800138000", "orderId": "a"}
    ]


async def test_duplicates_are_each_their_own_message(itnio: Itnio) -> None:
    body = {"appId": itnio.app.app_id, "numbers": "8613800138000,8613800138000", "content": "x"}
    got = await itnio.post(SEND, body)
    assert got["success"] == "2"
    assert len({a["msgId"] for a in got["array"]}) == 2
    assert len(await _messages(itnio)) == 2


async def test_unknown_fields_are_ignored(itnio: Itnio) -> None:
    body = {
        "appId": itnio.app.app_id,
        "numbers": "8613800138000",
        "content": "x",
        "trackClicks": 0,
        "x": [1],
    }
    assert (await itnio.post(SEND, body))["status"] == "0"


async def test_long_content_is_charged_per_part(itnio: Itnio) -> None:
    body = {"appId": itnio.app.app_id, "numbers": "8613800138000", "content": "x" * 161}
    assert (await itnio.post(SEND, body))["status"] == "0"
    after = await itnio.services.accounts.get_account(itnio.account.id)
    assert after.balance_micros == 100_000_000 - 2 * 10_000  # two parts at 0.01


def _send(env: Itnio, **fields: Any) -> dict[str, Any]:
    body = {"appId": env.app.app_id, "numbers": "8613800138000", "content": "hi"}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"content": ""}, "-4"),
        ({"content": None}, "-4"),
        ({"content": "x" * 1025}, "-5"),
        ({"numbers": ""}, "-8"),
        ({"numbers": None}, "-8"),
        ({"numbers": " , "}, "-8"),
        ({"numbers": "12,abc"}, "-9"),
        ({"numbers": ",".join(["8613800138000"] * 1001)}, "-7"),
        ({"orderId": "a,b"}, "-22"),
        ({"orderId": "x" * 65}, "-22"),
        ({"senderId": "S" * 33}, "-22"),
        ({"appId": ""}, "-14"),
        ({"appId": "nosuchap"}, "-14"),
        ({"numbers": 8613800138000}, "-22"),
        ({"content": ["hi"]}, "-22"),
    ],
)
async def test_send_refusals(itnio_sqlite: Itnio, fields: dict[str, Any], code: str) -> None:
    got = await itnio_sqlite.post(SEND, _send(itnio_sqlite, **fields))
    assert got["status"] == code, got
    assert set(got) == {"status", "reason"}
    assert isinstance(got["reason"], str)
    assert await _messages(itnio_sqlite) == []


async def test_content_of_exactly_1024_and_sender_of_32_pass(itnio: Itnio) -> None:
    got = await itnio.post(SEND, _send(itnio, content="y" * 1024, senderId="S" * 32))
    assert got["status"] == "0"


async def test_get_allows_100_numbers_not_101(itnio: Itnio) -> None:
    base = {"appId": itnio.app.app_id, "content": "hi"}
    ok = await itnio.get(SEND, {**base, "numbers": ",".join(["8613800138000"] * 100)})
    assert ok["status"] == "0"
    assert ok["success"] == "100"
    assert (await itnio.get(SEND, {**base, "numbers": ",".join(["8613800138000"] * 101)}))[
        "status"
    ] == "-7"


async def test_post_allows_1000_numbers(itnio: Itnio) -> None:
    got = await itnio.post(SEND, _send(itnio, numbers=",".join(["8613800138000"] * 1000)))
    assert got["status"] == "0"
    assert got["success"] == "1000"
    assert len(got["array"]) == 1000


async def test_insufficient_balance_is_minus_10_and_queues_nothing(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    async with make_itnio(backend, tmp_path, clock) as env:
        poor = await env.services.accounts.create_account(name="poor", balance="0.015")

        app = await env.services.accounts.create_app(poor.id, kind=AppKind.SMS)
        key = await env.services.accounts.create_key(poor.id)
        body = {"appId": app.app_id, "numbers": "8613800138000,8613800138001", "content": "x"}
        got = await env.post(SEND, body, headers=env.headers(key=key.key, secret=key.secret))
        assert got["status"] == "-10"
        async with env.rt.store.db.read() as conn:
            assert await env.rt.store.messages.page(conn, account_id=poor.id) == []


async def test_no_pricing_is_minus_19(backend: str, tmp_path: Path, clock: FakeClock) -> None:
    async with make_itnio(backend, tmp_path, clock, billing={"default_sms_price": None}) as env:
        assert (await env.post(SEND, _send(env)))["status"] == "-19"


async def test_no_route_is_minus_18(backend: str, tmp_path: Path, clock: FakeClock) -> None:
    async with make_itnio(
        backend, tmp_path, clock, routes=[{"prefix": "44", "lines": ["sim"]}]
    ) as env:
        assert (await env.post(SEND, _send(env)))["status"] == "-18"


async def test_sensitive_words_and_templates(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    cfg = {
        "auth_cache_seconds": 0,
        "sensitive_words": ["casino"],
        "templates": [r"Your code is \d{4,6}\."],
    }
    async with make_itnio(backend, tmp_path, clock, itnio=cfg) as env:
        assert (await env.post(SEND, _send(env, content="Win at CASINO")))["status"] == "-3"
        assert (await env.post(SEND, _send(env, content="hello")))["status"] == "-6"
        assert (await env.post(SEND, _send(env, content="Your code is 1234.")))["status"] == "0"


async def test_locked_account_cannot_send(itnio: Itnio) -> None:
    await itnio.services.accounts.set_locked(itnio.account.id, True)
    assert (await itnio.post(SEND, _send(itnio)))["status"] == "-13"


# ---- batch ------------------------------------------------------------------------------
async def test_batch_with_different_texts_and_senders(itnio: Itnio) -> None:
    body = {
        "appId": itnio.app.app_id,
        "array": [
            {
                "numbers": "86156584848,86156584849",
                "content": "first",
                "senderId": "A",
                "orderId": "o1,o2",
            },
            {"numbers": "91856321412,bad", "content": "second"},
        ],
    }
    got = await itnio.post(BATCH, body)
    assert (got["status"], got["success"], got["fail"]) == ("0", "3", "1")
    assert_same_shape(got, SEND_SAMPLE | {"success": "3", "fail": "1", "array": got["array"]})
    assert [(a["number"], a["orderId"]) for a in got["array"]] == [
        ("86156584848", "o1"),
        ("86156584849", "o2"),
        ("91856321412", ""),
    ]
    rows = {m.recipient: m for m in await _messages(itnio)}
    assert (rows["86156584848"].text, rows["86156584848"].sender) == ("first", "A")
    assert (rows["91856321412"].text, rows["91856321412"].sender) == ("second", "")
    assert all(m.state is State.QUEUED for m in rows.values())


@pytest.mark.parametrize(
    ("array", "code"),
    [
        (None, "-8"),
        ([], "-8"),
        ("x", "-22"),
        ([1, 2], "-22"),
        ([{"numbers": "8613800138000", "content": ""}], "-4"),
        ([{"numbers": "", "content": "x"}], "-8"),
        ([{"numbers": ",".join(["8613800138000"] * 600), "content": "x"}] * 2, "-7"),
        ([{"numbers": "1", "content": "x"}], "-9"),
    ],
)
async def test_batch_refusals(itnio_sqlite: Itnio, array: Any, code: str) -> None:
    body: dict[str, Any] = {"appId": itnio_sqlite.app.app_id}
    if array is not None:
        body["array"] = array
    assert (await itnio_sqlite.post(BATCH, body))["status"] == code
    assert await _messages(itnio_sqlite) == []
