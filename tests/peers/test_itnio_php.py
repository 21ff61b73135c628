"""The itniotech vendor samples against a real ``simgate run`` process (issue 4 "Done when").

- The PHP sample of seeds/000 (getSentRcd), run unchanged with Debian's php-cli + php-curl
  but for the base URL, credentials and query values.
- A Python rendering of the Java sample (same headers and signing steps, with httpx).
The server is a real subprocess on a free port with a temporary data dir; credentials come
from its demo.json.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from simgate.testing.procs import SimgateProcess, free_port, write_config
from tests.api.itnio.conftest import wav_b64
from tests.conftest import have, need_peer

pytestmark = pytest.mark.peer  # php-cli runs the vendor's sample unchanged

SAMPLE = Path(__file__).with_name("itnio") / "getSentRcd.php"
VOICE_SAMPLE = Path(__file__).with_name("itnio") / "recordGroupQuery.php"
# The seed's sample record (seeds/003): every key, with the JSON type it has there.
SEED_RECORD_TYPES = {
    **dict.fromkeys(
        [
            "voiceId",
            "callee",
            "displayNum",
            "code",
            "submitTime",
            "callTime",
            "ringingTime",
            "answerTime",
            "hangupTime",
            "terminationCode",
            "terminationReason",
            "cost",
            "billPeriod",
            "rate",
            "baseCost",
            "voiceFileId",
            "feedbackValue",
            "calledInfo",
        ],
        str,
    ),
    "callDuration": int,
    "chargedDuration": int,
}
# A quick simulated voice line: every callee answers within a second and presses a key.
FAST_VOICE = {
    "lines": {
        "sim-voice": {
            "answer_ratio": 1.0,
            "busy_ratio": 0.0,
            "setup_seconds": [0.05, 0.1],
            "ring_seconds": [0.1, 0.3],
            "early_hangup_ratio": 0.0,
            "dtmf_ratio": 1.0,
            "dtmf_seconds": [0.05, 0.1],
        }
    }
}


def _php_has_curl() -> bool:
    if not have("php"):
        return False
    out = subprocess.run(["php", "-m"], capture_output=True, text=True, timeout=30, check=False)
    return any(line.strip().lower() == "curl" for line in out.stdout.splitlines())


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SimgateProcess, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("itnio_peer")
    port = free_port()
    cfg = write_config(
        tmp / "simgate.toml",
        {
            "data_dir": str(tmp / "data"),
            "log_level": "warning",
            "http": {"port": port},
            "voice": FAST_VOICE,
        },
    )
    proc = SimgateProcess(["run"], workdir=tmp, config=cfg, port=port)
    with proc:
        proc.wait_healthy()
        demo = json.loads((tmp / "data" / "demo.json").read_text(encoding="utf-8"))
        yield proc, demo


def _java_style_headers(api_key: str, api_secret: str) -> dict[str, str]:
    """The Java sample's steps: epoch seconds as a string, md5(key + secret + time)."""
    datetime_ = str(int(time.time()))
    sign = hashlib.md5((api_key + api_secret + datetime_).encode()).hexdigest()
    return {
        "Connection": "Keep-Alive",
        "Content-Type": "application/json;charset=UTF-8",
        "Sign": sign,
        "Timestamp": datetime_,
        "Api-Key": api_key,
    }


def _today() -> tuple[str, str]:
    day = datetime.now(UTC).strftime("%Y-%m-%d")  # the demo account's zone is UTC
    return f"{day}T00:00:00+00:00", f"{day}T23:59:59+00:00"


