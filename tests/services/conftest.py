"""Fixtures of the service tests."""

from __future__ import annotations

import pytest

from simgate.runtime import Runtime
from tests.support.changes import Batches, record_changes


@pytest.fixture
def batches(runtime: Runtime) -> Batches:
    """Every non-empty batch of changes, in the order the units of work handed them on."""
    return record_changes(runtime)
