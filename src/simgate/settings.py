"""Typed settings: a TOML file plus ``SIMGATE_*`` environment variables, validated once.

Precedence: built-in defaults < TOML file < environment. Nested keys use ``__`` in the
environment (``SIMGATE_HTTP__PORT=9000`` sets ``[http] port``). Values in the environment are
read as JSON when they parse as JSON (numbers, booleans, lists), else as plain strings.
Validation errors are turned into one :class:`ConfigError` line naming the key.
"""

from __future__ import annotations

import ipaddress
import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from simgate.domain.money import parse_amount
from simgate.errors import ConfigError
from simgate.settings_lines import ModemLineSettings, SipVoiceLineSettings, SmppServerSettings
from simgate.settings_lines import Strict as _Strict

# The models of simgate/settings_lines.py are exported from here too (imports predate it).
__all__ = [
    "ENV_PREFIX",
    "BillingSettings",
    "DemoSettings",
    "HttpSettings",
    "InboundNumber",
    "InboundSettings",
    "IpNetwork",
    "LineSettings",
    "ModemLineSettings",
    "PushSettings",
    "Route",
    "Settings",
    "SimLineSettings",
    "SimVoiceLineSettings",
    "SipVoiceLineSettings",
    "SmppLineSettings",
    "SmppServerSettings",
    "VoiceLineSettings",
    "VoiceRoute",
    "VoiceSettings",
    "WorkerSettings",
    "inbound_number_key",
    "load_settings",
]

ENV_PREFIX = "SIMGATE_"


def _check_amount(value: str | None) -> str | None:
    """Amounts are validated at start, not at the first send (domain.money is pure stdlib)."""
    if value is not None:
        parse_amount(value)  # ValueError names the bad text
    return value


class HttpSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Client IPs are taken from X-Forwarded-For only when the TCP peer is one of these.
    trusted_proxies: tuple[str, ...] = ()
    tls: bool = False
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # Stalled clients (cli/http_guard.py): the request line and headers must arrive within
    # header_timeout_seconds, the whole body within body_timeout_seconds after them; at most
    # max_connections are open (a stalled one is evicted first).
    header_timeout_seconds: float = Field(default=15.0, gt=0, le=3600)
    body_timeout_seconds: float = Field(default=120.0, gt=0, le=86400)
    max_connections: int = Field(default=1024, ge=1, le=1_000_000)
    # "HOST:PORT" ("[::1]:9100" for IPv6): /metrics is served there only, not on the API
    # address, where any client could read it (issue 14 item 16). Unset: on the API address.
    metrics_listen: str | None = None

    @field_validator("metrics_listen")
    @classmethod
    def _listen_address(cls, value: str | None) -> str | None:
        if value is not None:
            _split_listen(value)
        return value

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        return None if self.metrics_listen is None else _split_listen(self.metrics_listen)


def _split_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    ok = bool(sep and host and port.isascii() and port.isdigit() and int(port) <= 65535)
    if not ok or "[" in host or "]" in host:
        raise ValueError(f"metrics_listen must be HOST:PORT, e.g. 127.0.0.1:9100, not {value!r}")
    return host, int(port)


