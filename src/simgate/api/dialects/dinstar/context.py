"""What every endpoint receives: the gateway (settings, ports, services) and the call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from simgate.api.dialects.dinstar.auth import Authenticator
from simgate.api.dialects.dinstar.config import DinstarSettings, load
from simgate.api.dialects.dinstar.ports import PortMap
from simgate.domain.accounts import Account, GatewayUser
from simgate.services.container import Services
from simgate.services.gateway import GatewayService


@dataclass
class Gateway:
    services: Services
    cfg: DinstarSettings
    ports: PortMap
    svc: GatewayService
    auth: Authenticator


@dataclass(frozen=True, slots=True)
class Call:
    user: GatewayUser
    account: Account
    params: Mapping[str, Any]


Handler = Callable[[Gateway, Call], Awaitable[tuple[int, dict[str, Any]]]]


def build_gateway(services: Services) -> Gateway:
    cfg = load(services.settings.dinstar)
    svc = GatewayService(store=services.store, clock=services.clock)
    auth = Authenticator(
        accounts=services.accounts, clock=services.clock, cfg=cfg, secret=svc.nonce_secret
    )
    return Gateway(services, cfg, PortMap(services.lines, cfg.lines), svc, auth)
