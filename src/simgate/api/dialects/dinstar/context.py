"""What every endpoint receives: the gateway (settings, ports, services) and the call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from simgate.api.dialects.dinstar.auth import Authenticator
from simgate.api.dialects.dinstar.config import DinstarSettings, load
from simgate.api.dialects.dinstar.ports import PortMap
from simgate.domain.accounts import Account, GatewayUser
from simgate.services.container import Services
from simgate.services.dinstar import DinstarService


@dataclass
class Gateway:
    services: Services
    cfg: DinstarSettings
    ports: PortMap
    svc: DinstarService
    auth: Authenticator
    _accounts: dict[int, tuple[Account, int]] = field(default_factory=dict)

    async def account(self, account_id: int) -> Account:
        """The caller's account, read at most once a second per process: a lock or a new
        time zone takes effect within ACCOUNT_TTL_MS; balances are checked when charging."""
        now = self.services.clock.now_ms()
        hit = self._accounts.get(account_id)
        if hit is not None and now - hit[1] < ACCOUNT_TTL_MS:
            return hit[0]
        account = await self.services.accounts.get_account(account_id)
        if len(self._accounts) > 10_000:
            self._accounts.clear()
        self._accounts[account_id] = (account, now)
        return account


@dataclass(frozen=True, slots=True)
class Call:
    user: GatewayUser
    account: Account
    params: Mapping[str, Any]


ACCOUNT_TTL_MS = 1_000

Handler = Callable[[Gateway, Call], Awaitable[tuple[int, dict[str, Any]]]]


def build_gateway(services: Services) -> Gateway:
    cfg = load(services.settings.dinstar)
    svc = services.dinstar
    auth = Authenticator(
        accounts=services.accounts, clock=services.clock, cfg=cfg, secret=svc.nonce_secret
    )
    return Gateway(services, cfg, PortMap(services.lines, cfg.lines), svc, auth)
