"""A message through the sim line as a Dinstar client sees it: queries and pushes agree."""

from __future__ import annotations

from simgate.domain.messages import State
from tests.api.dinstar.conftest import SN, Gw, GwFactory, SmsResult, capture_pushes

THREE_PARTS = "Ünïcode " * 20  # 160 UCS-2 units: 3 parts of 67


async def test_three_part_message_on_port_2(make_gw: GwFactory) -> None:
    gw = await make_gw(lines={"sim": {"report_delay_ms": 30_000}})
    pushes = await capture_pushes(gw)
    await gw.rt.start_worker()
    # Two earlier messages on port 2 move its TP-MR counter on: ref_id must be 1 + 3 = 4.
    await gw.post("/api/send_sms", {"text": "a", "port": [2], "param": [{"number": "5550001"}]})
    await gw.post(
        "/api/send_sms", {"text": "b" * 140, "port": [2], "param": [{"number": "5550002"}]}
    )
    await gw.settle(await gw.message_ids(), State.SENT)
    sent = await gw.post(
        "/api/send_sms",
        {"text": THREE_PARTS, "port": [2], "param": [{"number": "8613800138000", "user_id": 77}]},
    )
    assert sent["error_code"] == 202
    ids = await gw.message_ids()
    await gw.settle(ids, State.SENT)
    imsi = gw.line.ports()[2].imsi
    q = await gw.post("/api/query_sms_result", {"user_id": [77]})
    (item,) = q["result"]
    assert {
        k: item[k]
        for k in ("port", "user_id", "number", "status", "count", "succ_count", "ref_id", "imsi")
    } == {
        "port": 2,
        "user_id": 77,
        "number": "8613800138000",
        "status": "SENT_OK",
        "count": 3,
        "succ_count": 3,
        "ref_id": 4,
        "imsi": imsi,
    }
    assert (await gw.post("/api/query_sms_deliver_status", {"port": [2]}))["result"] == []

    await gw.clock.advance(31)
    await gw.settle(ids, State.DELIVERED)
    q2 = await gw.post("/api/query_sms_result", {"user_id": [77]})
    assert q2["result"] == [{**item, "status": "DELIVERED"}]
    status = await gw.post("/api/query_sms_deliver_status", {"number": ["8613800138000"]})
    (report,) = status["result"]
    # The client's join: (port, number, ref_id) of the result finds the delivery status.
    assert (report["port"], report["number"], report["ref_id"]) == (2, "8613800138000", 4)
    assert report["status_code"] == 0
    assert report["imsi"] == imsi
    assert report["time"] > item["time"]

    # The same facts were pushed: SENT_OK then DELIVERED, and one delivery status.
    mine_results = [r for r in pushes.of("sms_result") if r.get("user_id") == 77]
    assert [r["status"] for r in mine_results] == ["SENT_OK", "DELIVERED"]
    assert mine_results[-1] == q2["result"][0]
    reports = [r for r in pushes.of("sms_deliver_status") if r["ref_id"] == 4]
    assert reports == [report]
    assert len(pushes.of("sms_deliver_status")) == 3  # one per message, not per part


async def test_failed_part_fails_the_message_once(make_gw: GwFactory) -> None:
    gw = await make_gw(lines={"sim": {"delivery_ratio": 0.0}})
    pushes = await capture_pushes(gw)
    await gw.rt.start_worker()
    await gw.post(
        "/api/send_sms", {"text": "z" * 200, "param": [{"number": "5551234", "user_id": 5}]}
    )
    ids = await gw.message_ids()
    await gw.settle(ids, State.FAILED)
    (res,) = (await gw.post("/api/query_sms_result", {"user_id": [5]}))["result"]
    assert (res["status"], res["count"], res["succ_count"]) == ("FAILED", 3, 3)
    (st,) = (await gw.post("/api/query_sms_deliver_status", {}))["result"]
    assert st["status_code"] == 65  # the permanent-error code the sim line reports
    assert pushes.of("sms_deliver_status") == [st]


