"""Settings: defaults, TOML file, SIMGATE_* environment, precedence, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from simgate.errors import ConfigError
from simgate.settings import (
    Route,
    Settings,
    SimLineSettings,
    SipVoiceLineSettings,
    load_settings,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "simgate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_valid() -> None:
    s = load_settings(None)
    assert s == Settings()
    assert (s.http.host, s.http.port) == ("127.0.0.1", 8080)
    assert s.worker.expired_lease_policy == "unknown"
    assert s.lines == {"sim": SimLineSettings()}
    assert s.routes == (Route(prefix="", lines=("sim",)),)
    assert s.billing.default_sms_price == "0.01"
    assert s.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert s.effective_database_url.endswith("/data/simgate.db")
    s.check_routes()


def test_toml_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
data_dir = "/var/lib/simgate"
database_url = "postgresql+asyncpg://simgate@127.0.0.1/simgate"

[http]
port = 9000
trusted_proxies = ["10.0.0.1"]

[worker]
expired_lease_policy = "resend"

[billing]
default_sms_price = 0.02   # a TOML number is taken as its text

[lines.a]
driver = "sim"
ports = 2

[lines.b]
seed = 7

[[routes]]
prefix = ""
lines = ["a"]

[[routes]]
prefix = "86"
lines = ["b", "a"]

[itnio]
timestamp_window = 600
""",
    )
    s = load_settings(path)
    assert s.data_dir == Path("/var/lib/simgate")
    assert s.effective_database_url == "postgresql+asyncpg://simgate@127.0.0.1/simgate"
    assert s.http.port == 9000
    assert s.http.trusted_proxies == ("10.0.0.1",)
    assert s.worker.expired_lease_policy == "resend"
    assert s.billing.default_sms_price == "0.02"
    assert set(s.lines) == {"a", "b"}
    a, b = s.lines["a"], s.lines["b"]
    assert isinstance(a, SimLineSettings)
    assert isinstance(b, SimLineSettings)
    assert a.ports == 2
    assert b.seed == 7
    assert s.routes[1] == Route(prefix="86", lines=("b", "a"))
    assert s.itnio == {"timestamp_window": 600}


def test_environment_overlays_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nport = 9000\nhost = '0.0.0.0'\n[worker]\nbatch_size = 10\n")
    env = {
        "SIMGATE_HTTP__PORT": "9100",
        "SIMGATE_WORKER__MAX_ATTEMPTS": "3",
        "SIMGATE_LINES__SIM__PORTS": "4",
        "SIMGATE_HTTP__TRUSTED_PROXIES": '["10.0.0.1", "10.0.0.2"]',
        "SIMGATE_HTTP__TLS": "true",
        "SIMGATE_MASTER_KEY": "1234567890123456",  # digits: JSON reads a number
        "SIMGATE_BILLING__DEFAULT_SMS_PRICE": "0.05",
        "SIMGATE_LOG_LEVEL": "debug",
        "SIMGATE_CONFIG": str(path),  # names the file; not a setting
        "SIMGATE_TEST_PG_URL": "ignored",  # the test suite's own variables
        "HOME": "/root",
    }
    s = load_settings(path, environ=env)
    assert s.http.port == 9100  # environment beats the file
    assert s.http.host == "0.0.0.0"  # the file beats the default
    assert s.worker.batch_size == 10
    assert s.worker.max_attempts == 3
    line = s.lines["sim"]
    assert isinstance(line, SimLineSettings)
    assert line.ports == 4
    assert s.http.trusted_proxies == ("10.0.0.1", "10.0.0.2")
    assert s.http.tls is True
    assert s.master_key == "1234567890123456"
    assert s.billing.default_sms_price == "0.05"
    assert s.log_level == "debug"


def test_overrides_beat_environment_and_none_is_ignored(tmp_path: Path) -> None:
    env = {"SIMGATE_HTTP__PORT": "9100", "SIMGATE_DATA_DIR": "/env"}
    s = load_settings(
        None, environ=env, overrides={"http.port": 9200, "data_dir": None, "http.host": "::1"}
    )
    assert s.http.port == 9200
    assert s.http.host == "::1"
    assert s.data_dir == Path("/env")


def test_commit_is_to_the_disk_unless_the_operator_says_os(tmp_path: Path) -> None:
    assert load_settings(None).commit == "disk"  # a 2xx survives a power cut
    assert load_settings(write(tmp_path, 'commit = "os"\n')).commit == "os"
    assert load_settings(None, environ={"SIMGATE_COMMIT": "os"}).commit == "os"


def test_settings_are_frozen() -> None:
    s = load_settings(None)
    with pytest.raises(Exception, match="frozen"):
        s.http.port = 1


