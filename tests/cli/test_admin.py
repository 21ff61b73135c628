"""The operator CLI in-process (typer's CliRunner), one fresh data directory per test."""

from __future__ import annotations

import getpass
import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simgate.cli import app
from simgate.store import database
from tests.support.cli import Cli, error, ok, row


def test_accounts(cli: Cli) -> None:
    assert (
        ok(cli("accounts", "create", "acme", "--balance", "5")).strip() == "account 1 acme created"
    )
    ok(cli("accounts", "create", "beta", "--currency", "EUR", "--timezone", "Asia/Shanghai"))
    out = ok(cli("accounts", "list"))
    assert row(out, "1") == ["1", "acme", "USD", "5", "0", "0", "UTC", ""]
    assert row(out, "2") == ["2", "beta", "EUR", "0", "0", "0", "Asia/Shanghai", ""]
    assert ok(cli("accounts", "topup", "acme", "2.5")).strip() == "acme: balance 7.5 gift 0"
    assert ok(cli("accounts", "topup", "1", "1", "--gift")).strip() == "acme: balance 7.5 gift 1"
    ok(cli("accounts", "credit", "acme", "3"))
    assert ok(cli("accounts", "lock", "acme")).strip() == "acme locked"
    assert row(ok(cli("accounts", "list")), "1") == [
        "1", "acme", "USD", "7.5", "1", "3", "UTC", "yes",
    ]  # fmt: skip
    assert ok(cli("accounts", "lock", "acme", "--unlock")).strip() == "acme unlocked"
    assert row(ok(cli("accounts", "list")), "1")[-1] == ""


def test_account_errors(cli: Cli) -> None:
    ok(cli("accounts", "create", "acme"))
    error(cli("accounts", "create", "acme"), "exists already")
    error(cli("accounts", "topup", "nobody", "5"), "no such account: nobody")
    error(cli("accounts", "topup", "acme", "five"), "not an amount: 'five'")
    error(cli("accounts", "topup", "acme", "NaN"), "not an amount")
    error(cli("accounts", "lock", "99"), "no such account: 99")
    # Past a BIGINT: no id of any account, not a driver's overflow error.
    error(cli("accounts", "lock", "9" * 30), "no such account: " + "9" * 30)
    error(cli("accounts", "create", "x", "--currency", "dollars"), "currency")
    error(cli("accounts", "create", "x", "--timezone", "Nowhere/City"), "time zone")


def test_negative_topup_is_refused_and_a_correction_has_a_reason(cli: Cli) -> None:
    ok(cli("accounts", "create", "acme", "--balance", "10", "--by", "alice"))
    error(cli("accounts", "topup", "acme", "-5"), "a top-up must be more than 0")
    error(cli("accounts", "topup", "acme", "0", "--gift"), "a top-up must be more than 0")
    assert row(ok(cli("accounts", "list")), "1")[3] == "10"
    error(cli("accounts", "correct", "acme", "-5", "--reason", ""), "needs a reason")
    missing = cli("accounts", "correct", "acme", "-5")
    assert missing.exit_code == 2  # --reason is required: a usage error
    out = ok(cli("accounts", "correct", "acme", "-2.5", "--reason", "double top-up", "--by", "bob"))
    assert out.strip() == "acme: balance 7.5 gift 0"
    ok(cli("accounts", "topup", "acme", "1", "--gift", "--by", "carol"))
    ok(cli("accounts", "topup", "acme", "3"))  # recorded as the OS user running simgate
    ledger = ok(cli("accounts", "ledger", "acme"))
    assert row(ledger, "1")[2:] == ["opening", "10", "10", "0", "alice", ""]
    assert row(ledger, "2")[2:] == ["correction", "-2.5", "7.5", "0", "bob", "double top-up"]
    assert row(ledger, "3")[2:] == ["gift", "1", "7.5", "1", "carol", ""]
    assert row(ledger, "4")[2:6] == ["topup", "3", "10.5", "1"]
    assert row(ledger, "4")[6] == getpass.getuser()
    assert "balance + gift now 11.5; rebuilt from the ledger, message charges and call" in ledger
    assert "differ" not in ledger
    error(cli("accounts", "ledger", "nobody"), "no such account")


