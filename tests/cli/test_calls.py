"""``simgate calls list``: the newest voice calls for operators."""

from __future__ import annotations

import asyncio
from pathlib import Path

from simgate.domain.accounts import AppKind
from simgate.domain.calls import CallOptions
from simgate.runtime import Runtime
from simgate.settings import load_settings
from tests.api.itnio.conftest import wav_b64
from tests.support.cli import Cli, error, ok, row


async def _group_call(data: Path, account: str, callees: list[str]) -> list[int]:
    rt = Runtime(load_settings(None, overrides={"data_dir": str(data)}), role="admin")
    services = await rt.open()
    try:
        acc = await services.accounts.get_account(account)
        app = await services.accounts.create_app(acc.id, kind=AppKind.VOICE)
        vf = await services.voice.upload_file(account=acc, file_name="a.wav", file_b64=wav_b64())
        items = await services.voice.send_group(
            account=acc, app=app, callees=callees, file_id=vf.file_id, options=CallOptions()
        )
        return [i.voice_id for i in items if i.voice_id is not None]
    finally:
        await rt.close()


def test_calls_list_newest_first_and_by_account(cli: Cli, tmp_path: Path) -> None:
    ok(cli("accounts", "create", "acme", "--balance", "5"))
    ok(cli("accounts", "create", "beta", "--balance", "5"))
    data = tmp_path / "data"
    acme = asyncio.run(_group_call(data, "acme", ["8613800000001", "8613800000002"]))
    beta = asyncio.run(_group_call(data, "beta", ["8613800000003"]))
    out = ok(cli("calls", "list"))
    assert row(out, str(acme[0]))[1:5] == ["8613800000001", "QUEUED", "", ""]
    assert row(out, str(beta[0]))[1] == "8613800000003"
    listed = [line for line in out.splitlines() if any(str(i) in line for i in acme + beta)]
    assert str(beta[0]) in listed[0]  # newest first
    only_acme = ok(cli("calls", "list", "--account", "acme", "--limit", "1"))
    assert str(acme[1]) in only_acme
    assert str(acme[0]) not in only_acme
    assert str(beta[0]) not in only_acme


def test_calls_list_refuses_bad_options(cli: Cli) -> None:
    ok(cli("accounts", "create", "acme"))
    error(cli("calls", "list", "--limit", "0"), "at least 1")
    error(cli("calls", "list", "--account", "nobody"), "nobody")
