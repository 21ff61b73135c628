"""pushVoiceReport of the itniotech dialect (spec §1.16, §7).

Pure: the itnio push format (push.py) hands :func:`plan_for` the calls that finished in one
transaction (``CallFinished`` events) with their apps. The URL is the voice app's
``push["voice_url"]``. §7: the single-object form by default, one POST per call; an app with
``push["voice_batch"] == "true"`` (``simgate apps update --voice-batch``) gets the batch form
instead, ``{"array": [...]}`` with every call of the app that finished in this transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from simgate.api.dialects.itnio.voice_render import push_item
from simgate.domain.accounts import App, AppKind
from simgate.domain.calls import CallRecord, CallState
from simgate.push.base import PlannedPush, PushRequest

HEADERS = {"Content-Type": "application/json;charset=UTF-8"}
KIND = "itnio.voice"


def batched(app: App) -> bool:
    return app.push.get("voice_batch") == "true"


def _planned(app: App, body: dict[str, Any], first_call: int) -> PlannedPush:
    return PlannedPush(
        request=PushRequest("POST", app.push["voice_url"], dict(HEADERS), orjson.dumps(body)),
        # A call finishes once; the key keeps a re-planned result behind an earlier one.
        order_key=f"call:{first_call}",
        # Opt-in Standard Webhooks signature, as for the SMS pushes.
        signing_secret=app.push.get("signing_secret") or None,
        kind=KIND,
    )


def voice_push(r: CallRecord, app: App) -> PlannedPush:
    """The single form: one JSON object per call."""
    return _planned(app, push_item(r), r.id)


def voice_batch_push(records: Sequence[CallRecord], app: App) -> PlannedPush:
    """The batch form: ``{"array": [...]}`` (spec §1.16, pushVoiceReportBatch)."""
    assert records, "a batch push needs at least one call"
    ordered = sorted(records, key=lambda r: r.id)
    return _planned(app, {"array": [push_item(r) for r in ordered]}, ordered[0].id)


def plan_for(records: Sequence[CallRecord], apps: Mapping[int, App | None]) -> list[PlannedPush]:
    """Pure: the pushes owed for finished calls, given their apps (by primary key)."""
    per_app: dict[int, list[CallRecord]] = {}
    for r in sorted(records, key=lambda r: r.id):
        app = apps.get(r.app_id)
        if r.state is not CallState.DONE or app is None or app.kind is not AppKind.VOICE:
            continue
        if app.push.get("voice_url"):
            per_app.setdefault(app.id, []).append(r)
    out: list[PlannedPush] = []
    for app_pk, calls in per_app.items():
        app = apps[app_pk]
        assert app is not None
        if batched(app):
            out.append(voice_batch_push(calls, app))
        else:
            out.extend(voice_push(r, app) for r in calls)
    return out