def test_apps(cli: Cli) -> None:
    ok(cli("accounts", "create", "acme"))
    sms = re.fullmatch(r"app (\w{8}) \(sms\) created", ok(cli("apps", "create", "acme")).strip())
    assert sms is not None
    voice = ok(cli("apps", "create", "acme", "--kind", "voice", "--name", "calls"))
    assert "(voice) created" in voice
    app_id = sms.group(1)
    out = ok(cli("apps", "update", app_id, "--report-url", "https://93.184.216.34/r"))
    assert out.strip() == f"app {app_id} updated: report_url"
    listing = ok(cli("apps", "list", "--account", "acme"))
    assert row(listing, app_id) == [
        app_id,
        "1",
        "sms",
        "sms app",
        "report_url=https://93.184.216.34/r",
    ]
    ok(cli("apps", "update", app_id, "--report-url", ""))
    assert row(ok(cli("apps", "list")), app_id)[-1] == ""
    error(cli("apps", "update", "nosuchap", "--mo-url", "https://93.184.216.34/m"), "no such app")
    error(cli("apps", "create", "nobody"), "no such account")
    bad_kind = cli("apps", "create", "acme", "--kind", "fax")
    assert bad_kind.exit_code == 2  # a usage error, reported by typer


def test_keys(cli: Cli) -> None:
    ok(cli("accounts", "create", "acme"))
    out = ok(cli("keys", "create", "acme", "--allow-ip", "10.0.0.0/8", "--allow-ip", "1.2.3.4"))
    m = re.search(r"│ (\w{8}) +│ (\w{32}) +│ (\S+) +│", out)
    assert m is not None, out
    key = m.group(1)
    assert m.group(3) == "10.0.0.0/8,1.2.3.4/32"
    listing = ok(cli("keys", "list"))
    assert row(listing, key) == [key, "1", "10.0.0.0/8,1.2.3.4/32", ""]
    assert m.group(2) not in listing  # the secret is shown once, at creation
    assert ok(cli("keys", "revoke", key)).strip() == f"key {key} revoked"
    assert row(ok(cli("keys", "list", "--account", "acme")), key)[-1] == "yes"
    error(cli("keys", "revoke", "nokey123"), "no such key")
    error(cli("keys", "create", "acme", "--allow-ip", "300.1.1.1"), "not an IP address")


def test_users(cli: Cli) -> None:
    ok(cli("accounts", "create", "acme"))
    out = ok(cli("users", "create", "acme", "gw", "--password", "s3cret"))
    assert out.strip() == "gateway user gw created (account)"
    assert row(ok(cli("users", "list")), "gw") == ["gw", "1", "account"]
    error(cli("users", "create", "acme", "gw", "--password", "other"), "exists already")
    error(cli("users", "create", "acme", "x", "--password", "abc"), "password")
    error(cli("users", "create", "nobody", "y", "--password", "long enough"), "no such account")


def test_user_roles(cli: Cli) -> None:
    """Issue 14 item 1: a gateway user is an account user unless made an operator."""
    ok(cli("accounts", "create", "acme"))
    out = ok(cli("users", "create", "acme", "op", "--password", "s3cret", "--role", "operator"))
    assert out.strip() == "gateway user op created (operator)"
    ok(cli("users", "create", "acme", "gw", "--password", "s3cret"))
    assert row(ok(cli("users", "list")), "op")[-1] == "operator"
    assert ok(cli("users", "role", "gw", "operator")).strip() == "gateway user gw is now operator"
    assert row(ok(cli("users", "list")), "gw")[-1] == "operator"
    ok(cli("users", "role", "op", "account"))
    assert row(ok(cli("users", "list")), "op")[-1] == "account"
    error(cli("users", "role", "gw", "root"), "unknown role 'root'")
    error(cli("users", "role", "nobody", "operator"), "no such gateway user: nobody")
    error(cli("users", "create", "acme", "x", "--password", "s3cret", "--role", "admin"), "role")


