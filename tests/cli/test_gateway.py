"""``simgate gateway``: the Dinstar push target, stored through services/dinstar.py."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from simgate.cli import app as cli_app


def test_cli_stores_the_push_target(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"SIMGATE_DATA_DIR": str(tmp_path / "data"), "SIMGATE_DEMO__CREATE": "false"}
    ok = runner.invoke(
        cli_app,
        ["gateway", "push", "--url", "https://hooks.example/gw", "--types", "sms,register"],
        env=env,
    )
    assert ok.exit_code == 0, ok.output
    shown = runner.invoke(cli_app, ["gateway", "show"], env=env)
    assert "https://hooks.example/gw" in shown.output
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
