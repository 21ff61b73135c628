"""``simgate console-users create|list|delete``."""

from __future__ import annotations

import re

from tests.support.cli import Cli, error, ok, row


def test_create_prints_a_generated_password_once(cli: Cli) -> None:
    out = ok(cli("console-users", "create", "ops"))
    found = re.search(r"^password: (\S{16})$", out, re.M)
    assert found is not None, out
    assert "admin, every account" in out
    assert found.group(1) not in ok(cli("console-users", "list"))


def test_create_with_password_role_and_account(cli: Cli) -> None:
    ok(cli("accounts", "create", "acme"))
    out = ok(
        cli("console-users", "create", "eve", "--password", "long enough", "--role", "viewer",
            "--account", "acme", "--timezone", "Europe/Berlin")
    )  # fmt: skip
    assert "password:" not in out
    assert row(ok(cli("console-users", "list")), "eve")[1:] == ["viewer", "1", "Europe/Berlin"]


def test_refusals_are_one_line(cli: Cli) -> None:
    error(cli("console-users", "create", "x", "--password", "short"), "at least 8")
    error(cli("console-users", "create", "x", "--account", "nobody"), "no such account")
    error(cli("console-users", "create", "x", "--timezone", "Mars/Base"), "unknown time zone")
    ok(cli("console-users", "create", "x"))
    error(cli("console-users", "create", "x"), "exists already")
    error(cli("console-users", "delete", "nobody"), "no such console user")


def test_delete(cli: Cli) -> None:
    ok(cli("console-users", "create", "gone"))
    ok(cli("console-users", "delete", "gone"))
    assert "gone" not in ok(cli("console-users", "list"))
