"""What every endpoint receives: the gateway (settings, ports, services) and the call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from simgate.api.auth import TtlCache
from simgate.api.dialects.dinstar.auth import Authenticator
from simgate.api.dialects.dinstar.ports import PortMap
from simgate.api.dialects.dinstar.settings import DinstarSettings
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
    _accounts: TtlCache[int, Account] = field(init=False)

    def __post_init__(self) -> None:
        self._accounts = TtlCache(self.services.clock, ttl_s=ACCOUNT_TTL_S)

    async def account(self, account_id: int) -> Account:
        """The caller's account, read at most once a second per process: a lock or a new
        time zone takes effect within ACCOUNT_TTL_S; balances are checked when charging."""
        return await self._accounts.get_or_load(
            account_id, lambda: self.services.accounts.get_account(account_id)
        )


@dataclass(frozen=True, slots=True)
class Call:
    user: GatewayUser
    account: Account
    params: Mapping[str, Any]


ACCOUNT_TTL_S = 1.0

Handler = Callable[[Gateway, Call], Awaitable[tuple[int, dict[str, Any]]]]


def build_gateway(services: Services, cfg: DinstarSettings) -> Gateway:
    svc = services.dinstar
    auth = Authenticator(
        accounts=services.accounts, clock=services.clock, cfg=cfg, secret=svc.nonce_secret
    )
    return Gateway(services, cfg, PortMap(services.lines, cfg.lines), svc, auth)
