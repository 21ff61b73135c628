"""The "SMS to HTTP" push settings of /smsoutbox/get_config and set_config (seed 002 §2.2.2-3).

Stored per account as a small JSON document under :func:`doc_key`; the push outbox loads it
for the push format (push.py), which parses it with :meth:`PushConfig.from_doc`. The
``url_*`` name fields are the query-parameter *names* the receiver wants (spec §3.4);
``url_user_defined`` is an extra query string appended verbatim. Defaults for the names are
the ones the OpenVox demo receiver reads (§3.4: ``num``, ``port``, ``portname``, ``message``,
``time``, ``imsi``, ``status``); the firmware's own defaults are unknown (§5.7).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from simgate.api.dialects.openvox.envelope import BadRequest, Fields, as_int

SWITCHES = ("enable", "reports_enable", "results_enable")
NAME_FIELDS = (
    "url_from_num",
    "url_to_num",
    "url_portname",
    "url_message",
    "url_time",
    "url_imsi",
    "url_status",
)
MAX_NAME = 64
MAX_HOST = 253
MAX_PATH = 1024
MAX_USER_DEFINED = 1024
# Characters that would break the query string the name or the extra part is placed in.
_NAME_FORBIDDEN = set("&=#?%+ ")
_URL_FORBIDDEN = set("# \"'<>\\^`{|}")


def doc_key(account_id: int) -> str:
    return f"openvox.push.{account_id}"


@dataclass(frozen=True, slots=True)
class PushConfig:
    enable: int = 0
    reports_enable: int = 0
    results_enable: int = 0
    url_http: str = "http"
    url_host: str = ""
    url_port: str = ""
    url_path: str = "/"
    url_from_num: str = "num"
    url_to_num: str = "port"
    url_portname: str = "portname"
    url_message: str = "message"
    url_time: str = "time"
    url_imsi: str = "imsi"
    url_status: str = "status"
    url_user_defined: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def any_enabled(self) -> bool:
        return bool(self.enable or self.reports_enable or self.results_enable)

    def base_url(self) -> str:
        """``{url_http}://{url_host}:{url_port}{url_path}`` (§3.4); no port part when empty."""
        host = f"[{self.url_host}]" if ":" in self.url_host else self.url_host
        port = f":{self.url_port}" if self.url_port else ""
        return f"{self.url_http}://{host}{port}{self.url_path}"

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> PushConfig:
        if not doc:
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


def apply_changes(current: PushConfig, given: Fields) -> PushConfig:
    """The config with the fields present in the request changed; others keep their value.

    Raises BadRequest naming the first bad field.
    """
    changes: dict[str, Any] = {}
    for name in SWITCHES:
        if given.has(name):
            value = as_int(name, given.raw(name))
            if value not in (0, 1):
                raise BadRequest(f"{name} must be 1 (on) or 0 (off)")
            changes[name] = value
    if given.has("url_http"):
        scheme = (given.string("url_http", max_len=8) or "").lower()
        if scheme not in ("http", "https"):
            raise BadRequest("url_http must be http or https")
        changes["url_http"] = scheme
    if given.has("url_host"):
        changes["url_host"] = _host(given.string("url_host", max_len=MAX_HOST) or "")
    if given.has("url_port"):
        changes["url_port"] = _port(given.raw("url_port"))
    if given.has("url_path"):
        changes["url_path"] = _path(given.string("url_path", max_len=MAX_PATH) or "")
    for name in NAME_FIELDS:
        if given.has(name):
            changes[name] = _param_name(name, given.string(name, max_len=MAX_NAME) or "")
    if given.has("url_user_defined"):
        extra = given.string("url_user_defined", max_len=MAX_USER_DEFINED) or ""
        if _bad_chars(extra, _URL_FORBIDDEN):
            raise BadRequest("url_user_defined must be a query string without spaces or '#'")
        changes["url_user_defined"] = extra.lstrip("&")
    updated = replace(current, **changes)
    if updated.any_enabled and not updated.url_host:
        raise BadRequest("url_host is required when a push is enabled")
    return updated


def _bad_chars(text: str, forbidden: set[str]) -> bool:
    return any(ch in forbidden or ord(ch) < 0x21 or ord(ch) == 0x7F for ch in text)


def _host(host: str) -> str:
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host and (_bad_chars(host, _URL_FORBIDDEN | set("/?@&=%")) or host.count(":") == 1):
        raise BadRequest("url_host must be a host name or an IP address (no scheme, port or path)")
    return host


def _port(raw: Any) -> str:
    if raw == "":
        return ""
    port = as_int("url_port", raw)
    if not 1 <= port <= 65535:
        raise BadRequest("url_port must be 1..65535")
    return str(port)


def _path(path: str) -> str:
    if not path:
        return "/"
    if _bad_chars(path, _URL_FORBIDDEN | {"?"}):
        raise BadRequest("url_path must be a path without spaces, '?' or '#'")
    return path if path.startswith("/") else "/" + path  # §3.4: stored with a leading "/"


def _param_name(field: str, name: str) -> str:
    if _bad_chars(name, _NAME_FORBIDDEN):
        raise BadRequest(f"{field} must be a query-parameter name (no spaces, '&', '=', '#', '?')")
    return name
