"""First start: a demo account with an SMS app, a voice app, an API key, a gateway user and a
web console admin."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from simgate.domain.accounts import AppKind, GatewayRole
from simgate.errors import InvalidInput
from simgate.services.accounts import AccountService, random_token
from simgate.services.console_auth import ConsoleAuth
from simgate.store import Store

DEMO_ACCOUNT = "demo"


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    sms_app_id: str
    voice_app_id: str
    api_key: str
    api_secret: str
    gateway_username: str
    gateway_password: str
    # The web console's admin (issue 19); empty when no console service was given.
    console_username: str = ""
    console_password: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "sms_app_id": self.sms_app_id,
            "voice_app_id": self.voice_app_id,
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "gateway_username": self.gateway_username,
            "gateway_password": self.gateway_password,
            "console_username": self.console_username,
            "console_password": self.console_password,
        }


async def ensure_demo(
    store: Store,
    accounts: AccountService,
    data_dir: Path,
    balance: str,
    console: ConsoleAuth | None = None,
) -> DemoCredentials | None:
    """Create the demo account when the database has no account at all; None otherwise."""
    async with store.db.read() as conn:
        if await store.accounts.count_accounts(conn):
            return None
    try:
        account = await accounts.create_account(name=DEMO_ACCOUNT, balance=balance)
    except InvalidInput:  # another process starting at the same moment made it
        return None
    sms = await accounts.create_app(account.id, kind=AppKind.SMS, name="demo sms")
    voice = await accounts.create_app(account.id, kind=AppKind.VOICE, name="demo voice")
    key = await accounts.create_key(account.id)
    password = random_token(12)
    # The demo's one account is the operator's own: its user controls the ports too.
    user = await accounts.create_user(
        account.id, username="admin", password=password, role=GatewayRole.OPERATOR
    )
    creds = DemoCredentials(sms.app_id, voice.app_id, key.key, key.secret, user.username, password)
    if console is not None:  # the operator's console admin, every account
        admin, console_password = await console.create_user(username="admin")
        creds = replace(creds, console_username=admin.username, console_password=console_password)
    write_private_json(data_dir / "demo.json", creds.as_dict())
    return creds


def write_private_json(path: Path, data: dict[str, str]) -> None:
    """Write ``data`` readable by the owner only (mode 0600), replacing any old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
