"""The setting models of the modem line, the SIP voice line and the SMPP server (``[lines.*]``
with ``driver = "modem"``, ``[voice.lines.*]`` with ``driver = "sip"``, ``[smpp_server]``).

Kept apart from simgate/settings.py, which re-exports them (``from simgate.settings import
ModemLineSettings`` keeps working) and builds the whole :class:`~simgate.settings.Settings`
from them. :class:`Strict`, the base of every settings model, is here so that both modules
share it without an import cycle.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ModemLineSettings", "SipVoiceLineSettings", "SmppServerSettings", "Strict"]


class Strict(BaseModel):
    # Environment values are read as JSON, so SIMGATE_MASTER_KEY=1234... arrives as a number:
    # string fields take numbers as their text.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class ModemLineSettings(Strict):
    """GSM modems, one SIM port each, in order (lines/modem; AT commands, PDU mode).
    Times in seconds."""

    driver: Literal["modem"] = "modem"
    # Local ttys ("/dev/ttyUSB0") and TCP modem banks / ser2net ("socket://10.0.0.5:4001").
    ports: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1, max_length=256)
    baud: int = Field(default=115200, ge=300, le=4_000_000)
    pin: str | None = Field(default=None, pattern=r"^[0-9]{4,8}$")
    smsc: str = Field(default="", pattern=r"^\+?[0-9]{0,20}$")  # "" = the SIM's own
    rate_per_minute: int = Field(default=0, ge=0)  # per port (SIM cards get barred)
    validity_minutes: int = Field(default=24 * 60, ge=5)  # TP-VP of what is sent
    command_timeout: float = Field(default=10.0, gt=0)
    send_timeout: float = Field(default=60.0, gt=0)  # +CMGS: the network's answer
    poll_interval: float = Field(default=30.0, gt=0)  # health poll (+CSQ, +CREG, ...)
    # smstools: a modem failing 3 times in a row is blocked (1 h there) and reset.
    fail_limit: int = Field(default=3, ge=1)
    block_seconds: float = Field(default=300.0, ge=0)
    reset_settle: float = Field(default=10.0, ge=0)  # after +CFUN=1,1, before re-init
    reopen_min: float = Field(default=1.0, gt=0)
    reopen_max: float = Field(default=60.0, gt=0)
    # A status report matches a part sent on its port with its TP-MR and recipient within
    # this long (TP-MR wraps at 256 per port).
    report_window: float = Field(default=3 * 24 * 3600.0, gt=0)
    # Incoming concatenated SMS missing parts are stored partially after this (Gammu: 600 s).
    reassembly_timeout: float = Field(default=600.0, gt=0)
    # Each port's state is written to the database for processes that do not drive the line
    # (lines/modem/keeper.py); a change of the signal alone at most this often.
    signal_save_interval: float = Field(default=60.0, ge=0)
    # Each part's TP-MR, noted before the next part is written (lines/modem/journal.py).
    # The runtime sets <data_dir>/modem-<line>.mr when none is given.
    journal: str | None = None
    exclusive: bool = True  # a modem port has one owner
    owner: str | None = Field(default=None, min_length=1)
    port_owners: dict[int, Annotated[str, Field(min_length=1)]] = Field(default_factory=dict)

    @property
    def port_rate_per_minute(self) -> int:
        return self.rate_per_minute

    @model_validator(mode="after")
    def _owned_ports(self) -> ModemLineSettings:
        for port in self.port_owners:
            if not 0 <= port < len(self.ports):
                raise ValueError(f"port_owners: port {port} is not in 0..{len(self.ports) - 1}")
        return self


class SipVoiceLineSettings(Strict):
    """A voice line through a SIP trunk or PBX (lines/sip/, issue 17)."""

    driver: Literal["sip"]
    proxy: str = Field(min_length=3)  # "host:port" of the trunk (port 5060 when left out)
    transport: Literal["udp", "tcp"] = "udp"
    username: str = ""  # digest auth (RFC 2617) on 401/407; "" = none offered
    password: str = ""
    from_user: str = Field(default="simgate", min_length=1)  # caller id when displayNum is ""
    domain: str = ""  # the host in From/To URIs; "" = the proxy's host
    # ``register`` in the file: REGISTER before calls and refresh it (RFC 3261 §10). Named
    # apart because pydantic's BaseModel has a ``register`` attribute.
    register_with_trunk: bool = Field(default=False, alias="register")
    register_expires: int = Field(default=300, ge=60, le=86400)
    # Our side: the address put in Via/Contact/SDP and bound; RTP uses even ports of the range.
    local_host: str = "127.0.0.1"
    sip_port: int = Field(default=0, ge=0, le=65535)  # 0 = any free port
    rtp_ports: str = Field(default="20000-20999", pattern=r"^[0-9]{1,5}-[0-9]{1,5}$")
    codecs: tuple[Literal["PCMU", "PCMA"], ...] = Field(default=("PCMU", "PCMA"), min_length=1)
    dtmf: Literal["rfc4733", "info", "both"] = "both"
    calls_per_second: float = Field(default=5.0, gt=0)
    max_concurrent: int = Field(default=30, ge=1, le=10_000)
    # No final answer to an INVITE in this long: 408 (RFC 3261 Timer B = 64*T1).
    invite_timeout_seconds: float = Field(default=32.0, gt=0)

    @property
    def proxy_address(self) -> tuple[str, int]:
        return _split_host_port(self.proxy, default_port=5060)

    @property
    def rtp_range(self) -> tuple[int, int]:
        lo, _, hi = self.rtp_ports.partition("-")
        return int(lo), int(hi)

    @model_validator(mode="after")
    def _check(self) -> SipVoiceLineSettings:
        self.proxy_address  # noqa: B018 - validates the address (ValueError names it)
        lo, hi = self.rtp_range
        if not 1024 <= lo < hi <= 65535:
            raise ValueError("rtp_ports must be 'LOW-HIGH' with 1024 <= LOW < HIGH <= 65535")
        if len(set(self.codecs)) != len(self.codecs):
            raise ValueError("codecs lists a codec twice")
        return self


def _split_host_port(value: str, *, default_port: int) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, default_port
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError(f"{value!r} is not host:port")
    return host.strip("[]"), int(port)


class SmppServerSettings(Strict):
    """``[smpp_server]``: customers bind to simgate as ESMEs (issue 18, api/smpp/).

    Timers default to Jasmin's (session init 30 s, enquire_link 30 s, inactivity 300 s,
    response 60 s)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=2775, ge=0, le=65535)
    tls_port: int | None = Field(default=None, ge=0, le=65535)
    tls_cert: str | None = None
    tls_key: str | None = None
    # "" accepts any system_type; otherwise a bind must name exactly this one.
    system_type: str = Field(default="", max_length=12)
    session_init_seconds: float = Field(default=30.0, gt=0)
    enquire_link_seconds: float = Field(default=30.0, gt=0)
    inactivity_seconds: float = Field(default=300.0, gt=0)
    response_seconds: float = Field(default=60.0, gt=0)
    window: int = Field(default=64, ge=1, le=10_000)  # submit_sm being handled per bind
    max_connections: int = Field(default=2000, ge=1, le=1_000_000)
    max_pdu_bytes: int = Field(default=65_552, ge=1024, le=1_048_576)
    message_id_base: Literal["hex", "decimal"] = "decimal"
    # deliver_sm outstanding per receiving bind (receipts and incoming SMS).
    deliver_window: int = Field(default=64, ge=1, le=10_000)
    # How long parts of a long message wait for the rest before the bind is refused them.
    reassembly_seconds: float = Field(default=60.0, gt=0)
    # A receiving bind's outbox is read again after this much quiet (new rows wake it at
    # once, from any process: services/smpp_outbox.py); a refused row's retry waits for it.
    deliver_poll_seconds: float = Field(default=0.2, gt=0, le=3600)

    @model_validator(mode="after")
    def _tls_pair(self) -> SmppServerSettings:
        if self.tls_port is not None and not (self.tls_cert and self.tls_key):
            raise ValueError("tls_port needs tls_cert and tls_key")
        return self