def _error(tmp_path: Path, *, toml: str | None = None, env: dict[str, str] | None = None) -> str:
    path = write(tmp_path, toml) if toml is not None else None
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=env or {})
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        ({"SIMGATE_HTTP__PORT": "abc"}, ["http.port", "integer"]),
        ({"SIMGATE_HTTP__PORT": "70000"}, ["http.port", "65535"]),
        ({"SIMGATE_NOPE": "1"}, ["nope", "not permitted"]),
        ({"SIMGATE_HTTP__NOPE": "1"}, ["http.nope", "not permitted"]),
        ({"SIMGATE_WORKER__BATCH_SIZE": "0"}, ["worker.batch_size"]),
        ({"SIMGATE_WORKER__EXPIRED_LEASE_POLICY": "maybe"}, ["worker.expired_lease_policy"]),
        ({"SIMGATE_LINES__SIM__PORTS": "many"}, ["lines.sim.ports", "integer"]),
        ({"SIMGATE_LINES__X__FAILURE_RATIO": "2"}, ["lines.x.failure_ratio"]),
        ({"SIMGATE_LINES__X__DRIVER": "fax"}, ["lines.x", "fax"]),
        ({"SIMGATE_BILLING__DEFAULT_SMS_PRICE": "cheap"}, ["billing.default_sms_price", "cheap"]),
        ({"SIMGATE_DEMO__BALANCE": "lots"}, ["demo.balance"]),
        ({"SIMGATE_LOG_LEVEL": "loud"}, ["log_level"]),
        ({"SIMGATE_COMMIT": "memory"}, ["invalid setting commit", "'disk' or 'os'"]),
        ({"SIMGATE_HTTP": "5", "SIMGATE_HTTP__PORT": "1"}, ["http"]),
        ({"SIMGATE_HTTP__PORT": "x", "SIMGATE_WORKER__BATCH_SIZE": "y"}, ["and 1 more"]),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, env: dict[str, str], fragments: list[str]) -> None:
    message = _error(tmp_path, env=env)
    for fragment in fragments:
        assert fragment in message


def test_unknown_route_line(tmp_path: Path) -> None:
    message = _error(tmp_path, toml='[[routes]]\nprefix = "86"\nlines = ["sim", "smsc9"]\n')
    assert "routes" in message
    assert "'smsc9'" in message


def test_route_prefix_must_be_digits(tmp_path: Path) -> None:
    message = _error(tmp_path, toml='[[routes]]\nprefix = "+86"\nlines = ["sim"]\n')
    assert "routes.0.prefix" in message


def test_bad_toml(tmp_path: Path) -> None:
    message = _error(tmp_path, toml="[http\nport = 1\n")
    assert "not valid TOML" in message
    assert "simgate.toml" in message


def test_bad_toml_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"data_dir = '\xe9'\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*nothere\.toml"):
        load_settings(tmp_path / "nothere.toml")


def test_directory_as_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path)


def test_env_section_clash_with_a_value(tmp_path: Path) -> None:
    message = _error(tmp_path, toml="http = 5\n", env={"SIMGATE_HTTP__PORT": "1"})
    assert "SIMGATE_HTTP__PORT" in message


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"retries": 3}, "invalid setting push.retries: "),
        ({"total_timeout_seconds": 0}, "invalid setting push.total_timeout_seconds: "),
        ({"lease_seconds": 10}, "lease_seconds must be at least"),
    ],
)
def test_the_push_section_is_typed_at_start(section: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(overrides={"push": section})
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert load_settings(overrides={"push": {"guard": False}}).push.guard is False


# ---- the SIP voice line and voice routes (issue 17) -------------------------------------------
SIP_TOML = """
[voice.lines.sim-voice]
[voice.lines.trunk]
driver = "sip"
proxy = "sip.example.net:5080"
transport = "tcp"
username = "u"
password = "p"
register = true
rtp_ports = "20000-20099"
codecs = ["PCMA"]
dtmf = "info"
calls_per_second = 2
max_concurrent = 4

[[voice.routes]]
prefix = "86"
lines = ["trunk"]
"""


def test_a_sip_voice_line_and_a_voice_route(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(SIP_TOML)
    voice = load_settings(cfg).voice
    trunk = voice.lines["trunk"]
    assert isinstance(trunk, SipVoiceLineSettings)
    assert (trunk.proxy_address, trunk.transport, trunk.rtp_range) == (
        ("sip.example.net", 5080),
        "tcp",
        (20000, 20099),
    )
    assert (trunk.codecs, trunk.dtmf, trunk.register_with_trunk) == (("PCMA",), "info", True)
    assert [(r.prefix, r.lines) for r in voice.routes] == [("86", ("trunk",))]
    assert voice.lines["sim-voice"].driver == "sim"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (('rtp_ports = "20000-20099"', 'rtp_ports = "20099-20000"'), "rtp_ports"),
        (('proxy = "sip.example.net:5080"', 'proxy = "x:99999"'), "host:port"),
        (('dtmf = "info"', 'dtmf = "sms"'), "dtmf"),
        (('lines = ["trunk"]', 'lines = ["nope"]'), "unknown voice line 'nope'"),
        (('codecs = ["PCMA"]', 'codecs = ["G729"]'), "codecs"),
    ],
)
def test_bad_sip_settings_name_the_key(tmp_path: Path, change: tuple[str, str], words: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(SIP_TOML.replace(*change))
    with pytest.raises(ConfigError, match=words):
        load_settings(cfg)


def test_a_bad_sip_line_setting_names_the_line_not_the_driver_tag(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(SIP_TOML.replace("calls_per_second = 2", "calls_per_second = -1"))
    with pytest.raises(
        ConfigError, match=r"^invalid setting voice\.lines\.trunk\.calls_per_second:"
    ):
        load_settings(cfg)
