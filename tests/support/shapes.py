"""Comparing a response with a vendor sample by shape (spec: the sample responses)."""

from __future__ import annotations

from typing import Any


def assert_same_shape(got: Any, sample: Any, path: str = "") -> None:
    """Field by field, types included (values that are ids or times may differ)."""
    assert type(got) is type(sample), f"{path}: {type(got).__name__} != {type(sample).__name__}"
    if isinstance(sample, dict):
        assert set(sample) <= set(got), f"{path}: missing {set(sample) - set(got)}"
        for k, v in sample.items():
            assert_same_shape(got[k], v, f"{path}.{k}")
    elif isinstance(sample, list) and sample:
        assert len(got) == len(sample), path
        for i, (g, s) in enumerate(zip(got, sample, strict=True)):
            assert_same_shape(g, s, f"{path}[{i}]")