def test_rates(cli: Cli) -> None:
    out = ok(cli("rates", "set", "86", "0.02"))
    assert out.strip() == "sms rate for prefix '86': 0.02 USD"
    ok(cli("rates", "set", "", "0.05"))
    ok(cli("rates", "set", "86", "0.03"))  # replaces
    ok(cli("rates", "set", "1", "0.1", "--kind", "voice", "--bill-period", "60+60"))
    listing = ok(cli("rates", "list"))
    assert row(listing, "sms")[1:] == ["*", "0.05", "USD", ""]
    assert ["sms", "86", "0.03", "USD", ""] in [
        [c.strip() for c in line.strip().strip("│").split("│")] for line in listing.splitlines()
    ]
    assert row(listing, "voice") == ["voice", "1", "0.1", "USD", "60+60"]
    error(cli("rates", "set", "86", "free"), "not an amount")
    error(cli("rates", "set", "+86", "1"), "prefix must be digits")
    error(cli("rates", "set", "86", "1", "--kind", "fax"), "sms or voice")


def test_lines_list(cli: Cli) -> None:
    out = ok(cli("lines", "list"))
    cells = row(out, "sim")
    assert cells[1:3] == ["0", "gsm-1.1"]
    assert cells[-1] == "up"
    assert out.count("gsm-1.") == 8


def test_send_and_messages(cli: Cli) -> None:
    ok(cli("accounts", "create", "demo", "--balance", "1"))
    out = ok(cli("send", "--to", "+86 138 0013 8000", "--to", "12", "--text", "x" * 161))
    lines = out.strip().splitlines()
    m = re.fullmatch(r"(\d{19}) → 8613800138000 \(2 parts\)", lines[0])
    assert m is not None, out
    assert lines[1] == "invalid number: 12"
    mid = m.group(1)
    listing = ok(cli("messages", "list"))
    assert row(listing, mid)[1:5] == ["8613800138000", "QUEUED", "2", "sim"]
    assert mid in ok(cli("messages", "list", "--state", "queued", "--account", "demo"))
    assert mid not in ok(cli("messages", "list", "--state", "DELIVERED"))
    assert row(ok(cli("accounts", "list")), "1")[3] == "0.98"
    error(cli("messages", "list", "--state", "lost"), "unknown state 'lost'")
    error(cli("messages", "list", "--limit", "-1"), "--limit")
    error(cli("messages", "list", "--account", "nobody"), "no such account")
    error(cli("send", "--to", "8613800138000", "--text", "hi", "--account", "nobody"), "no such")
    error(cli("send", "--to", "8613800138000", "--text", ""), "content is empty")
    error(cli("send", "--to", "8613800138000", "--text", "hi", "--repeat", "0"), "--repeat")
    ok(cli("accounts", "lock", "demo"))
    error(cli("send", "--to", "8613800138000", "--text", "hi"), "locked")


