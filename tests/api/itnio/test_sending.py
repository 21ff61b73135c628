"""sendSms fields without a database: the parse order and codes of spec §1.2, §1.3, §1.19."""

from __future__ import annotations

from typing import Any

import pytest

from simgate.api.dialects.itnio.envelope import ItnioError
from simgate.api.dialects.itnio.sending import MAX_CONTENT, SendItem
from simgate.api.dialects.itnio.settings import ItnioSettings

CFG = ItnioSettings()


def parse(cfg: ItnioSettings = CFG, **fields: Any) -> SendItem:
    data: dict[str, Any] = {"numbers": "8613800138000", "content": "hello", **fields}
    return SendItem.parse({k: v for k, v in data.items() if v is not ...}, cfg)


def code(cfg: ItnioSettings = CFG, **fields: Any) -> int:
    with pytest.raises(ItnioError) as info:
        parse(cfg, **fields)
    return info.value.code


def test_a_plain_item() -> None:
    item = parse(numbers=" 8613800138000, 8613800138001 ", senderId="ACME", orderId="a,b")
    assert item == SendItem(["8613800138000", "8613800138001"], "hello", "ACME", ["a", "b"])


def test_defaults_without_sender_and_order_ids() -> None:
    item = parse()
    assert (item.sender, item.order_ids) == ("", None)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"content": ...}, -4),
        ({"content": ""}, -4),
        ({"content": "x" * (MAX_CONTENT + 1)}, -5),
        ({"numbers": ...}, -8),
        ({"numbers": " , "}, -8),
        ({"content": 12}, -22),
        ({"content": "a\x00b"}, -22),
        ({"numbers": ["8613800138000"]}, -22),
        ({"senderId": "S" * 33}, -22),
        ({"orderId": "a,b"}, -22),  # two ids for one number (§1.19)
        ({"orderId": "o" * 65}, -22),
        # content is checked before numbers: the order a client would want to hear it
        ({"content": "", "numbers": ""}, -4),
    ],
)
def test_refusals(fields: dict[str, Any], expected: int) -> None:
    assert code(**fields) == expected


def test_operator_content_rules() -> None:
    words = ItnioSettings(sensitive_words=("casino",))
    assert code(words, content="Win at the CASINO") == -3
    templates = ItnioSettings(templates=(r"Your code is \d{6}",))
    assert parse(templates, content="Your code is 123456").content == "Your code is 123456"
    assert code(templates, content="Your code is 12345") == -6


def test_a_bad_template_fails_validation() -> None:
    with pytest.raises(ValueError, match="not a regular expression"):
        ItnioSettings(templates=("(",))
