"""The services a dialect, the console or the CLI may use, bundled for injection."""

from __future__ import annotations

from dataclasses import dataclass

from simgate.clock import Clock
from simgate.lines.base import Line
from simgate.metrics import Metrics
from simgate.services.accounts import AccountService
from simgate.services.calls import CallService
from simgate.services.console_auth import ConsoleAuth
from simgate.services.console_queries import ConsoleQueries
from simgate.services.dinstar import DinstarService
from simgate.services.fx import FxService
from simgate.services.health import HealthService
from simgate.services.inbound import InboundService
from simgate.services.itnio import ItnioService
from simgate.services.lines import LineService
from simgate.services.listings import Listings
from simgate.services.messaging import MessagingService
from simgate.services.openvox import OpenVoxService
from simgate.services.pushes import PushService
from simgate.services.sending import SendService
from simgate.services.smpp_gateway import SmppGateway
from simgate.services.smpp_outbox import SmppOutbox
from simgate.services.smpp_users import SmppUserService
from simgate.services.voice import VoiceService
from simgate.settings import Settings


@dataclass
class Services:
    settings: Settings
    clock: Clock
    metrics: Metrics
    accounts: AccountService
    sending: SendService
    # The message lifecycle after acceptance: every message state change goes through it.
    messaging: MessagingService
    inbound: InboundService
    # Line ownership, port changes and USSD answers.
    line_state: LineService
    # Lines known to this process (ports, capabilities): read-only for the API side.
    lines: dict[str, Line]
    # Push outbox operations, the push URL check and the sender's queue.
    pushes: PushService
    # Voice calls, audio files and call records (issue #8).
    voice: VoiceService
    # The worker side of calls: lease, finish, reap.
    calls: CallService
    # Exchange rates for accounts quoted in another currency.
    fx: FxService
    # Newest messages and calls, for operators.
    listings: Listings
    # The database check and queue gauges of /healthz and /metrics.
    health: HealthService
    # Vendor use cases and queries, one service per dialect (spec §1, §2, §3).
    itnio: ItnioService
    dinstar: DinstarService
    openvox: OpenVoxService
    # The web console's users and sessions, and what its pages read (issue 19).
    console_auth: ConsoleAuth
    console: ConsoleQueries
    # The SMPP server (issue 18): SMPP accounts, submit/query/cancel, the deliver_sm outbox.
    smpp_users: SmppUserService | None = None
    smpp_gateway: SmppGateway | None = None
    smpp_outbox: SmppOutbox | None = None