def test_messages_resend_unknown(cli: Cli, tmp_path: Path) -> None:
    ok(cli("accounts", "create", "demo", "--balance", "1"))
    out = ok(cli("send", "--to", "8613800138000", "--to", "8613800138001", "--text", "hi"))
    out += ok(cli("send", "--to", "8613800138002", "--text", "hi"))
    ids = re.findall(r"^(\d{19}) ", out, re.MULTILINE)
    assert len(ids) == 3
    # The worker died mid-submit and the reaper marked two UNKNOWN (one yesterday), as
    # simgate run leaves them; the third is still queued.
    db = sqlite3.connect(tmp_path / "data" / "simgate.db", isolation_level=None)
    try:
        db.execute(
            "UPDATE messages SET state = 8, unknown_ms = 1764720000000 WHERE id = ?", [ids[0]]
        )
        db.execute(
            "UPDATE messages SET state = 8, unknown_ms = 1764806400000 WHERE id = ?", [ids[1]]
        )
    finally:
        db.close()
    dry = ok(cli("messages", "resend", "--state", "UNKNOWN", "--dry-run")).strip().splitlines()
    assert dry == ["would resend 2 UNKNOWN messages (dry run, nothing changed)", *ids[:2]]
    assert row(ok(cli("messages", "list")), ids[0])[2] == "UNKNOWN"
    since = ok(
        cli("messages", "resend", "--state", "unknown", "--since", "2025-12-03T12:00", "--dry-run")
    )
    assert since.strip().splitlines()[1:] == [ids[1]]
    assert ids[1] in ok(
        cli("messages", "resend", "--state", "UNKNOWN", "--since", "1764806400", "--dry-run")
    )
    none = ok(cli("messages", "resend", "--state", "UNKNOWN", "--line", "smpp1", "--dry-run"))
    assert none.strip() == "would resend 0 UNKNOWN messages (dry run, nothing changed)"
    out = ok(cli("messages", "resend", "--state", "UNKNOWN", "--line", "sim"))
    assert out.strip() == "resent 2 UNKNOWN messages: QUEUED again, due now"
    listing = ok(cli("messages", "list"))
    assert [row(listing, mid)[2] for mid in ids] == ["QUEUED", "QUEUED", "QUEUED"]
    again = ok(cli("messages", "resend", "--state", "UNKNOWN"))
    assert again.strip() == "resent 0 UNKNOWN messages: QUEUED again, due now"
    error(cli("messages", "resend", "--state", "SENT"), "only UNKNOWN messages can be resent")
    error(cli("messages", "resend", "--state", "UNKNOWN", "--since", "yesterday"), "--since")
    assert cli("messages", "resend").exit_code == 2  # --state is required


def test_send_insufficient_balance(cli: Cli) -> None:
    ok(cli("accounts", "create", "demo", "--balance", "0"))
    error(cli("send", "--to", "8613800138000", "--text", "hi"), "insufficient balance")
    assert "QUEUED" not in ok(cli("messages", "list"))


def test_sim_inbound(cli: Cli) -> None:
    error(
        cli("sim", "inbound", "--port", "1", "--from", "8613800138000", "--text", "hi"),
        "no account",
    )
    ok(cli("accounts", "create", "acme"))
    out = ok(cli("sim", "inbound", "--port", "1", "--from", "8613800138000", "--text", "hi"))
    assert re.fullmatch(r"incoming SMS \d{19} stored on sim port 1", out.strip()), out
    error(cli("sim", "inbound", "--port", "99", "--from", "1", "--text", "x"), "ports 0..7")
    error(cli("sim", "inbound", "--port", "-1", "--from", "1", "--text", "x"), "ports 0..7")
    error(
        cli("sim", "inbound", "--port", "0", "--from", "1", "--text", "x", "--line", "gsm"),
        "no line named 'gsm'",
    )


def test_unreachable_postgresql_is_one_line(cli: Cli) -> None:
    url = "postgresql+asyncpg://simgate:pw@127.0.0.1:1/simgate"
    result = cli("accounts", "list", env={"SIMGATE_DATABASE_URL": url})
    error(result, "cannot open database")
    assert "pw" not in result.stderr  # the password is not printed


def test_unusable_data_dir_is_one_line(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    runner = CliRunner()
    result = runner.invoke(app, ["--data-dir", str(blocker / "sub"), "accounts", "list"])
    error(result, "cannot use data_dir")


def test_bad_config_file_is_one_line(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[http\n")
    runner = CliRunner()
    error(runner.invoke(app, ["--config", str(bad), "accounts", "list"]), "not valid TOML")
    error(
        runner.invoke(app, ["--config", str(tmp_path / "none.toml"), "lines", "list"]), "not found"
    )
    error(cli("lines", "list", env={"SIMGATE_HTTP__PORT": "abc"}), "http.port")


def test_locked_sqlite_database_is_one_line(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(cli("accounts", "create", "acme"))
    monkeypatch.setattr(database, "STARTUP_LOCK_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(tmp_path / "data" / "simgate.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        error(cli("accounts", "list"), "is locked by another process")
    finally:
        holder.close()
    assert "acme" in ok(cli("accounts", "list"))
