"""The services a dialect, the console or the CLI may use, bundled for injection."""

from __future__ import annotations

from dataclasses import dataclass

from simgate.clock import Clock
from simgate.lines.base import Line
from simgate.metrics import Metrics
from simgate.push.service import PushService
from simgate.services.accounts import AccountService
from simgate.services.dinstar import DinstarService
from simgate.services.inbound import InboundService
from simgate.services.openvox import OpenVoxService
from simgate.services.sending import SendService
from simgate.services.voice import VoiceService
from simgate.settings import Settings
from simgate.store import Store


@dataclass
class Services:
    settings: Settings
    clock: Clock
    metrics: Metrics
    store: Store
    accounts: AccountService
    sending: SendService
    inbound: InboundService
    # Lines known to this process (ports, capabilities): read-only for the API side.
    lines: dict[str, Line]
    # Push outbox operations and the push URL check (issue #3).
    pushes: PushService
    # Voice calls, audio files and call records (issue #8).
    voice: VoiceService
    # Vendor use cases: the Dinstar gateway API (spec §2) and the OpenVox API (spec §3).
    dinstar: DinstarService
    openvox: OpenVoxService
