"""``simgate gateway``: the Dinstar push target, stored through services/dinstar.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from simgate.cli import app as cli_app
from tests.support.cli import Cli, error, ok


def test_cli_stores_the_push_target(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"SIMGATE_DATA_DIR": str(tmp_path / "data"), "SIMGATE_DEMO__CREATE": "false"}
    ok = runner.invoke(
        cli_app,
        ["gateway", "push", "--url", "https://93.184.216.34/gw", "--types", "sms,register"],
        env=env,
    )
    assert ok.exit_code == 0, ok.output
    shown = runner.invoke(cli_app, ["gateway", "show"], env=env)
    assert "https://93.184.216.34/gw" in shown.output
    assert "sms, register" in shown.output
    bad = runner.invoke(cli_app, ["gateway", "push", "--url", "ftp://x", "--types", "sms"], env=env)
    assert bad.exit_code == 1
    wrong = runner.invoke(
        cli_app, ["gateway", "push", "--url", "http://x", "--types", "cdr"], env=env
    )
    assert wrong.exit_code == 1
    off = runner.invoke(cli_app, ["gateway", "push", "--url", ""], env=env)
    assert off.exit_code == 0
    assert "no push target" in runner.invoke(cli_app, ["gateway", "show"], env=env).output


# ---- issue 14 items 12 and 17 ----------------------------------------------------------
HOSTILE_URLS = [
    "http://hooks.example/a\r\nX-Injected: 1",  # CR/LF: header injection downstream
    "http://hooks.example/a\nb",
    "http://user:pass@93.184.216.34/gw",  # userinfo: credentials in logs, host confusion
    "http://93.184.216.34@127.0.0.1/gw",
    "http://127.0.0.1:8080/gw",  # loopback: SSRF
    "http://169.254.169.254/latest/meta-data",  # cloud metadata
    "http://[::1]/gw",
    "http://0x7f000001/gw",  # a numeric spelling of loopback
    "http://93.184.216.34/a b",
    "http://93.184.216.34:0/gw",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_gateway_push_refuses_the_urls_other_push_settings_refuse(cli: Cli, url: str) -> None:
    """Issue 14 item 12: the same validator as every other push URL, at configuration time."""
    result = cli("gateway", "push", "--url", url, "--types", "sms")
    assert result.exit_code == 1, (url, result.stdout, result.stderr)
    assert "push URL" in result.stderr or "push target" in result.stderr
    assert "no push target stored" in ok(cli("gateway", "show"))


def test_the_cli_prints_bracketed_text_as_it_is(cli: Cli) -> None:
    """Issue 14 item 17: rich markup must not eat ``[...]`` in what the CLI prints."""
    url = "https://[2606:2800:220:1:248:1893:25c8:1946]:18080/[bold]gw[/bold]"
    out = ok(cli("gateway", "push", "--url", url, "--types", "sms"))
    assert url in out.replace("\n", "")
    assert url in ok(cli("gateway", "show")).replace("\n", "")
    name = "[red]acme[/red]"
    assert ok(cli("accounts", "create", name)).strip() == f"account 1 {name} created"
    assert name in ok(cli("accounts", "list"))
    error(cli("accounts", "topup", "[b]nobody[/b]", "5"), "no such account: [b]nobody[/b]")
