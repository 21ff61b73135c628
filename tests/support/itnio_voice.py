"""itniotech voice requests and samples shared by the voice API, flow and file tests
(spec §1.11-§1.16)."""

from __future__ import annotations

import dataclasses
import shutil
from typing import Any

from simgate.domain.accounts import App
from tests.api.itnio.conftest import Itnio, add_voice_app, wav_b64
from tests.conftest import need_peer

# spec §1.11 (request fields of the page; the Chinese sample's accent "91").
SEND_CODE = {
    "callee": "8613800138000",
    "displayNum": "1008122211",
    "language": "EN",
    "text": "Your verification code is 1 2 3 4",
    "speakingRate": 1,
    "ssmlGender": 2,
    "accent": "91",
    "loopCount": 2,
    "calledInfo": "calledInfo",
    "recallCount": 1,
    "recallInterval": 5,
    "maxDuration": 60,
    "maxRingingTime": 60,
}
# seed 003 (recordGroupQuery), the sample record of its response.
SEED_RECORD: dict[str, Any] = {
    "voiceId": "2203031113381000002",
    "callee": "91856321412",
    "displayNum": "1008122211",
    "code": "Afghanistan(Kandahar)",
    "submitTime": "2022-01-18T14:42:40+08:00",
    "callTime": "2022-01-18T14:45:42+08:00",
    "ringingTime": "2022-01-18T14:42:47+08:00",
    "answerTime": "2022-01-18T14:42:50+08:00",
    "hangupTime": "2022-01-18T14:42:55+08:00",
    "callDuration": 5,
    "chargedDuration": 5,
    "terminationCode": "200",
    "terminationReason": "success",
    "cost": "2",
    "billPeriod": "20+20",
    "rate": "1.2",
    "baseCost": "1",
    "voiceFileId": "12022022570cc2484c59d4f8b9745d34226285b1e.mp3",
    "feedbackValue": "1",
    "calledInfo": "calledInfo",
    "settleRate": "1.2793",
    "quoteExchange": "0.938",
    "currency": "EUR",
    "settlePay": "1.2793",
}


# The default FakeClock starts at 2026-01-01T00:00:00Z.
TODAY = {"strTime": "2025-12-31T00:00:00+08:00", "endTime": "2026-01-02T00:00:00+08:00"}


def need_espeak() -> None:
    need_peer("espeak-ng", shutil.which("espeak-ng") is not None)


async def upload(env: Itnio, name: str = "hello.wav", b64: str | None = None) -> dict[str, Any]:
    body = {"fileName": name, "file": wav_b64() if b64 is None else b64}
    return await env.post("/voice/fileUpload", body)  # type: ignore[no-any-return]


async def send_group(env: Itnio, app: App, callees: str, **extra: Any) -> dict[str, Any]:
    if "fileId" not in extra:
        up = await upload(env, f"f{env.clock.now_ms() % 10**6}.wav")
        assert up["status"] == "0", up
        extra["fileId"] = up["data"]
    body = {"appId": app.app_id, "callee": callees, **extra}
    return await env.post("/voice/sendGroup", body)  # type: ignore[no-any-return]


async def other_account(env: Itnio, *, currency: str = "USD", balance: str = "100") -> Itnio:
    """The same server seen by a second account (own key, own voice app as ``app``)."""
    accounts = env.services.accounts
    acc = await accounts.create_account(
        name=f"other-{currency}-{balance}", balance=balance, currency=currency, timezone="UTC"
    )
    key = await accounts.create_key(acc.id)
    return dataclasses.replace(env, account=acc, key=key, app=await add_voice_app(env, acc.id))
