"""Composition root: settings → store, lines, services, app; start and stop in order.

Only this module knows the concrete classes (design: import direction). Roles:
``run`` = API + worker (the worker in a child on SQLite with 2+ CPUs, cli/worker_child.py;
else in the one process); ``serve`` = API only;
``worker`` = dispatcher, lines, reaper and push sender. Roles share only the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel

from simgate.api.app import create_app, create_metrics_app
from simgate.api.dialect import Dialect
from simgate.api.dialects import dinstar, itnio, openvox
from simgate.api.smpp.listener import SmppListener
from simgate.clock import Clock, SystemClock
from simgate.console.app import mount_console
from simgate.dispatch.calls import CallDispatcher
from simgate.dispatch.journal import WriteJournal
from simgate.dispatch.pg_wakeup import PgListener, PgNotifier, asyncpg_dsn
from simgate.dispatch.pipe_wakeup import PipeListener, PipeNotifier, wake_pair
from simgate.dispatch.reaper import Reaper
from simgate.dispatch.report_hold import ReportHold
from simgate.dispatch.sink import LineSink
from simgate.dispatch.worker import Dispatcher
from simgate.errors import ConfigError
from simgate.lease_loop import Wakeup
from simgate.lines.base import IncomingPart, IncomingSms, Line
from simgate.lines.modem import ModemLine
from simgate.lines.sim import SimLine
from simgate.lines.sim_voice import SimVoiceLine
from simgate.lines.sip.line import SipVoiceLine
from simgate.lines.smpp import SmppLine
from simgate.lines.voice import VoiceLine
from simgate.media.tts import Tts
from simgate.metrics import Metrics
from simgate.push.base import PushFormat
from simgate.push.sender import PushSender
from simgate.push.settings import load_push_settings
from simgate.push.ssrf import UrlGuard
from simgate.secretbox import (
    SecretBox,
    check_opens,
    create_master_key,
    key_path,
    read_master_key,
)
from simgate.services.accounts import AccountService
from simgate.services.bootstrap import DemoCredentials, ensure_demo
from simgate.services.calls import CallService
from simgate.services.changes import Subscribers
from simgate.services.console_auth import ConsoleAuth
from simgate.services.console_queries import ConsoleQueries
from simgate.services.container import Services
from simgate.services.dinstar import DinstarService
from simgate.services.dinstar_inbound import number_inbound
from simgate.services.events import EventBus
from simgate.services.fx import FxService
from simgate.services.health import HealthService
from simgate.services.inbound import InboundService, OwnerRules
from simgate.services.itnio import ItnioService
from simgate.services.lines import LineService
from simgate.services.listings import Listings
from simgate.services.messaging import MessagingService
from simgate.services.openvox import OpenVoxService
from simgate.services.outbox import PushOutbox
from simgate.services.pushes import PushService
from simgate.services.rates import RateCache
from simgate.services.sending import SendService
from simgate.services.smpp_gateway import SmppGateway
from simgate.services.smpp_outbox import SmppOutbox
from simgate.services.smpp_users import SmppUserService
from simgate.services.voice import VoiceService
from simgate.settings import LineSettings, Settings, SimVoiceLineSettings, SipVoiceLineSettings
from simgate.store import Database, Store
from simgate.store import migrate as migrations
from simgate.store.accounts import a_sealed_secret
from simgate.testing.echo_push import EchoPush

log = logging.getLogger(__name__)

Role = Literal["run", "serve", "worker", "admin"]


def build_line(name: str, cfg: LineSettings, clock: Clock, data_dir: Path) -> Line:
    if cfg.driver == "sim":
        return SimLine(name, cfg, clock)
    if cfg.driver == "smpp":
        if cfg.refs_journal is None:  # the submit ids a receipt after a crash needs
            cfg = cfg.model_copy(update={"refs_journal": str(data_dir / f"smpp-{name}.refs")})
        return SmppLine(name, cfg, clock)
    if cfg.driver == "modem":
        if cfg.journal is None:  # the TP-MRs a report after a restart needs
            cfg = cfg.model_copy(update={"journal": str(data_dir / f"modem-{name}.mr")})
        return ModemLine(name, cfg, clock)
    raise AssertionError(f"unknown line driver {cfg.driver}")  # settings validation prevents it


def build_voice_line(
    name: str,
    cfg: SimVoiceLineSettings | SipVoiceLineSettings,
    clock: Clock,
    metrics: Metrics | None = None,
) -> VoiceLine:
    if isinstance(cfg, SipVoiceLineSettings):  # issue 17: calls through a SIP trunk
        return SipVoiceLine(name, cfg, clock, metrics=metrics)
    return SimVoiceLine(name, cfg, clock)


# The vendor dialects this build speaks, in mount order (api/dialect.py).
DIALECTS: tuple[Dialect[Any], ...] = (itnio.DIALECT, openvox.DIALECT, dinstar.DIALECT)


def push_formats(
    dialect_settings: Mapping[str, BaseModel], lines: Mapping[str, Line]
) -> list[PushFormat]:
    """Each dialect that pushes results contributes one format (see push/base.py); their
    pushes are stored in the order of DIALECTS."""
    formats = (d.push_format(dialect_settings[d.name], lines) for d in DIALECTS)
    return [f for f in formats if f is not None]


async def migrate_database(settings: Settings) -> str:
    """Create or upgrade the schema (``simgate migrate``); returns the revision it is at."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url, commit=settings.commit)
    await db.open()
    try:
        await migrations.upgrade(db)
        return await migrations.current_revision(db)
    finally:
        await db.close()


