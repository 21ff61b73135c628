"""Pure parts of the dialect: templating, renderings, port map, tables, readers, push bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from simgate.api.dialects.dinstar import DIALECT, push, render
from simgate.api.dialects.dinstar import envelope as env
from simgate.api.dialects.dinstar.device import imei
from simgate.api.dialects.dinstar.ports import PortMap
from simgate.api.dialects.dinstar.settings import DinstarSettings
from simgate.api.dialects.dinstar.sms import choose_line, fill
from simgate.domain.messages import State
from simgate.domain.records import MessageRecord
from simgate.errors import (
    AccountLocked,
    ConfigError,
    ContentEmpty,
    ContentTooLong,
    InsufficientBalance,
    InvalidInput,
    InvalidNumber,
    NoPricing,
    NoRoute,
    NotFound,
    TooManyNumbers,
)
from simgate.lines.sim import SimLine
from simgate.settings import SimLineSettings
from simgate.testing.clock import FakeClock
from tests.support.push_events import message


def record(**kw: Any) -> MessageRecord:
    """A Dinstar send of two parts, SENT on port 1 of ``sim`` (the shared record, changed)."""
    dinstar: dict[str, Any] = dict(
        id=1,
        dialect="dinstar",
        client_ref="7",
        task_id=1,
        recipient="10086",
        text="t",
        encoding=8,
        parts=2,
        state=State.SENT,
        price_micros=1,
        charge_micros=2,
        first_ref=9,
        parts_ok=2,
        parts_reported=0,
        status_code=None,
        accepted_ms=0,
        queued_ms=0,
        submitting_ms=0,
        sent_ms=1_000,
        delivered_ms=None,
        updated_ms=1_000,
    )
    return message(**{**dinstar, **kw})


def test_fill_replaces_placeholders_in_order() -> None:
    assert fill("#param#", ["bj"]) == "bj"
    assert fill("Hi #param#, code #param#.", ["Ann", "42"]) == "Hi Ann, code 42."
    assert fill("#param# and #param#", ["one"]) == "one and "
    assert fill("no placeholder", ["x"]) == "no placeholder"
    assert fill("#param##param#", ["a", "b", "c"]) == "ab"


def test_every_state_has_a_send_status() -> None:
    assert set(render.RESULT_STATUS) == set(State)
    assert {render.RESULT_STATUS[s] for s in State} == {"SENDING", "SENT_OK", "DELIVERED", "FAILED"}
    assert (
        render.sms_result(
            record(state=State.QUEUED, port=None, first_ref=None), port=None, imsi=""
        )["ref_id"]
        == -1
    )


def test_sms_result_rendering() -> None:
    item = render.sms_result(record(), port=3, imsi="46000", tz="Asia/Shanghai")
    assert item == {
        "port": 3,
        "user_id": 7,
        "number": "10086",
        "time": "1970-01-01 08:00:01",
        "status": "SENT_OK",
        "count": 2,
        "succ_count": 2,
        "ref_id": 9,
        "imsi": "46000",
    }
    # Always there, 0 when the send gave none (spec Amendments: typed clients require it).
    assert render.sms_result(record(client_ref=None), port=3, imsi="")["user_id"] == 0


def test_delivery_status_needs_every_part() -> None:
    partial = record(state=State.SENT, parts_reported=1)
    failed_submit = record(state=State.FAILED, parts_ok=0, parts_reported=0)
    done = record(state=State.FAILED, parts_reported=2, status_code=65, failed_ms=5_000)
    assert not render.has_delivery_status(partial)
    assert not render.has_delivery_status(failed_submit)
    assert render.has_delivery_status(done)
    assert render.deliver_status(done, port=1, imsi="i") == {
        "port": 1,
        "number": "10086",
        "time": "1970-01-01 00:00:05",
        "ref_id": 9,
        "status_code": 65,
        "imsi": "i",
    }


def test_times_round_trip_in_the_account_zone() -> None:
    ms = render.parse_time("2016-07-12 15:46:18", "Europe/Berlin")
    assert render.fmt_time(ms, "Europe/Berlin") == "2016-07-12 15:46:18"
    assert render.fmt_time(ms, "UTC") == "2016-07-12 13:46:18"
    for bad in ("2016-07-12", "2016-07-12T15:46:18", "12/07/2016 15:46:18", ""):
        with pytest.raises(ValueError):
            render.parse_time(bad)


def _line(name: str, ports: int, seed: int = 1) -> SimLine:
    return SimLine(name, SimLineSettings(ports=ports, seed=seed), FakeClock())


def test_port_map_numbers_ports_of_the_chosen_lines_in_order() -> None:
    lines = {"a": _line("a", 2), "b": _line("b", 3, 2)}
    pm = PortMap(lines, ["b", "a"])
    assert [(g.number, g.line, g.index) for g in pm.ports] == [
        (0, "b", 0),
        (1, "b", 1),
        (2, "b", 2),
        (3, "a", 0),
        (4, "a", 1),
    ]
    assert pm.number_of("a", 1) == 4
    assert pm.number_of("c", 0) is None
    assert pm.number_of("a", None) is None
    assert pm.get(5) is None
    assert pm.imsi("b", 2) == lines["b"].ports()[2].imsi
    assert len(PortMap(lines, [])) == 5  # default: every line
    with pytest.raises(ConfigError):
        PortMap(lines, ["z"])


def test_choose_line_prefers_the_line_with_most_usable_wanted_ports() -> None:
    lines = {"a": _line("a", 2), "b": _line("b", 3, 2)}
    pm = PortMap(lines, ["a", "b"])
    assert choose_line(pm, [0, 2, 3]) == ("b", "0,1")
    lines["b"].set_port(0, registered=False)
    lines["b"].set_port(1, locked=True)
    assert choose_line(pm, [0, 2, 3]) == ("a", "0")
    with pytest.raises(NoRoute):
        choose_line(pm, [2, 3, 9])
    assert choose_line(pm, None)[0] == "a"


def test_imei_is_15_digits_with_a_luhn_check() -> None:
    for i in range(20):
        value = imei("sim", i)
        digits = [int(d) for d in value]
        total = sum(d if k % 2 == 0 else sum(divmod(d * 2, 10)) for k, d in enumerate(digits))
        assert len(value) == 15
        assert total % 10 == 0
    assert imei("sim", 0) == imei("sim", 0) != imei("sim", 1)


def test_the_error_table() -> None:
    assert env.error_code(TooManyNumbers("x")) == 413
    assert env.error_code(ContentTooLong("x")) == 413
    assert env.error_code(ContentEmpty("x")) == 400
    assert env.error_code(InvalidNumber("x")) == 400
    assert env.error_code(InvalidInput("x")) == 400
    assert env.error_code(NoRoute("x")) == 550
    assert env.error_code(NotFound("x")) == 404
    for exc in (AccountLocked("x"), InsufficientBalance("x"), NoPricing("x")):
        assert env.error_code(exc) == 500


def test_readers_accept_json_and_query_spellings() -> None:
    assert env.read_int_list({"port": "1, 2,3"}, "port", lo=0, hi=31) == [1, 2, 3]
    assert env.read_int_list({"port": [4]}, "port", lo=0, hi=31) == [4]
    assert env.read_int_list({"port": 5}, "port", lo=0, hi=31) == [5]
    assert env.read_int_list({}, "port", lo=0, hi=31) is None
    assert env.read_int({"id": "12"}, "id", lo=0, hi=99) == 12
    assert env.read_bool({"b": "false"}, "b", default=True) is False
    assert env.read_numbers({"number": "123,456"}, "number", max_items=32) == ["123", "456"]
    for bad in ({"port": [True]}, {"port": "1;2"}, {"port": {"a": 1}}, {"port": [32]}):
        with pytest.raises(InvalidInput):
            env.read_int_list(bad, "port", lo=0, hi=31)
    with pytest.raises(TooManyNumbers):
        env.read_numbers({"number": ["1"] * 33}, "number", max_items=32)


def test_push_bodies_are_one_type_per_request_and_chunked() -> None:
    items: list[push.Entry] = [(None, {"port": i, "text": "t"}) for i in range(250)]
    planned = push.requests("AB12-0000-0000-0001", "http://h/p", "ussd", items)
    assert len(planned) == 3
    bodies = [json.loads(p.request.body or b"") for p in planned]
    assert [len(b["ussd"]) for b in bodies] == [100, 100, 50]
    assert all(list(b) == ["sn", "ussd"] for b in bodies)
    assert all(p.order_key == "dinstar:ussd" and p.kind == "dinstar.ussd" for p in planned)
    assert push.requests("x", "http://h", "sms", []) == []


def test_a_push_names_the_records_its_items_report_on() -> None:
    """The console lists a message's pushes by these (issue 19): a chunk names its own."""
    entries: list[push.Entry] = [(i, {"port": 0}) for i in range(1, 151)]
    planned = push.requests("x", "http://h/p", "sms_result", entries)
    assert [p.subjects for p in planned] == [tuple(range(1, 101)), tuple(range(101, 151))]


def test_register_item_on_down_hides_the_sim() -> None:
    up = render.register(port=1, up=True, iccid="8986", imsi="4600", number="155", sequence=3)
    down = render.register(port=1, up=False, iccid="8986", imsi="4600", number="155", sequence=4)
    assert (up["iccid"], up["imsi"], up["status"]) == ("8986", "4600", "up")
    assert (down["iccid"], down["imsi"], down["status"]) == ("<NULL>", "<NULL>", "down")


def test_settings_are_validated() -> None:
    assert DIALECT.validate({}).sn == DinstarSettings().sn
    for bad in (
        {"sn": "1234"},
        {"sn": "1234-5678-9abc-de!0"},
        {"push_types": ["cdr"]},
        {"bogus": 1},
    ):
        with pytest.raises(ConfigError):
            DIALECT.validate(bad)