async def test_incoming_sms_is_queried_marked_and_pushed(make_gw: GwFactory) -> None:
    gw = await make_gw()
    pushes = await capture_pushes(gw)
    await gw.rt.start_worker()
    await gw.line.inject_incoming(port=3, sender="6717", text="hello gateway")
    await gw.line.inject_incoming(port=1, sender="6718", text="second")
    unread = await gw.get("/api/query_incoming_sms", flag="unread")
    assert [(s["incoming_sms_id"], s["port"], s["number"], s["text"]) for s in unread["sms"]] == [
        (1, 3, "6717", "hello gateway"),
        (2, 1, "6718", "second"),
    ]
    assert (unread["read"], unread["unread"]) == (2, 0)  # reading the unread marks them read
    assert unread["sms"][0]["imsi"] == gw.line.ports()[3].imsi
    assert (await gw.get("/api/query_incoming_sms", flag="unread"))["sms"] == []
    assert len((await gw.get("/api/query_incoming_sms", flag="read"))["sms"]) == 2
    after = await gw.get("/api/query_incoming_sms", incoming_sms_id=1, port="1,2")
    assert [s["incoming_sms_id"] for s in after["sms"]] == [2]
    assert pushes.of("sms") == unread["sms"]
    assert all(b["sn"] == SN for b in pushes.bodies)


async def test_filters_stop_and_queue(make_gw: GwFactory) -> None:
    gw = await make_gw()
    first = await gw.post(
        "/api/send_sms",
        {
            "text": "#param# hi",
            "param": [
                {"number": "5550100", "text_param": ["A"], "user_id": 1},
                {"number": "5550101", "text_param": ["B"], "user_id": 2},
            ],
        },
    )
    second = await gw.post(
        "/api/send_sms", {"text": "x", "param": [{"number": "5550102", "user_id": 3}]}
    )
    assert second["task_id"] == first["task_id"] + 1
    assert (await gw.get("/api/query_sms_in_queue"))["in_queue"] == 3
    everything = (await gw.post("/api/query_sms_result", {}))["result"]
    assert [r["user_id"] for r in everything] == [3, 2, 1]  # newest first (spec §7)
    assert all(r["status"] == "SENDING" and r["port"] == -1 for r in everything)
    by_number = (await gw.post("/api/query_sms_result", {"number": ["5550101"]}))["result"]
    assert [r["user_id"] for r in by_number] == [2]
    t = everything[0]["time"]
    assert len((await gw.post("/api/query_sms_result", {"time_after": t}))["result"]) == 3
    assert (await gw.post("/api/query_sms_result", {"time_before": "2000-01-01 00:00:00"}))[
        "result"
    ] == []
    assert (await gw.get("/api/stop_sms", task_id=first["task_id"]))["error_code"] == 200
    assert (await gw.get("/api/query_sms_in_queue"))["in_queue"] == 1
    stopped = (await gw.post("/api/query_sms_result", {"user_id": [1, 2]}))["result"]
    assert [r["status"] for r in stopped] == ["FAILED", "FAILED"]
    other = await gw.sv.accounts.create_account(name="other", balance="1")
    await gw.sv.accounts.create_user(other.id, username="other", password="pass-word")
    gw.client.auth = ("other", "pass-word")
    assert (await gw.post("/api/query_sms_result", {}))["result"] == []  # accounts are apart
    assert (await gw.get("/api/stop_sms", task_id=second["task_id"]))["error_code"] == 404


async def test_every_result_row_builds_a_typed_client_object(gw: Gw) -> None:
    """A typed client builds one object per row with ``user_id`` required (spec Amendments):
    a send that gave no user_id reads back, and is pushed, with ``user_id`` 0."""
    pushes = await capture_pushes(gw)
    await gw.rt.start_worker()
    await gw.post("/api/send_sms", {"text": "a", "param": [{"number": "5550001"}]})
    await gw.post("/api/send_sms", {"text": "b", "param": [{"number": "5550002", "user_id": 5}]})
    await gw.settle(await gw.message_ids(), State.DELIVERED)
    rows = [SmsResult(**r) for r in (await gw.post("/api/query_sms_result", {}))["result"]]
    assert [(r.number, r.user_id, r.status) for r in rows] == [
        ("5550002", 5, "DELIVERED"),
        ("5550001", 0, "DELIVERED"),
    ]
    pushed = [SmsResult(**r) for r in pushes.of("sms_result")]
    assert sorted((r.number, r.user_id, r.status) for r in pushed) == [
        ("5550001", 0, "DELIVERED"),
        ("5550001", 0, "SENT_OK"),
        ("5550002", 5, "DELIVERED"),
        ("5550002", 5, "SENT_OK"),
    ]


