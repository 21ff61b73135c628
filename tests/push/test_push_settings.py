"""The [push] section: defaults, and one clear error line for bad values."""

from __future__ import annotations

import pytest

from simgate.errors import ConfigError
from simgate.push.settings import PushSettings, load_push_settings


def test_defaults_follow_the_issue() -> None:
    s = load_push_settings({})
    assert (s.connect_timeout_seconds, s.total_timeout_seconds) == (5.0, 15.0)
    assert s.give_up_after_seconds == 24 * 3600
    assert s.guard
    assert s.allow_cidrs == ()
    assert s.test_planner_url is None


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"allow_cidrs": ["10.0.0.0/33"]}, "push.allow_cidrs"),
        ({"allow_cidrs": ["not-a-net"]}, "not an address or CIDR"),
        ({"lease_seconds": 10}, "lease_seconds must be at least"),
        ({"connect_timeout_seconds": 20}, "connect_timeout_seconds exceeds"),
        ({"total_timeout_seconds": 0}, "push.total_timeout_seconds"),
        ({"per_endpoint_concurrency": 0}, "push.per_endpoint_concurrency"),
        ({"retries": 3}, "push.retries"),
    ],
)
def test_bad_values_are_one_line_errors(section: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_push_settings(section)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_allow_list_parses_to_networks() -> None:
    s = PushSettings(allow_cidrs=("127.0.0.1", "192.168.10.0/24", "fd00::/8"))
    assert [str(n) for n in s.networks()] == ["127.0.0.1/32", "192.168.10.0/24", "fd00::/8"]
