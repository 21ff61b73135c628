"""domain/values.py: per-request value types, frozen for the type checker only."""

from __future__ import annotations

import dataclasses

import pytest

from simgate.api.dialects.openvox.auth import Caller
from simgate.domain.records import NewMessage
from simgate.domain.values import value_type
from simgate.services.accept_writer import AcceptJob
from simgate.services.sending import Accepted, Recipient, SendOutcome, SendRequest


@value_type
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class FrozenPoint:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()


def test_a_value_type_compares_and_hashes_as_a_frozen_dataclass() -> None:
    a, b = Point(1, 2, ("t",)), Point(1, 2, ("t",))
    assert a == b
    assert a != Point(1, 3)
    assert hash(a) == hash(b) == hash(FrozenPoint(1, 2, ("t",)))  # same fields, same hash
    assert {a: "kept"}[b] == "kept"
    assert repr(a) == "Point(x=1, y=2, tags=('t',))"
    assert dataclasses.replace(a, y=5) == Point(1, 5, ("t",))
    assert [f.name for f in dataclasses.fields(Point)] == ["x", "y", "tags"]


def test_a_value_type_has_slots_and_no_instance_dict() -> None:
    p = Point(1)
    assert vars(Point)["__slots__"] == ("x", "y", "tags")
    with pytest.raises(AttributeError):
        p.z = 3  # type: ignore[attr-defined]


def test_type_checkers_see_value_types_frozen() -> None:
    """PEP 681: what mypy reads to refuse an assignment to a field."""
    marker = value_type.__dataclass_transform__  # type: ignore[attr-defined]
    # Python 3.11's typing keeps the parameter it does not know of (3.12's) in "kwargs".
    assert marker.get("frozen_default", marker["kwargs"].get("frozen_default")) is True


@pytest.mark.parametrize(
    "cls", [SendRequest, Recipient, Accepted, SendOutcome, AcceptJob, NewMessage, Caller]
)
def test_the_values_built_on_every_send_are_value_types(cls: type) -> None:
    """Unfrozen at run time (an assignment per field, not an object.__setattr__ call),
    hashable as before (issue 15)."""
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert not params.frozen
    assert params.unsafe_hash
    assert "__slots__" in vars(cls)
