"""``simgate smpp-users create|list``: SMPP accounts of a simgate account."""

from __future__ import annotations

from tests.support.cli import Cli, error, ok


def test_create_and_list(cli: Cli) -> None:
    ok(cli("accounts", "create", "acme", "--balance", "5"))
    made = ok(
        cli(
            "smpp-users", "create", "acme", "--system-id", "esme1", "--allow", "10.0.0.0/8",
            "--max-binds", "2", "--tps", "50",
        )
    )  # fmt: skip
    assert "esme1" in made
    assert "password:" in made
    given = ok(cli("smpp-users", "create", "acme", "--system-id", "esme2", "--password", "pw"))
    assert "password:" not in given
    listing = ok(cli("smpp-users", "list"))
    assert "esme1" in listing
    assert "10.0.0.0/8" in listing
    assert "50" in listing
    assert "esme2" in listing
    assert "any" in listing
    error(cli("smpp-users", "create", "acme", "--system-id", "esme1", "--password", "x"), "exists")
    error(cli("smpp-users", "create", "acme", "--system-id", "e3", "--allow", "nope"), "CIDR")
