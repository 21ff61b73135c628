"""A dialect's push format through the whole engine: an itniotech delivery report reaches the
customer's URL, signed, after the message is delivered on the sim line (issue #3)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from simgate.cli.admin import _update_app
from simgate.domain.accounts import AppKind
from simgate.errors import InvalidInput
from simgate.push.signing import verify
from simgate.runtime import Runtime
from simgate.services.sending import Recipient, SendRequest
from simgate.testing.clock import FakeClock
from simgate.testing.push_receiver import PushReceiver
from tests.conftest import make_settings
from tests.push.conftest import PUSH_TEST_SETTINGS


async def test_itnio_delivery_report_is_pushed_and_signed(sqlite_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    rt = Runtime(
        make_settings(tmp_path, sqlite_url, push=PUSH_TEST_SETTINGS), role="run", clock=clock
    )
    sv = await rt.open()
    receiver = PushReceiver()
    await receiver.start()
    try:
        account = await sv.accounts.create_account(name="acme", balance="1")
        app = await sv.accounts.create_app(account.id, kind=AppKind.SMS)
        # The operator path: URLs are checked by the SSRF guard before they are stored.
        with pytest.raises(InvalidInput):
            await _update_app(sv, app.app_id, {"report_url": "http://169.254.169.254/x"})
        secret = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM="
        app = await _update_app(
            sv, app.app_id, {"report_url": receiver.url + "/dlr", "signing_secret": secret}
        )
        out = await sv.sending.send(
            SendRequest(
                account=account,
                dialect="itnio",
                text="hello",
                recipients=[Recipient("8613800138000", "order-1")],
                app=app,
            )
        )
        (accepted,) = out.accepted
        await rt.start_worker()
        for _ in range(400):
            if receiver.requests:
                break
            await clock.advance(0.1)
            await asyncio.sleep(0.005)
        (req,) = receiver.requests
        body = json.loads(req.body)
        assert body["msgid"] == str(accepted.message_id)
        assert body["orderId"] == "order-1"
        assert body["status"] == 0
        assert req.target == "/dlr"
        assert verify(
            secret=secret,
            msg_id=req.headers["webhook-id"],
            timestamp=int(req.headers["webhook-timestamp"]),
            body=req.body,
            header=req.headers["webhook-signature"],
        )
        for _ in range(100):
            rows = await sv.pushes.list(states=["delivered"])
            if rows:
                break
            await clock.advance(0.1)
            await asyncio.sleep(0.005)
        (push,) = rows
        assert push.kind == "itnio.report"
        assert push.uid == req.headers["webhook-id"]
    finally:
        await rt.close()
        await receiver.stop()
