"""What every endpoint receives: the gateway (settings, ports, services) and the call, and
who may use which port (issue 14 item 1, README "Gateway users and ports")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from simgate.api.auth import TtlCache
from simgate.api.dialects.dinstar.auth import Authenticator
from simgate.api.dialects.dinstar.ports import GatewayPort, PortMap
from simgate.api.dialects.dinstar.settings import DinstarSettings
from simgate.domain.accounts import Account, GatewayUser
from simgate.errors import AccessDenied
from simgate.services.container import Services
from simgate.services.dinstar import DinstarService
from simgate.services.inbound import OwnerRules


@dataclass
class Gateway:
    services: Services
    cfg: DinstarSettings
    ports: PortMap
    svc: DinstarService
    auth: Authenticator
    _accounts: TtlCache[int, Account] = field(init=False)
    # The incoming-SMS owner settings also assign ports to accounts (services/inbound.py).
    rules: OwnerRules = field(init=False)

    def __post_init__(self) -> None:
        self._accounts = TtlCache(
            self.services.clock, ttl_s=ACCOUNT_TTL_S, epoch=self.services.accounts.epoch
        )
        self.rules = OwnerRules.from_settings(self.services.settings)

    def may_use(self, call: Call, gp: GatewayPort) -> bool:
        """Operators use every port; account users their account's and the shared ones."""
        return call.user.operator or self.rules.may_use(call.account, gp.line, gp.index)

    def sees_sim(self, call: Call, gp: GatewayPort) -> bool:
        """A port's SIM ids (IMSI, ICCID, number): operators, and the port's own account."""
        return call.user.operator or self.rules.owns(call.account, gp.line, gp.index)

    def usable_ports(self, call: Call, numbers: list[int] | None) -> list[GatewayPort] | None:
        """The ports ``call`` may use among ``numbers`` (None = any port: operators get None
        back, account users the ports they may use when some are not theirs). A named port
        the caller may not use refuses the whole request."""
        if numbers is None:
            mine = [gp for gp in self.ports.ports if self.may_use(call, gp)]
            return None if len(mine) == len(self.ports) else mine
        for n in numbers:
            gp = self.ports.get(n)
            if gp is not None and not self.may_use(call, gp):
                raise AccessDenied(f"port {n} is assigned to another account")
        return [gp for n in numbers if (gp := self.ports.get(n)) is not None]

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


def operator_only(call: Call, what: str) -> None:
    if not call.user.operator:
        raise AccessDenied(f"{what} is for operators (this gateway user is an account user)")


ACCOUNT_TTL_S = 1.0

Handler = Callable[[Gateway, Call], Awaitable[tuple[int, dict[str, Any]]]]


def build_gateway(services: Services, cfg: DinstarSettings) -> Gateway:
    svc = services.dinstar
    auth = Authenticator(
        accounts=services.accounts, clock=services.clock, cfg=cfg, secret=svc.nonce_secret
    )
    return Gateway(services, cfg, PortMap(services.lines, cfg.lines), svc, auth)