def _send_and_wait(proc: SimgateProcess, demo: dict[str, str]) -> str:
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        body = {"appId": demo["sms_app_id"], "numbers": "91856321412", "content": "peer test"}
        r = client.post(
            "/sms/sendSms",
            json=body,
            headers=_java_style_headers(demo["api_key"], demo["api_secret"]),
        )
        sent = r.json()
        assert sent["status"] == "0", sent
        msg_id = str(sent["array"][0]["msgId"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            q = f"/sms/getReport?appId={demo['sms_app_id']}&msgIds={msg_id}"
            report = client.get(
                q, headers=_java_style_headers(demo["api_key"], demo["api_secret"])
            ).json()
            if report["array"] and report["array"][0]["status"] == "0":
                return msg_id
            time.sleep(0.05)
    raise AssertionError("message not delivered through the sim line in 20 s")


def _run_php_sample(sample: Path, replacements: dict[str, str], workdir: Path) -> dict[str, object]:
    """The vendor's PHP sample with ``replacements`` made (each must be found), run with
    php-cli; its ``var_dump($output)`` prints ``string(N) "<json>"``: the parsed JSON."""
    script = sample.read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in script
        script = script.replace(old, new)
    path = workdir / sample.name
    path.write_text(script, encoding="utf-8")
    out = subprocess.run(
        ["php", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout.strip()
    assert text.startswith("string("), text
    payload: dict[str, object] = json.loads(text[text.index('"') + 1 : text.rindex('"')])
    return payload


def test_php_sample_get_sent_rcd(
    server: tuple[SimgateProcess, dict[str, str]], tmp_path: Path
) -> None:
    need_peer("php-cli with php-curl", _php_has_curl(), "apt-get install php-cli php-curl")
    proc, demo = server
    msg_id = _send_and_wait(proc, demo)
    start, end = _today()
    payload: Any = _run_php_sample(
        SAMPLE,
        {
            "your api key": demo["api_key"],
            "your api secret": demo["api_secret"],
            "{{appId}}": demo["sms_app_id"],
            "{{startTime}}": start,
            "{{endTime}}": end,
            "{{startIndex}}": "0",
            "https://api.itniotech.com": proc.url,
        },
        tmp_path,
    )
    assert payload["status"] == "0", payload
    assert (msg_id, "0") in {(i["msgId"], i["status"]) for i in payload["array"]}
    assert payload["success"] == str(len(payload["array"]))


def test_java_sample_rendered_in_python(server: tuple[SimgateProcess, dict[str, str]]) -> None:
    proc, demo = server
    start, end = _today()
    # final String startTime = URLEncoder.encode("{{startTime}}"); ... StrUtil.format(template, ...)
    template = "?appId={}&startTime={}&endTime={}&startIndex={}"
    query = template.replace("{}", "%s") % (
        demo["sms_app_id"],
        quote(start, safe=""),
        quote(end, safe=""),
        0,
    )
    url = proc.url + "/sms" + "/getSentRcd" + query
    with httpx.Client(timeout=10) as client:
        response = client.get(url, headers=_java_style_headers(demo["api_key"], demo["api_secret"]))
    assert response.status_code == 200  # response.isOk()
    result = response.json()
    assert result["status"] == "0", result
    assert isinstance(result["array"], list)
    assert isinstance(result["success"], str)
    assert isinstance(result["fail"], str)


def _group_call_and_wait(
    proc: SimgateProcess, demo: dict[str, str], callees: list[str]
) -> set[str]:
    def headers() -> dict[str, str]:
        return _java_style_headers(demo["api_key"], demo["api_secret"])

    with httpx.Client(base_url=proc.url, timeout=10) as client:
        up = client.post(
            "/voice/fileUpload",
            json={"fileName": f"peer{int(time.time() * 1000) % 10**6}.wav", "file": wav_b64()},
            headers=headers(),
        ).json()
        assert up["status"] == "0", up
        body = {"appId": demo["voice_app_id"], "callee": ",".join(callees), "fileId": up["data"]}
        sent = client.post("/voice/sendGroup", json=body, headers=headers()).json()
        assert sent["status"] == "0", sent
        voice_ids = {item["voiceId"] for item in sent["data"]}
        start, end = _today()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            query = {"current": 1, "size": 100, "params": {"strTime": start, "endTime": end}}
            page = client.post("/voice/recordGroupQuery", json=query, headers=headers()).json()
            assert page["status"] == "0", page
            if voice_ids <= {r["voiceId"] for r in page["data"]["records"]}:
                return voice_ids
            time.sleep(0.1)
    raise AssertionError("the group call did not finish on the sim voice line in 30 s")


def test_php_sample_record_group_query(
    server: tuple[SimgateProcess, dict[str, str]], tmp_path: Path
) -> None:
    """seeds/003's PHP sample, unchanged but for key, secret, URL and window (issue #8)."""
    need_peer("php-cli with php-curl", _php_has_curl(), "apt-get install php-cli php-curl")
    proc, demo = server
    voice_ids = _group_call_and_wait(proc, demo, ["91856321412", "8613800138000"])
    start, end = _today()
    payload: Any = _run_php_sample(
        VOICE_SAMPLE,
        {
            "your api key": demo["api_key"],
            "your api secret": demo["api_secret"],
            "https://api.itniotech.com": proc.url,
            "2022-01-01T00:00:00+08:00": start,
            "2022-01-31T00:00:00+08:00": end,
        },
        tmp_path,
    )
    assert payload["status"] == "0", payload
    data = payload["data"]
    assert (data["current"], data["size"], data["searchCount"]) == (1, 20, True)
    assert isinstance(data["total"], int)
    assert isinstance(data["pages"], int)
    mine = [r for r in data["records"] if r["voiceId"] in voice_ids]
    assert len(mine) == len(voice_ids)
    for record in mine:
        for key, kind in SEED_RECORD_TYPES.items():
            assert isinstance(record[key], kind), (key, record[key])
        assert record["terminationCode"] == "200"
        assert record["feedbackValue"] in set("0123456789")
        assert "currency" not in record  # the demo account is USD (spec §1.14)
