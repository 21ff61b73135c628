"""The modem, SIP voice line and SMPP server models (simgate/settings_lines.py) on their own;
read from a file and the environment in tests/test_settings.py."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from simgate import settings
from simgate.settings_lines import ModemLineSettings, SipVoiceLineSettings, SmppServerSettings


def test_settings_exports_the_same_models() -> None:
    assert settings.ModemLineSettings is ModemLineSettings
    assert settings.SipVoiceLineSettings is SipVoiceLineSettings
    assert settings.SmppServerSettings is SmppServerSettings
    assert set(settings.__all__) >= {
        "ModemLineSettings",
        "SipVoiceLineSettings",
        "SmppServerSettings",
    }


def test_modem_ports_and_their_owners() -> None:
    modem = ModemLineSettings(ports=["/dev/ttyUSB0", "socket://10.0.0.5:4001"], rate_per_minute=6)
    assert (modem.driver, modem.port_rate_per_minute, modem.exclusive) == ("modem", 6, True)
    assert ModemLineSettings(ports=["a", "b"], port_owners={1: "acme"}).port_owners == {1: "acme"}
    with pytest.raises(ValidationError, match=r"port_owners: port 2 is not in 0\.\.1"):
        ModemLineSettings(ports=["a", "b"], port_owners={2: "acme"})
    with pytest.raises(ValidationError, match="ports"):
        ModemLineSettings(ports=[])
    with pytest.raises(ValidationError, match="pin"):
        ModemLineSettings(ports=["a"], pin="12")


def test_sip_proxy_address_and_rtp_range() -> None:
    trunk = SipVoiceLineSettings(driver="sip", proxy="[::1]:5080", rtp_ports="30000-30010")
    assert (trunk.proxy_address, trunk.rtp_range) == (("::1", 5080), (30000, 30010))
    assert SipVoiceLineSettings(driver="sip", proxy="pbx.lan").proxy_address == ("pbx.lan", 5060)
    with pytest.raises(ValidationError, match="is not host:port"):
        SipVoiceLineSettings(driver="sip", proxy="pbx:0")
    with pytest.raises(ValidationError, match="rtp_ports must be"):
        SipVoiceLineSettings(driver="sip", proxy="pbx", rtp_ports="80-90")
    with pytest.raises(ValidationError, match="codecs lists a codec twice"):
        SipVoiceLineSettings(driver="sip", proxy="pbx", codecs=("PCMU", "PCMU"))


def test_smpp_server_tls_port_needs_its_certificate() -> None:
    assert SmppServerSettings().enabled is False
    ok = SmppServerSettings(tls_port=2776, tls_cert="c.pem", tls_key="k.pem")
    assert ok.tls_port == 2776
    with pytest.raises(ValidationError, match="tls_port needs tls_cert and tls_key"):
        SmppServerSettings(tls_port=2776, tls_cert="c.pem")


def test_the_models_are_strict() -> None:
    with pytest.raises(ValidationError, match="extra"):
        SmppServerSettings(nope=1)  # type: ignore[call-arg]
    server = SmppServerSettings(system_type=12)  # type: ignore[arg-type]
    assert server.system_type == "12"  # a number from the environment, as its text
    with pytest.raises(ValidationError, match="frozen"):
        server.port = 1
