"""BUKA's own layout, driven the way the official BUKA Java SDK drives it (spec §1.1,
"Amendments"): one base URL ending in ``/v3/`` and the SDK's relative paths (``sendSms``,
``sendSms/batch``, ``getReport``, ``getSentRcd``, ``getBalance``, ``recordMo``,
``voice/...``) appended to it by plain concatenation; GET query strings concatenated unencoded;
POST bodies written by the SDK's own JSON writer (unset fields as ``null``, ``/`` escaped);
the SDK's headers on every call. The SDK turns any HTTP status but 200 into status "999".
"""

from __future__ import annotations

import json
from typing import Any

from simgate.api.dialects.itnio.auth import sign
from simgate.domain.messages import State
from tests.api.itnio.conftest import Itnio, add_voice_app, wav_b64
from tests.support.itnio_voice import TODAY

BASE = "http://t/v3/"  # the SDK's default base, https://api.onbuka.com/v3/, on the test host
DAY = {"startTime": "2026-01-01T00:00:00+08:00", "endTime": "2026-01-01T23:59:59+08:00"}


class BukaSdk:
    """The SDK's HTTP habits: base + path by concatenation, its headers, its JSON."""

    def __init__(self, env: Itnio, base: str = BASE) -> None:
        self.env = env
        self.base = base

    def _headers(self) -> dict[str, str]:
        ts = str(self.env.clock.now_ms() // 1000)
        return {
            "accept": "*/*",
            "connection": "Keep-Alive",
            "user-agent": "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)",
            "Content-Type": "application/json;charset=utf-8",
            "Sign": sign(self.env.key.key, self.env.key.secret, ts),
            "Timestamp": ts,
            "Api-Key": self.env.key.key,
            "origin": "java-sdk",
        }

    async def _call(self, method: str, url: str, body: bytes | None = None) -> dict[str, Any]:
        r = await self.env.client.request(method, url, headers=self._headers(), content=body)
        # The SDK reads the body only on HTTP 200; anything else becomes its "999".
        assert r.status_code == 200, (url, r.status_code, r.text)
        data = r.json()
        assert isinstance(data["status"], str)
        return data  # type: ignore[no-any-return]

    async def get(self, path: str, query: str = "") -> dict[str, Any]:
        return await self._call("GET", self.base + path + query)

    async def post(self, path: str, dto: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", self.base + path, sdk_json(dto))


def sdk_json(dto: dict[str, Any]) -> bytes:
    """As the SDK's JsonUtil writes a DTO: every field, unset ones as null, ``/`` as ``\\/``."""
    return json.dumps(dto, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/").encode()


async def test_sms_and_account_calls_on_the_buka_base(itnio: Itnio) -> None:
    sdk = BukaSdk(itnio)
    app_id = itnio.app.app_id
    sent = await sdk.post(
        "sendSms",
        {"appId": app_id, "numbers": "91856321413", "content": "a/b", "senderId": None},
    )
    assert (sent["status"], sent["success"], sent["fail"]) == ("0", "1", "0"), sent
    mid = sent["array"][0]["msgId"]
    async with itnio.rt.store.db.read() as conn:
        (m,) = await itnio.rt.store.messages.get(conn, [int(mid)])
    assert (m.recipient, m.text, m.state) == ("91856321413", "a/b", State.QUEUED)

    batch = await sdk.post(
        "sendSms/batch",
        {
            "appId": app_id,
            "array": [
                {"numbers": "8613800138000", "content": "one", "senderId": None, "orderId": "o1"},
                {"numbers": "8613800138001", "content": "two", "senderId": None, "orderId": None},
            ],
        },
    )
    assert (batch["status"], batch["success"]) == ("0", "2"), batch

    report = await sdk.get("getReport", f"?appId={app_id}&msgIds={mid}")
    assert (report["status"], report["nofound"], report["array"][0]["msgId"]) == ("0", "0", mid)

    # ReportTimeDTO.toString: the "+08:00" goes out unencoded.
    rcd = await sdk.get(
        "getSentRcd",
        f"?appId={app_id}&startTime={DAY['startTime']}&endTime={DAY['endTime']}&startIndex=0",
    )
    assert rcd["status"] == "0", rcd

    balance = await sdk.get("getBalance")
    assert (balance["status"], balance["credit"]) == ("0", "0"), balance

    mo = await sdk.post(
        "recordMo",
        {
            "appId": app_id,
            "current": 1,
            "size": 10,
            "params": {"strTime": DAY["startTime"], "endTime": DAY["endTime"]},
        },
    )
    assert (mo["status"], mo["data"]["total"]) == ("0", 0), mo


async def test_the_other_layouts_still_answer(itnio: Itnio) -> None:
    """The itniotech root layout and the ``/v3/sms/...`` clone layout stay served (§1.1)."""
    for base in ("http://t/sms/", "http://t/v3/sms/"):
        assert (await BukaSdk(itnio, base).get("getBalance"))["status"] == "0"


async def test_voice_calls_on_the_buka_base(itnio: Itnio) -> None:
    """The SDK's voice paths (``voice/...`` on the same base), its DTOs with null fields."""
    sdk = BukaSdk(itnio)
    app = await add_voice_app(itnio)
    up = await sdk.post("voice/fileUpload", {"fileName": "hello.wav", "file": wav_b64()})
    assert up["status"] == "0", up
    files = await sdk.post("voice/fileQuery", {"current": 1, "size": 25, "params": None})
    assert [f["fileId"] for f in files["data"]["records"]] == [up["data"]]
    group = await sdk.post(
        "voice/sendGroup",
        {
            "callee": "8613800138000",
            "displayNum": None,
            "fileId": up["data"],
            "appId": app.app_id,
            "maxDuration": None,
            "loopCount": None,
        },
    )
    assert group["status"] == "0", group
    voice_id = group["data"][0]["voiceId"]
    # VoiceSdkClient.recordGroup: "voice/recordGroup/" + voiceId.
    record = await sdk.get(f"voice/recordGroup/{voice_id}")
    assert (record["status"], record["data"]["voiceId"]) == ("0", voice_id)
    query = await sdk.post("voice/recordGroupQuery", {"current": 1, "size": 20, "params": TODAY})
    assert query["status"] == "0", query  # records list finished calls only