class SimLineSettings(_Strict):
    driver: Literal["sim"] = "sim"
    ports: int = Field(default=8, ge=1, le=256)
    seed: int = 1
    submit_latency_ms: int = Field(default=0, ge=0)
    failure_ratio: float = Field(default=0.0, ge=0.0, le=1.0)
    delivery_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    report_delay_ms: int = Field(default=0, ge=0)
    # Messages per minute per port (SIM cards are throttled by operators); 0 = unlimited.
    port_rate_per_minute: int = Field(default=0, ge=0)
    # A simulated line has no physical owner, so several workers may drive it at once.
    exclusive: bool = False
    # Append every submitted message id to this file (crash tests read it to prove no resend).
    journal: str | None = None
    # Who incoming SMS belong to: the account (name or id) owning the line, and per port
    # (a port's SIM may be another customer's). Resolution: services/inbound.py.
    owner: str | None = Field(default=None, min_length=1)
    port_owners: dict[int, Annotated[str, Field(min_length=1)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _owned_ports(self) -> SimLineSettings:
        for port in self.port_owners:
            if not 0 <= port < self.ports:
                raise ValueError(f"port_owners: port {port} is not in 0..{self.ports - 1}")
        return self


class SmppLineSettings(_Strict):
    """An SMPP v3.4 SMSC account (lines/smpp). Times in seconds."""

    driver: Literal["smpp"] = "smpp"
    host: str = "127.0.0.1"
    port: int = Field(default=2775, ge=1, le=65535)
    tls: bool = False
    tls_verify: bool = True
    tls_ca_file: str | None = None
    system_id: str = Field(min_length=1, max_length=15)
    password: str = Field(default="", max_length=8)
    system_type: str = Field(default="", max_length=12)
    # Binds per line: transceivers carry both ways; transmitters send, receivers receive.
    transceivers: int = Field(default=1, ge=0, le=32)
    transmitters: int = Field(default=0, ge=0, le=32)
    receivers: int = Field(default=0, ge=0, le=32)
    window: int = Field(default=64, ge=1, le=1024)  # outstanding submit_sm per bind
    tps: float = Field(default=0.0, ge=0.0)  # submit_sm per second per line; 0 = no cap
    response_timeout: float = Field(default=10.0, gt=0)
    enquire_link_interval: float = Field(default=30.0, gt=0)
    reconnect_min: float = Field(default=1.0, gt=0)
    reconnect_max: float = Field(default=60.0, gt=0)
    # After ESME_RTHROTTLED / ESME_RMSGQFUL: pause the line this long, retry the message.
    throttle_pause: float = Field(default=1.0, gt=0)
    # submit() waits this long for a bind (at start, after a drop) before answering RETRY.
    bind_wait: float = Field(default=5.0, ge=0)
    # Long messages: concatenation UDH (esm_class 0x40), SAR TLVs, or one message_payload.
    long_messages: Literal["udh", "sar", "payload"] = "udh"
    service_type: str = Field(default="", max_length=5)
    short_code_ton: int = Field(default=3, ge=0, le=6)
    short_code_npi: int = Field(default=0, ge=0, le=18)
    short_code_max_digits: int = Field(default=8, ge=1, le=15)
    dest_ton: int = Field(default=1, ge=0, le=6)
    dest_npi: int = Field(default=1, ge=0, le=18)
    # How receipt ids relate to submit_sm_resp ids: "auto" learns decimal/hex from matches.
    receipt_ids: Literal["auto", "same", "receipt_decimal", "receipt_hex"] = "auto"
    # A receipt for an id not seen yet waits this long for its submit_sm_resp.
    receipt_hold: float = Field(default=2.0, ge=0)
    # Where the line notes what each submit_sm_resp id stands for (message, lease, part), so a
    # receipt after a crash still settles its message (lines/smpp/refs.py). The runtime sets
    # <data_dir>/smpp-<line>.refs when none is given.
    refs_journal: str | None = None
    # Incoming concatenated SMS missing parts are delivered partially after this long.
    reassembly_timeout: float = Field(default=120.0, gt=0)
    extra_retryable: tuple[int, ...] = ()
    port_rate_per_minute: int = Field(default=0, ge=0)
    # The SMSC's bind budget belongs to one worker at a time (owned through line_owners).
    exclusive: bool = True
    # The account (name or id) incoming SMS of this SMSC account belong to (services/inbound.py).
    owner: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _can_send(self) -> SmppLineSettings:
        if self.transceivers + self.transmitters == 0:
            raise ValueError("an SMPP line needs a transceiver or a transmitter bind")
        return self


def _line_driver(value: Any) -> str:
    """The ``driver`` key picks the model; a line without one is a sim line (as before)."""
    driver = value.get("driver", "sim") if isinstance(value, dict) else value.driver
    return str(driver)


LineSettings = Annotated[
    Annotated[SimLineSettings, Tag("sim")]
    | Annotated[SmppLineSettings, Tag("smpp")]
    | Annotated[ModemLineSettings, Tag("modem")],
    Discriminator(_line_driver),
]


def _default_lines() -> dict[str, LineSettings]:
    return {"sim": SimLineSettings()}


class Route(_Strict):
    """Destinations starting with ``prefix`` go to the first usable line of ``lines``."""

    prefix: str = ""
    lines: tuple[str, ...] = ("sim",)

    @field_validator("prefix")
    @classmethod
    def _digits(cls, v: str) -> str:
        if v and not v.isdigit():
            raise ValueError("route prefix must be digits")
        return v


class WorkerSettings(_Strict):
    batch_size: int = Field(default=500, ge=1, le=10_000)
    lease_seconds: float = Field(default=30.0, gt=0)
    idle_poll_seconds: float = Field(default=0.05, gt=0)
    # Idle polls back off from idle_poll_seconds to this while nothing comes (issue 15: work
    # made in this process, or announced by PostgreSQL NOTIFY, wakes the loops at once).
    idle_max_seconds: float = Field(default=5.0, gt=0)
    reaper_interval_seconds: float = Field(default=5.0, gt=0)
    # What to do with a message whose lease expired after it may have reached the line:
    # "unknown" marks it UNKNOWN (never resent blindly, spec §7); "resend" queues it again.
    expired_lease_policy: Literal["unknown", "resend"] = "unknown"
    retry_base_seconds: float = Field(default=5.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    max_attempts: int = Field(default=10, ge=1)
    validity_seconds: int = Field(default=48 * 3600, ge=1)


class BillingSettings(_Strict):
    # Price per SMS part when no rate row matches; None means "no pricing" (itnio -19).
    default_sms_price: str | None = "0.01"
    currency: str = "USD"

    _amount = field_validator("default_sms_price")(_check_amount)


class SimVoiceLineSettings(_Strict):
    """A simulated voice line (lines/sim_voice.py): deterministic per (seed, line, call, try)."""

    driver: Literal["sim"] = "sim"
    seed: int = 1
    calls_per_second: float = Field(default=10.0, gt=0)
    max_concurrent: int = Field(default=30, ge=1, le=10_000)
    # Each call: answered, busy (486), unreachable (480 before ringing) or rings unanswered
    # (until the dispatcher gives up at maxRingingTime: 487). The rest of 1.0 rings unanswered.
    answer_ratio: float = Field(default=0.8, ge=0.0, le=1.0)
    busy_ratio: float = Field(default=0.1, ge=0.0, le=1.0)
    unreachable_ratio: float = Field(default=0.0, ge=0.0, le=1.0)
    # Seconds from dial to 180 Ringing, and from ringing to the answer (uniform in [min, max]).
    setup_seconds: tuple[float, float] = (0.2, 1.0)
    ring_seconds: tuple[float, float] = (2.0, 8.0)
    # Share of answered callees who hang up before the audio ends, after [min, max] seconds.
    early_hangup_ratio: float = Field(default=0.1, ge=0.0, le=1.0)
    early_hangup_seconds: tuple[float, float] = (1.0, 5.0)
    # Share of answered callees who press a key, after [min, max] seconds, from these keys.
    dtmf_ratio: float = Field(default=0.5, ge=0.0, le=1.0)
    dtmf_seconds: tuple[float, float] = (1.0, 4.0)
    dtmf_keys: str = Field(default="0123456789", min_length=1, pattern=r"^[0-9*#A-D]+$")
    # Append ``D <call id> <attempt>`` per dial to this file (crash tests count the dials).
    journal: str | None = None

    @model_validator(mode="after")
    def _ratios(self) -> SimVoiceLineSettings:
        if self.answer_ratio + self.busy_ratio + self.unreachable_ratio > 1.0 + 1e-9:
            raise ValueError("answer_ratio + busy_ratio + unreachable_ratio must be at most 1")
        for name in ("setup_seconds", "ring_seconds", "early_hangup_seconds", "dtmf_seconds"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi < math.inf:
                raise ValueError(f"{name} must be [min, max] with 0 <= min <= max, finite")
        return self


def _voice_driver(value: Any) -> str:
    """As for SMS lines: ``driver`` picks the model; none is a sim line."""
    driver = value.get("driver", "sim") if isinstance(value, dict) else value.driver
    return str(driver)


VoiceLineSettings = Annotated[
    Annotated[SimVoiceLineSettings, Tag("sim")] | Annotated[SipVoiceLineSettings, Tag("sip")],
    Discriminator(_voice_driver),
]


class VoiceRoute(_Strict):
    """Callees starting with ``prefix`` go to the first of ``lines`` with room (the longest
    matching prefix wins; no route at all: the first voice line with room, as before)."""

    prefix: str = ""
    lines: tuple[str, ...] = Field(min_length=1)

    @field_validator("prefix")
    @classmethod
    def _digits(cls, v: str) -> str:
        if v and not v.isdigit():
            raise ValueError("voice route prefix must be digits")
        return v


def _default_voice_lines() -> dict[str, VoiceLineSettings]:
    return {"sim-voice": SimVoiceLineSettings()}


class VoiceSettings(_Strict):
    # Voice lines by name (driver "sim" or "sip"); calls go to the first one with room that
    # their route allows (routes below).
    lines: dict[str, VoiceLineSettings] = Field(default_factory=_default_voice_lines)
    # Which lines take which callees (issue 17); empty = every call to the first line with room.
    routes: tuple[VoiceRoute, ...] = ()
    # Catch-all voice rate, USD per minute, and its billing period, when no voice rate row
    # matches the callee; None = no pricing (itnio -26 "getting fee failed").
    default_price: str | None = "0.05"
    default_bill_period: str = Field(default="60+60", pattern=r"^[1-9][0-9]{0,3}\+[1-9][0-9]{0,3}$")
    # Calls leased per dispatcher cycle. A worker renews the lease of its calls in progress
    # every third of call_lease_seconds; a call whose lease runs out (its worker died) is
    # ended as lost (SIP 500) by the reaper, so this is how late that happens after a crash.
    batch_size: int = Field(default=50, ge=1, le=1000)
    call_lease_seconds: float = Field(default=60.0, gt=0)
    idle_poll_seconds: float = Field(default=0.2, gt=0)
    # Talk time cap when a request sets no maxDuration (loops x audio can be long).
    max_call_seconds: int = Field(default=600, ge=1)
    # Uploads: decoded file size and audio length limits (fileUpload, spec §1.13).
    max_file_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_audio_seconds: int = Field(default=600, ge=1)
    # Text to speech: the espeak-ng program and how long one rendering may take.
    espeak: str = "espeak-ng"
    tts_timeout_seconds: float = Field(default=20.0, gt=0)

    _amount = field_validator("default_price")(_check_amount)

    @model_validator(mode="after")
    def _routes_name_lines(self) -> VoiceSettings:
        for route in self.routes:
            for line in route.lines:
                if line not in self.lines:
                    raise ValueError(f"prefix {route.prefix!r} names unknown voice line {line!r}")
        return self


class DemoSettings(_Strict):
    create: bool = True
    balance: str = "100"

    _amount = field_validator("balance")(_check_amount)


# The push engine's section (push/ reads it; the model is here so it is typed at start).
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PushSettings(BaseModel):
    """The ``[push]`` section (push/settings.py loads it for the engine)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Whether worker processes run the sender (the outbox is always written).
    enabled: bool = True
    # Timeouts per attempt (issue #3: connect 5 s, total 15 s).
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    total_timeout_seconds: float = Field(default=15.0, gt=0)
    # Backoff: base * 2^(attempt-1), capped, with jitter (half to full delay).
    retry_base_seconds: float = Field(default=10.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    # A receiver's Retry-After is honoured up to this long.
    retry_after_max_seconds: float = Field(default=6 * 3600.0, gt=0)
    # Retry for at least this long after the push was planned, then dead-letter it
    # (spec §7 "exponential backoff for at least 24 h").
    give_up_after_seconds: float = Field(default=24 * 3600.0, gt=0)
    # Claiming: rows per claim, in-flight rows per worker and per endpoint.
    batch_size: int = Field(default=500, ge=1, le=10_000)
    max_inflight: int = Field(default=2000, ge=1)
    per_endpoint_concurrency: int = Field(default=32, ge=1, le=1000)
    per_endpoint_window: int = Field(default=512, ge=1)
    # A claimed row is this worker's until then; past it another worker may send it again.
    # The worker renews the leases of the rows it still holds every third of it, so this is
    # also how long a crashed worker's claims wait before another worker sends them.
    lease_seconds: float = Field(default=60.0, gt=0)
    idle_poll_seconds: float = Field(default=0.2, gt=0)
    metrics_interval_seconds: float = Field(default=5.0, gt=0)
    max_response_bytes: int = Field(default=64 * 1024, ge=0)
    # SSRF guard: refuse private, loopback, link-local... targets (design principle 5).
    # Turning it off is for closed test rigs only; prefer allow_cidrs.
    guard: bool = True
    allow_cidrs: tuple[str, ...] = ()
    # TESTING ONLY: plan a JSON POST of every domain event to this URL (testing/echo_push.py),
    # so crash and benchmark runs can drive the engine without any dialect's push format.
    test_planner_url: str | None = None
    test_planner_secret: str | None = None

    @field_validator("allow_cidrs")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in v:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"not an address or CIDR: {cidr!r}") from None
        return v

    @model_validator(mode="after")
    def _lease_covers_window(self) -> PushSettings:
        # A row may wait for other sends before its own, but its lease is renewed every
        # third of it while the worker holds it (push/sender.py); an attempt starts only
        # with total_timeout left on it. Two thirds of a lease must cover one attempt.
        if self.lease_seconds < 2 * self.total_timeout_seconds:
            raise ValueError(
                f"lease_seconds must be at least {2 * self.total_timeout_seconds:g} "
                "(2 * total_timeout_seconds)"
            )
        if self.connect_timeout_seconds > self.total_timeout_seconds:
            raise ValueError("connect_timeout_seconds exceeds total_timeout_seconds")
        return self

    def networks(self) -> tuple[IpNetwork, ...]:
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.allow_cidrs)


class InboundNumber(_Strict):
    """An incoming SMS to ``number`` (the SIM's number, the SMSC's destination address)
    belongs to ``account`` (a name or an id)."""

    number: str = Field(min_length=1)
    account: str = Field(min_length=1)

    @field_validator("number")
    @classmethod
    def _number(cls, v: str) -> str:
        if inbound_number_key(v) is None:
            raise ValueError(f"not a phone number or short code: {v!r}")
        return v


def inbound_number_key(raw: str) -> str | None:
    """The digits a recipient number is matched on: ``+44 7700-900123``, ``447700900123``
    and ``00447700900123`` are one number (SMSCs send it with or without the ``+``)."""
    text = raw.strip().replace(" ", "").replace("-", "")
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    return text if text.isdigit() else None


class InboundSettings(_Strict):
    # Checked first: the number an incoming SMS was sent to names its account.
    numbers: tuple[InboundNumber, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> InboundSettings:
        seen: dict[str | None, str] = {}
        for n in self.numbers:
            key = inbound_number_key(n.number)
            if key in seen:
                raise ValueError(f"number {n.number!r} is mapped twice ({seen[key]!r} first)")
            seen[key] = n.number
        return self


class Settings(_Strict):
    data_dir: Path = Path("data")
    database_url: str | None = None
    # When a write counts as committed (and its 2xx goes out): "disk", once the database has
    # flushed it to the disk (a power cut loses nothing answered), or "os", once the operating
    # system has it (SQLite WAL synchronous=NORMAL, PostgreSQL synchronous_commit=off: a kill
    # -9 of simgate still loses nothing, a power cut, an OS crash or a PostgreSQL server crash
    # may lose the last commits; never corruption). store/database.py sets it per connection.
    commit: Literal["disk", "os"] = "disk"
    master_key: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    http: HttpSettings = HttpSettings()
    worker: WorkerSettings = WorkerSettings()
    billing: BillingSettings = BillingSettings()
    demo: DemoSettings = DemoSettings()
    voice: VoiceSettings = VoiceSettings()
    lines: dict[str, LineSettings] = Field(default_factory=_default_lines)
    routes: tuple[Route, ...] = (Route(),)
    inbound: InboundSettings = InboundSettings()
    push: PushSettings = PushSettings()
    smpp_server: SmppServerSettings = SmppServerSettings()
    # Sections owned by the dialects: each validates its own at start (api/dialect.py).
    itnio: dict[str, Any] = Field(default_factory=dict)
    dinstar: dict[str, Any] = Field(default_factory=dict)
    openvox: dict[str, Any] = Field(default_factory=dict)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'simgate.db').resolve()}"

    def check_routes(self) -> None:
        for route in self.routes:
            for line in route.lines:
                if line not in self.lines:
                    raise ConfigError(
                        f"routes: prefix {route.prefix!r} names unknown line {line!r}"
                    )


def _env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _overlay_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name.startswith(ENV_PREFIX + "TEST_"):
            continue
        if name == ENV_PREFIX + "CONFIG":  # names the file itself (cli.common.settings_from)
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        node = data
        for key in path[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment {name}: {key!r} is not a section")
            node = child
        node[path[-1]] = _env_value(raw)


def _one_line(err: ValidationError, data: Mapping[str, Any]) -> str:
    first = err.errors()[0]
    loc = list(first["loc"])
    # lines.<name>.<driver>.<key>: the driver tag is pydantic's union branch, not a key.
    if len(loc) > 2 and loc[0] == "lines":
        line = (data.get("lines") or {}).get(loc[1])
        if isinstance(line, dict) and loc[2] == line.get("driver", "sim"):
            del loc[2]
    # voice.lines.<name>.<driver>...: the same for voice lines (issue 17).
    if len(loc) > 3 and loc[:2] == ["voice", "lines"]:
        vline = ((data.get("voice") or {}).get("lines") or {}).get(loc[2])
        if isinstance(vline, dict) and loc[3] == vline.get("driver", "sim"):
            del loc[3]
    where = ".".join(str(p) for p in loc) or "settings"
    extra = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"invalid setting {where}: {first['msg']}{extra}"


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings once at start; raises ConfigError with one readable line."""
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {config_file}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from None
        except OSError as exc:  # a directory, no permission, ...
            raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from None
    if environ is not None:
        _overlay_env(data, environ)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_path(data, key.split("."), value)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, data)) from None
    settings.check_routes()
    return settings


def _set_path(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
