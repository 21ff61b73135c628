"""Tables on an 80-column terminal show every id whole (issue 19: "2612031…" before)."""

from __future__ import annotations

import re

import pytest

from simgate.cli import common
from tests.support.cli import Cli, ok


def test_message_ids_stay_whole_on_80_columns(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    ok(cli("accounts", "create", "demo", "--balance", "1"))
    sent = ok(cli("send", "--to", "+86 138 0013 8000", "--text", "hello"))
    found = re.match(r"(\d{19}) ", sent)
    assert found is not None, sent
    monkeypatch.setattr(common.console, "width", 80)
    listing = ok(cli("messages", "list"))
    assert found.group(1) in listing, listing
    assert "…" not in listing
    assert max(len(line) for line in listing.splitlines()) <= 80
