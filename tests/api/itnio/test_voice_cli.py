"""``simgate apps update --voice-batch/--no-voice-batch`` (spec §1.16, §7: the push form)."""

from __future__ import annotations

import re

from tests.support.cli import Cli, ok, row


def test_voice_batch_flag(cli: Cli) -> None:
    ok(cli("accounts", "create", "acme"))
    created = ok(cli("apps", "create", "acme", "--kind", "voice")).strip()
    match = re.fullmatch(r"app (\w{8}) \(voice\) created", created)
    assert match is not None
    app_id = match.group(1)
    out = ok(
        cli("apps", "update", app_id, "--voice-url", "https://93.184.216.34/v", "--voice-batch")
    )
    assert out.strip() == f"app {app_id} updated: voice_batch, voice_url"
    push = row(ok(cli("apps", "list")), app_id)[-1]
    assert push == "voice_batch=true voice_url=https://93.184.216.34/v"
    ok(cli("apps", "update", app_id, "--no-voice-batch"))
    assert row(ok(cli("apps", "list")), app_id)[-1] == "voice_url=https://93.184.216.34/v"
    ok(cli("apps", "update", app_id, "--voice-url", "https://93.184.216.34/w"))  # flag untouched
    assert row(ok(cli("apps", "list")), app_id)[-1] == "voice_url=https://93.184.216.34/w"
