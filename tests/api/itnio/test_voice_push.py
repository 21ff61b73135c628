"""pushVoiceReport requests (spec §1.16, §7): the single and the batch form, pure."""

from __future__ import annotations

import dataclasses
import json

from simgate.api.dialects.itnio.voice_push import plan_for, voice_batch_push, voice_push
from simgate.api.dialects.itnio.voice_render import push_item
from simgate.domain.accounts import App, AppKind
from simgate.domain.calls import CallState
from tests.support.itnio_calls import SEED_CALL, VOICE_APP


def test_single_push_request() -> None:
    push = voice_push(SEED_CALL, VOICE_APP)
    assert (push.request.method, push.request.url, push.order_key, push.kind) == (
        "POST",
        "https://c.example/v",
        f"call:{SEED_CALL.id}",
        "itnio.voice",
    )
    assert push.request.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert json.loads(push.request.body or b"") == push_item(SEED_CALL)
    assert push.signing_secret is None
    signed = dataclasses.replace(VOICE_APP, push={**VOICE_APP.push, "signing_secret": "whsec-1"})
    assert voice_push(SEED_CALL, signed).signing_secret == "whsec-1"


def test_batch_push_request() -> None:
    second = dataclasses.replace(SEED_CALL, id=SEED_CALL.id + 1, callee="91856321413")
    push = voice_batch_push([second, SEED_CALL], VOICE_APP)
    body = json.loads(push.request.body or b"")
    assert list(body) == ["array"]
    assert [i["voiceId"] for i in body["array"]] == [str(SEED_CALL.id), str(second.id)]
    assert push.order_key == f"call:{SEED_CALL.id}"


def _app(pk: int, push: dict[str, str]) -> App:
    return App(pk, f"app{pk:05d}", 1, AppKind.VOICE, "voice", push)


def test_plan_single_form_by_default_and_batch_when_configured() -> None:
    single = _app(1, {"voice_url": "https://a.example/v"})
    batch = _app(2, {"voice_url": "https://b.example/v", "voice_batch": "true"})
    silent = _app(3, {})
    calls = [
        dataclasses.replace(SEED_CALL, id=SEED_CALL.id + n, app_id=pk)
        for n, pk in enumerate([1, 2, 1, 2, 3, 2])
    ]
    pushes = plan_for(calls, {1: single, 2: batch, 3: silent})
    urls = [p.request.url for p in pushes]
    assert urls.count("https://a.example/v") == 2  # one per call
    assert urls.count("https://b.example/v") == 1  # one per app and event batch
    (b,) = [p for p in pushes if p.request.url == "https://b.example/v"]
    assert len(json.loads(b.request.body or b"")["array"]) == 3


def test_plan_skips_unfinished_calls_and_unknown_apps() -> None:
    app = _app(1, {"voice_url": "https://a.example/v"})
    calling = dataclasses.replace(SEED_CALL, app_id=1, state=CallState.CALLING)
    orphan = dataclasses.replace(SEED_CALL, app_id=9)
    assert plan_for([calling, orphan], {1: app, 9: None}) == []
    batch_app = dataclasses.replace(app, push={**app.push, "voice_batch": "true"})
    assert plan_for([calling], {1: batch_app}) == []  # no empty {"array": []}