@dataclass
class Runtime:
    settings: Settings
    role: Role = "run"
    clock: Clock = field(default_factory=SystemClock)
    services: Services | None = None
    # Who receives the changes services record, inside their transaction: the event bus.
    changes: Subscribers = field(default_factory=Subscribers)
    # The event bus: the Dinstar numbering and the push outbox subscribe to it.
    events: EventBus | None = None
    demo: DemoCredentials | None = None
    _db: Database | None = None
    _store: Store | None = None
    _dispatcher: Dispatcher | None = None
    _reaper: Reaper | None = None
    _calls: CallDispatcher | None = None
    _push_sender: PushSender | None = None
    _started_lines: list[Line] = field(default_factory=list)
    # Who makes work wakes who does it (issue 15); on PostgreSQL, across processes too.
    wakeup: Wakeup = field(default_factory=Wakeup)
    _pg_notifier: PgNotifier | None = None
    # Modem ports' stored state, for the lines this process does not drive (issue 16).
    _port_refresh: asyncio.Task[None] | None = None
    _pg_listener: PgListener | None = None
    _voice_lines: list[VoiceLine] = field(default_factory=list)
    # Each dialect's section, validated by open() in every role (api/dialect.py).
    dialect_settings: dict[str, BaseModel] = field(default_factory=dict)
    # The SMPP server (issue 18), started by start_smpp_server() in the API roles.
    smpp_listener: SmppListener | None = None
    # `run --worker-process` on SQLite: wake-ups to the worker child / from the parent.
    _pipe_notifier: PipeNotifier | None = None
    _pipe_listener: PipeListener | None = None
    _wake_socks: tuple[socket.socket, ...] = ()

    async def open(self, *, migrate: bool = True) -> Services:
        s = self.settings
        # Settings first: a bad section fails start with one line before anything opens.
        self.dialect_settings = {d.name: d.load(s) for d in DIALECTS}
        try:
            s.data_dir.mkdir(parents=True, exist_ok=True)
            master_key = read_master_key(s.data_dir, s.master_key)
        except OSError as exc:  # not a directory, not writable, ...: one line, not a traceback
            raise ConfigError(f"cannot use data_dir {s.data_dir}: {exc.strerror or exc}") from None
        self._db = Database(s.effective_database_url, commit=s.commit)
        await self._db.open()
        try:
            if migrate:
                await migrations.upgrade(self._db)
            box = await self._secret_box(master_key)
        except BaseException:
            await self._db.close()  # its writer thread would outlive the refusal
            self._db = None
            raise
        store = self._store = Store(self._db, box)
        metrics = Metrics()
        accounts = AccountService(store=store, clock=self.clock)
        lines = {
            name: build_line(name, cfg, self.clock, s.data_dir) for name, cfg in s.lines.items()
        }
        push_cfg = load_push_settings(s.push)
        pushes = PushService(
            db=self._db,
            settings=push_cfg,
            clock=self.clock,
            metrics=metrics,
            guard=UrlGuard(allow=push_cfg.networks(), enforce=push_cfg.guard),
            wakeup=self.wakeup,  # an operator's retry wakes the senders (issue 15)
        )
        rates = RateCache(store=store, clock=self.clock)  # one cache for SMS and voice
        publish = self.changes.publish
        messaging = MessagingService(store=store, publish=publish, wakeup=self.wakeup)
        if not self._db.is_sqlite:  # other processes hear what this one queues (NOTIFY)
            self._pg_notifier = PgNotifier(self._db.engine, self.wakeup)
            self._pg_notifier.start()
        line_state = LineService(store=store, clock=self.clock, publish=publish)
        # Modem ports: kept in the database by the process driving them, shown by the rest.
        line_state.wire(lines)
        with contextlib.suppress(Exception):  # a database not migrated yet: shown later
            await line_state.refresh_stored(lines)
        self._port_refresh = asyncio.create_task(
            line_state.keep_refreshing(lines), name="port-state-refresh"
        )
        self.services = Services(
            settings=s,
            clock=self.clock,
            metrics=metrics,
            accounts=accounts,
            sending=SendService(
                store=store,
                messaging=messaging,
                settings=s,
                clock=self.clock,
                metrics=metrics,
                rates=rates,
            ),
            messaging=messaging,
            inbound=InboundService(
                store=store, clock=self.clock, publish=publish, rules=OwnerRules.from_settings(s)
            ),
            line_state=line_state,
            lines=lines,
            pushes=pushes,
            voice=VoiceService(
                store=store,
                settings=s,
                clock=self.clock,
                tts=Tts(
                    program=s.voice.espeak,
                    timeout_s=s.voice.tts_timeout_seconds,
                    clock=self.clock,
                ),
                rates=rates,
                wakeup=self.wakeup,
            ),
            calls=CallService(store=store, publish=publish),
            fx=FxService(store=store, clock=self.clock),
            listings=Listings(store=store, accounts=accounts),
            health=HealthService(store=store, clock=self.clock, metrics=metrics),
            itnio=ItnioService(store=store),
            dinstar=DinstarService(
                store=store,
                clock=self.clock,
                messaging=messaging,
                lines=line_state,
                epoch=accounts.epoch,
            ),
            openvox=OpenVoxService(store=store, clock=self.clock, epoch=accounts.epoch),
            console_auth=ConsoleAuth(store=store, clock=self.clock, accounts=accounts),
            console=ConsoleQueries(
                store=store, clock=self.clock, accounts=accounts, pushes=pushes, lines=lines
            ),
        )
        # Events out, formats subscribe: in the transaction of each change, the Dinstar
        # incoming_sms_id numbering first, then the push outbox (its rows commit with it).
        formats = push_formats(self.dialect_settings, lines)
        if push_cfg.test_planner_url:  # testing only, see testing/echo_push.py
            formats.append(EchoPush(push_cfg.test_planner_url, push_cfg.test_planner_secret))
        self.events = EventBus(store)
        self.events.subscribe(number_inbound)
        self.events.subscribe(
            PushOutbox(
                store=store,
                formats=formats,
                clock=self.clock,
                wakeup=self.wakeup,
                epoch=accounts.epoch,  # an app's push URL changed here: seen at once
            )
        )
        # SMPP receipts and incoming SMS: rows of the SMPP outbox, in every role (the worker
        # records the reports that owe them).
        smpp = s.smpp_server
        self.services.smpp_outbox = SmppOutbox(
            store=store,
            clock=self.clock,
            id_base=smpp.message_id_base,
            keep_seconds=s.worker.validity_seconds,
            wakeup=self.wakeup,  # new rows wake the SMPP server's deliverers (issue 15)
        )
        self.services.smpp_users = SmppUserService(store=store, accounts=accounts, clock=self.clock)
        self.services.smpp_gateway = SmppGateway(
            sending=self.services.sending, messaging=messaging, store=store, clock=self.clock
        )
        self.events.subscribe(self.services.smpp_outbox)
        self.changes.subscribe(self.events.publish)
        if s.demo.create and self.role in ("run", "serve"):
            self.demo = await ensure_demo(
                store, accounts, s.data_dir, s.demo.balance, self.services.console_auth
            )
        return self.services

    def app(self, dialects: Sequence[Dialect[Any]] = DIALECTS) -> FastAPI:
        assert self.services is not None, "open() first"
        app = create_app(self.services, dialects, self.dialect_settings)
        mount_console(app, self.services)  # /console (issue 19)
        return app

    def metrics_app(self) -> FastAPI:
        """/metrics alone, for ``[http] metrics_listen``."""
        assert self.services is not None, "open() first"
        return create_metrics_app(self.services)

    async def start_worker(self) -> None:
        sv = self.services
        assert sv is not None, "open() first"
        if not self._db_is_sqlite():  # wake-ups from the other processes (LISTEN)
            self._pg_listener = PgListener(
                asyncpg_dsn(self.settings.effective_database_url), self.wakeup
            )
            await self._pg_listener.start()
        # Reports that overtake the record of their submit ride that record's transaction
        # instead of the orphan path (dispatch/report_hold.py, issue 15).
        hold = ReportHold()
        sink = LineSink(
            messaging=sv.messaging,
            hold=hold,
            clock=self.clock,
            metrics=sv.metrics,
            on_incoming=self._on_incoming,
            on_parts=self._on_parts,
            on_parts_due=self._on_parts_due,
            on_port=self._on_port,
        )
        for line in sv.lines.values():
            await line.start(sink)
            self._started_lines.append(line)
        self._dispatcher = Dispatcher(
            messaging=sv.messaging,
            line_state=sv.line_state,
            lines=sv.lines,
            routes=self.settings.routes,
            settings=self.settings.worker,
            clock=self.clock,
            metrics=sv.metrics,
            journal=WriteJournal.open(self.settings.data_dir),
            wakeup=self.wakeup,
            hold=hold,
        )
        self._reaper = Reaper(
            messaging=sv.messaging,
            settings=self.settings.worker,
            clock=self.clock,
            metrics=sv.metrics,
        )
        # The lease a killed predecessor left in our journal slot: what never reached the line
        # is queued again; then the reaper takes the lapsed rest (other hosts' workers).
        await self._dispatcher.recover()
        await self._reaper.run_once()  # leases left by a crashed predecessor, before new work
        await self._dispatcher.start()
        await self._reaper.start()
        voice_lines = {
            name: build_voice_line(name, cfg, self.clock, sv.metrics)
            for name, cfg in self.settings.voice.lines.items()
        }
        for vline in voice_lines.values():
            await vline.start()
        self._voice_lines = list(voice_lines.values())
        self._calls = CallDispatcher(
            calls=sv.calls,
            lines=voice_lines,
            settings=self.settings.voice,
            worker=self.settings.worker,
            clock=self.clock,
            metrics=sv.metrics,
            wakeup=self.wakeup,
        )
        await self._calls.start()
        if sv.pushes.settings.enabled:
            self._push_sender = PushSender(
                queue=sv.pushes.queue,
                settings=sv.pushes.settings,
                clock=self.clock,
                metrics=sv.metrics,
                guard=sv.pushes.guard,
                wakeup=self.wakeup,
                idle_max_seconds=self.settings.worker.idle_max_seconds,
            )
            await self._push_sender.start()

    def _db_is_sqlite(self) -> bool:
        return self._db is None or self._db.is_sqlite

    def wake_child(self) -> int | None:
        """``run --worker-process``: the file descriptor the worker child inherits to hear
        what this process queues (SQLite: dispatch/pipe_wakeup.py), or None on PostgreSQL,
        where NOTIFY does it (open() started it). The descriptor stays open until close(),
        for the children started after one died."""
        if not self._db_is_sqlite():
            return None
        ours, theirs = self._wake_socks = wake_pair()
        self._pipe_notifier = PipeNotifier(ours, self.wakeup)
        self._pipe_notifier.start()
        return theirs.fileno()

    def listen_to_parent(self, fd: int) -> None:
        """In the worker child, after start_worker(): wake the loops on the parent's
        datagrams (``fd`` from :meth:`wake_child`)."""
        self._pipe_listener = PipeListener(fd, self.wakeup)
        self._pipe_listener.start()

    async def start_smpp_server(self) -> SmppListener | None:
        """The SMPP listener, when ``[smpp_server] enabled`` (issue 18)."""
        sv = self.services
        assert sv is not None, "open() first"
        if not self.settings.smpp_server.enabled:
            return None
        assert sv.smpp_users is not None
        assert sv.smpp_gateway is not None
        assert sv.smpp_outbox is not None
        self.smpp_listener = SmppListener(
            settings=self.settings.smpp_server,
            users=sv.smpp_users,
            gateway=sv.smpp_gateway,
            outbox=sv.smpp_outbox,
            registry=sv.metrics.registry,
        )
        await self.smpp_listener.start()
        if not self._db_is_sqlite() and self._pg_listener is None:
            # Not a worker here (`run --worker-process`'s parent, `serve`): the receipts the
            # workers store wake our deliverers through NOTIFY (services/smpp_outbox.py).
            self._pg_listener = PgListener(
                asyncpg_dsn(self.settings.effective_database_url), self.wakeup
            )
            await self._pg_listener.start()
        return self.smpp_listener

    @property
    def store(self) -> Store:
        """The store this runtime opened: for tests and the CLI's schema commands only; every
        other caller changes state through the services."""
        assert self._store is not None, "open() first"
        return self._store

    @property
    def dispatcher(self) -> Dispatcher | None:
        return self._dispatcher

    @property
    def call_dispatcher(self) -> CallDispatcher | None:
        return self._calls

    async def _on_incoming(self, line: str, messages: Sequence[IncomingSms]) -> None:
        assert self.services is not None
        await self.services.inbound.receive(line, messages, self.services.lines[line].ports())

    async def _on_parts(self, line: str, parts: Sequence[IncomingPart]) -> list[int]:
        assert self.services is not None
        inbound, ports = self.services.inbound, self.services.lines[line].ports()
        return await inbound.receive_parts(line, parts, ports)

    async def _on_parts_due(self, line: str, started_before_ms: int) -> list[int]:
        assert self.services is not None
        return await self.services.inbound.expire_parts(
            line, started_before_ms=started_before_ms, ports=self.services.lines[line].ports()
        )

    async def _on_port(self, line: str, port: int, up: bool) -> None:
        assert self.services is not None
        await self.services.line_state.port_changed(line=line, port=port, up=up)

    @property
    def push_sender(self) -> PushSender | None:
        return self._push_sender

    async def _secret_box(self, master_key: str | None) -> SecretBox:
        """The box of the API secrets; a new master key only for a database that holds none
        sealed with an earlier one (a restored backup without its master.key is refused,
        not given a key that opens nothing: secretbox.check_opens)."""
        assert self._db is not None
        s = self.settings
        async with self._db.read() as conn:
            sealed = await a_sealed_secret(conn)
        if master_key is None:
            if sealed is not None:
                raise ConfigError(
                    f"{key_path(s.data_dir)} is missing and the database holds API secrets "
                    "sealed with a master key: restore the master.key saved with the "
                    "database's backup (or set master_key)"
                )
            try:
                master_key = create_master_key(s.data_dir)
            except OSError as exc:
                raise ConfigError(
                    f"cannot use data_dir {s.data_dir}: {exc.strerror or exc}"
                ) from None
        box = SecretBox(master_key)
        where = "master_key" if s.master_key else str(key_path(s.data_dir))
        check_opens(box, sealed, where=where)
        return box

    async def close(self) -> None:
        if self.smpp_listener is not None:  # first: it records the answers it has
            await self.smpp_listener.stop()
            self.smpp_listener = None
        if self._push_sender is not None:
            await self._push_sender.stop()
            self._push_sender = None
        if self._calls is not None:  # hangs up calls in progress and records them
            await self._calls.stop()
            self._calls = None
        for vline in self._voice_lines:
            with contextlib.suppress(Exception):
                await vline.stop()
        self._voice_lines.clear()
        if self._dispatcher is not None:
            await self._dispatcher.stop()
            self._dispatcher = None
        if self._reaper is not None:
            await self._reaper.stop()
            self._reaper = None
        for line in reversed(self._started_lines):
            with contextlib.suppress(Exception):
                await line.stop()
        self._started_lines.clear()
        if self._pg_listener is not None:
            await self._pg_listener.stop()
            self._pg_listener = None
        if self._pipe_listener is not None:
            self._pipe_listener.stop()
            self._pipe_listener = None
        if self._pipe_notifier is not None:
            self._pipe_notifier.stop()
            self._pipe_notifier = None
        for sock in self._wake_socks:
            sock.close()
        self._wake_socks = ()
        if self._pg_notifier is not None:
            await self._pg_notifier.stop()
            self._pg_notifier = None
        if self._port_refresh is not None:
            self._port_refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._port_refresh
            self._port_refresh = None
        if self._db is not None:
            await self._db.close()
            self._db = None
