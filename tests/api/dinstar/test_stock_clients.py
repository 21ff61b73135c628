"""Stock client code against a real ``simgate run`` on 127.0.0.1 (spec §2, Amendments).

Python's ``urllib.request.HTTPDigestAuthHandler`` reads only the first ``WWW-Authenticate``
challenge and knows MD5 (and SHA-1) but not SHA-256, so the MD5 challenge must come first.
Through it: a send without ``user_id``, its result rows built into a typed client object
that requires ``user_id``, and ``get_port_info`` with ``port`` among the info types.
"""

from __future__ import annotations

import gc
import json
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simgate.testing.procs import SimgateProcess, free_port, write_config
from tests.api.dinstar.conftest import SmsResult

pytestmark = pytest.mark.slow

SN = "ABCD-0000-1111-3333"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    data = tmp_path / "data"
    cfg = write_config(
        tmp_path / "simgate.toml",
        {"data_dir": str(data), "log_level": "warning", "dinstar": {"sn": SN}},
    )
    with SimgateProcess(["run"], workdir=tmp_path, config=cfg, port=free_port()) as proc:
        proc.wait_healthy(60)
        demo = json.loads((data / "demo.json").read_text())
        yield proc.url, demo["gateway_username"], demo["gateway_password"]
        proc.stop()


def digest_opener(base: str, user: str, password: str) -> urllib.request.OpenerDirector:
    """As a stock urllib client sets up Digest: a password manager and the Digest handler."""
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, base, user, password)
    return urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(passwords))


def call(
    opener: urllib.request.OpenerDirector, url: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with opener.open(request, timeout=20) as response:
        assert response.status == 200
        answer: dict[str, Any] = json.load(response)
    assert answer["sn"] == SN
    return answer


def test_urllib_digest_client(gateway: tuple[str, str, str]) -> None:
    with warnings.catch_warnings():
        # urllib's auth handlers retry without closing the 401 response: its socket is only
        # reclaimed by the collector (a CPython quirk, not the server's).
        warnings.simplefilter("ignore", ResourceWarning)
        digest_client_session(*gateway)
        gc.collect()


def digest_client_session(base: str, user: str, password: str) -> None:
    opener = digest_opener(base, user, password)
    sent = call(opener, f"{base}/api/send_sms", {"text": "hi", "param": [{"number": "10086"}]})
    assert sent["error_code"] == 202

    # The typed client's rows: user_id is required; the send gave none, so it is 0.
    rows = [SmsResult(**r) for r in call(opener, f"{base}/api/query_sms_result", {})["result"]]
    assert [(r.number, r.user_id) for r in rows] == [("10086", 0)]

    # A query string is part of the Digest uri: urllib signs the whole selector.
    asked = "port,type,imsi,reg,signal,no_such_type"
    info = call(opener, f"{base}/api/get_port_info?port=0,2&info_type={asked}")
    assert info["error_code"] == 200
    assert [list(i) for i in info["info"]] == [["port", "type", "imsi", "reg", "signal"]] * 2
    assert [(i["port"], i["reg"]) for i in info["info"]] == [(0, "REGISTER_OK"), (2, "REGISTER_OK")]

    # Wrong credentials end in 401 after urllib's retries, not in a loop or a crash.
    wrong = digest_opener(base, "ghost", password)
    with pytest.raises(urllib.error.HTTPError) as denied:
        call(wrong, f"{base}/api/query_sms_in_queue")
    assert denied.value.code == 401
