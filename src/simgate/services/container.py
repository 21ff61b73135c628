"""The services a dialect, the console or the CLI may use, bundled for injection."""

from __future__ import annotations

from dataclasses import dataclass

from simgate.clock import Clock
from simgate.lines.base import Line
from simgate.metrics import Metrics
from simgate.push.service import PushService
from simgate.services.accounts import AccountService
from simgate.services.calls import CallService
from simgate.services.dinstar import DinstarService
from simgate.services.inbound import InboundService
from simgate.services.lines import LineService
from simgate.services.messaging import MessagingService
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
    # The message lifecycle after acceptance: every message state change goes through it.
    messaging: MessagingService
    inbound: InboundService
    # Line ownership, port changes and USSD answers.
    line_state: LineService
    # Lines known to this process (ports, capabilities): read-only for the API side.
    lines: dict[str, Line]
    # Push outbox operations and the push URL check (issue #3).
    pushes: PushService
    # Voice calls, audio files and call records (issue #8).
    voice: VoiceService
    # The worker side of calls: lease, finish, reap.
    calls: CallService
    # Vendor use cases: the Dinstar gateway API (spec §2) and the OpenVox API (spec §3).
    dinstar: DinstarService
    openvox: OpenVoxService
