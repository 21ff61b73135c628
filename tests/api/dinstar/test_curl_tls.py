"""The seed's own example with curl against a real ``simgate run`` serving TLS (seed 001).

``curl -k --anyauth -u USER:PASS -d '{"user_id":[1,2]}' -H "Content-Type: application/json"
https://HOST/api/query_sms_result``, then again with Basic and Digest forced in turn.
"""

from __future__ import annotations

import json
import stat
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from requests.auth import HTTPDigestAuth

from simgate.testing.procs import SimgateProcess, free_port, write_config
from tests.conftest import have, need_peer

pytestmark = pytest.mark.peer


@pytest.fixture
def tls_gateway(tmp_path: Path) -> Iterator[tuple[str, str, str, Path]]:
    need_peer("curl", have("curl"), "apt-get install curl")
    data = tmp_path / "data"
    cfg = write_config(
        tmp_path / "simgate.toml",
        {"data_dir": str(data), "http": {"tls": True}, "dinstar": {"sn": "ABCD-0000-1111-2222"}},
    )
    port = free_port()
    with SimgateProcess(["run"], workdir=tmp_path, config=cfg, port=port) as proc:
        base = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        with httpx.Client(verify=False, timeout=2) as client:
            while True:
                try:
                    if client.get(base + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, proc.stderr()[-2000:]
                assert time.monotonic() < deadline, "simgate did not come up over TLS"
                time.sleep(0.05)
        demo = json.loads((data / "demo.json").read_text())
        yield base, demo["gateway_username"], demo["gateway_password"], data
        proc.stop()


def curl(*args: str) -> tuple[int, dict[str, Any]]:
    out = subprocess.run(
        ["curl", "-sS", "-k", "--max-time", "20", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    body, _, status = out.rpartition("\n")
    return int(status), json.loads(body)


def test_seed_example_with_anyauth_basic_and_digest(
    tls_gateway: tuple[str, str, str, Path],
) -> None:
    base, user, password, data = tls_gateway
    send = json.dumps({"text": "hi", "param": [{"number": "10086", "user_id": 1}]})
    status, sent = curl(
        "--anyauth",
        "-u",
        f"{user}:{password}",
        "-d",
        send,
        "-H",
        "Content-Type: application/json",
        f"{base}/api/send_sms",
    )
    assert (status, sent["error_code"], sent["sn"]) == (200, 202, "ABCD-0000-1111-2222")
    for mode in ("--anyauth", "--basic", "--digest"):
        status, got = curl(
            mode,
            "-u",
            f"{user}:{password}",
            "-d",
            '{"user_id":[1,2]}',
            "-H",
            "Content-Type: application/json",
            f"{base}/api/query_sms_result",
        )
        assert status == 200, mode
        assert got["error_code"] == 200, mode
        results = got["result"]
        assert isinstance(results, list)
        assert [r["user_id"] for r in results] == [1], mode
        assert results[0]["number"] == "10086"
    for mode in ("--anyauth", "--basic", "--digest"):  # a query string is part of the Digest uri
        status, info = curl(
            mode,
            "-u",
            f"{user}:{password}",
            f"{base}/api/get_port_info?port=0,2&info_type=imsi,reg",
        )
        assert status == 200, mode
        assert [(i["port"], i["reg"]) for i in info["info"]] == [
            (0, "REGISTER_OK"),
            (2, "REGISTER_OK"),
        ]
    for mode in ("--anyauth", "--basic", "--digest"):
        status, denied = curl(mode, "-u", f"{user}:wrong", f"{base}/api/query_sms_in_queue")
        assert (status, denied["error_code"]) == (401, 401), mode
    key = data / "tls" / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (data / "tls" / "cert.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_python_client_digest_auth(tls_gateway: tuple[str, str, str, Path]) -> None:
    """requests' HTTPDigestAuth, as the moucester Dinstar client uses it: it folds the three
    challenges into one header and picks the last algorithm with the shared nonce (SHA-256,
    since MD5 comes first for clients that read one challenge only: spec Amendments)."""
    base, user, password, _ = tls_gateway
    auth = HTTPDigestAuth(user, password)
    headers = {"Content-Type": "application/json"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # urllib3 warns about verify=False (self-signed)
        sent = requests.post(
            f"{base}/api/send_sms",
            auth=auth,
            headers=headers,
            data=json.dumps({"text": "py", "param": [{"number": "10086", "user_id": 9}]}),
            verify=False,
            timeout=20,
        )
        polled = requests.post(
            f"{base}/api/query_incoming_sms",
            auth=auth,
            headers=headers,
            data=json.dumps({"incoming_sms_id": 0, "flag": "unread"}),
            verify=False,
            timeout=20,
        )
        stopped = requests.post(
            f"{base}/api/stop_sms?task_id=424242",
            auth=auth,
            headers=headers,
            verify=False,
            timeout=20,
        )
    assert sent.status_code == 200
    assert sent.json()["error_code"] == 202
    assert polled.json() == {
        "error_code": 200,
        "sn": "ABCD-0000-1111-2222",
        "sms": [],
        "read": 0,
        "unread": 0,
    }
    assert stopped.json()["error_code"] == 404
    assert 'algorithm="SHA-256"' in sent.request.headers["Authorization"]