async def test_two_lines_form_one_gateway(make_gw: GwFactory) -> None:
    gw = await make_gw(
        lines={"a": {"ports": 2, "seed": 1}, "b": {"ports": 3, "seed": 2}},
        routes=[{"prefix": "", "lines": ["a"]}],
        dinstar={"lines": ["b", "a"]},
    )
    info = (await gw.get("/api/get_port_info", info_type="imsi,reg"))["info"]
    b, a = gw.sv.lines["b"].ports(), gw.sv.lines["a"].ports()
    assert [i["imsi"] for i in info] == [p.imsi for p in (*b, *a)]
    await gw.rt.start_worker()
    await gw.post(
        "/api/send_sms", {"text": "x", "port": [4], "param": [{"number": "5550100", "user_id": 9}]}
    )
    ids = await gw.message_ids()
    await gw.settle(ids, State.DELIVERED)
    async with gw.rt.store.db.read() as conn:
        (m,) = await gw.rt.store.messages.get(conn, ids)
    assert (m.line, m.port) == ("a", 1)  # gateway port 4 = line a's port 1
    (r,) = (await gw.post("/api/query_sms_result", {"port": [4]}))["result"]
    assert (r["port"], r["imsi"]) == (4, a[1].imsi)


async def test_port_info_and_actions(gw: Gw) -> None:
    info = (await gw.get("/api/get_port_info", port="0,1"))["info"]
    assert list(info[0]) == [
        "port",
        "type",
        "imei",
        "imsi",
        "iccid",
        "number",
        "reg",
        "slot",
        "callstate",
        "signal",
        "gprs",
    ]
    assert info[0]["reg"] == "REGISTER_OK"
    assert len(info[0]["imei"]) == 15
    credits = (
        await gw.get(
            "/api/get_port_info", port="0", info_type="remain_credit,remain_daily_calltime"
        )
    )["info"]
    assert credits == [{"port": 0, "remain_credit": "", "remain_daily_calltime": ""}]
    assert (await gw.get("/api/set_port_info", port="1", action="power", param="off"))[
        "error_code"
    ] == 200
    assert (await gw.get("/api/get_port_info", port="1", info_type="reg"))["info"] == [
        {"port": 1, "reg": "UNREGISTER"}
    ]
    assert (await gw.get("/api/set_port_info", port="2", action="block"))["error_code"] == 200
    assert gw.line.ports()[2].locked
    r = await gw.post(
        "/api/send_sms", {"text": "x", "port": [1, 2], "param": [{"number": "5550100"}]}
    )
    assert r["error_code"] == 550  # port 1 off, port 2 blocked
    assert (await gw.get("/api/set_port_info", port="2", action="unblock"))["error_code"] == 200
    assert (await gw.get("/api/set_port_info", port="1", action="power", param="on"))[
        "error_code"
    ] == 200
    assert (await gw.get("/api/set_port_info", port="1", action="reset"))["error_code"] == 200
    r = await gw.post(
        "/api/send_sms", {"text": "x", "port": [1, 2], "param": [{"number": "5550100"}]}
    )
    assert r["error_code"] == 202


async def test_port_info_accepts_port_and_ignores_unknown_types(gw: Gw) -> None:
    """A client asking for ``port`` among the types (a PHP library's default call) gets the
    port once, first; types simgate does not know are left out, not refused (spec
    Amendments)."""
    asked = "port,type,imei,imsi,iccid,number,reg,slot,callstate,signal,gprs,sim_status"
    r = await gw.client.get("/api/get_port_info", params={"port": "0,2", "info_type": asked})
    assert r.status_code == 200
    body = r.json()
    assert (body["error_code"], body["sn"]) == (200, SN)
    ports = gw.line.ports()
    assert [(i["port"], i["imsi"], i["reg"]) for i in body["info"]] == [
        (0, ports[0].imsi, "REGISTER_OK"),
        (2, ports[2].imsi, "REGISTER_OK"),
    ]
    assert list(body["info"][0]) == asked.split(",")[:-1]
    only_unknown = await gw.get("/api/get_port_info", port="1", info_type="colour,port")
    assert only_unknown["info"] == [{"port": 1}]
