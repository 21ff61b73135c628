"""Pure renderings of voice calls and files for the itniotech dialect (spec §1.13-§1.16, §7).

Call records (recordGroup, recordGroupQuery) carry times as ISO 8601 strings with the
account's offset; the push (pushVoiceReport) carries the same instants as epoch milliseconds.
Amounts are plain decimal strings (``format_amount``); the four quote-currency fields appear
only when the call was billed in a currency other than USD (spec §1.14, seed 003).
"""

from __future__ import annotations

from typing import Any

from simgate.api.dialects.itnio import render
from simgate.domain.billing import USD, convert
from simgate.domain.calls import CallRecord, CallState, VoiceFile
from simgate.domain.money import format_amount


def iso_or_null(ms: int | None, tz: str) -> str | None:
    """A time the call reached, or JSON null when it never got there (no fake "")."""
    return None if ms is None else render.iso(ms, tz)


def termination_code(r: CallRecord) -> str:
    """§7: the final SIP code as text ("200" answered); "" while the call is not finished."""
    if r.state is not CallState.DONE or r.sip_code is None:
        return ""
    return str(r.sip_code)


def termination_reason(r: CallRecord) -> str:
    if r.state is not CallState.DONE:
        return ""
    return r.reason or ""


def quote_fields(r: CallRecord) -> dict[str, str]:
    """settleRate, quoteExchange, currency, settlePay: only for non-USD quotes (§1.14)."""
    if r.currency == USD:
        return {}
    quote = r.quote_exchange_micros
    settle_rate = r.settle_rate_micros
    if settle_rate is None and quote is not None:
        # Not billed yet: the rate in the quote currency is known from the accept snapshot.
        settle_rate = convert(r.rate_micros, quote)
    return {
        "settleRate": "" if settle_rate is None else format_amount(settle_rate),
        "quoteExchange": "" if quote is None else format_amount(quote),
        "currency": r.currency,
        "settlePay": format_amount(r.settle_pay_micros or 0),
    }


def record_item(r: CallRecord, tz: str) -> dict[str, Any]:
    """One record of recordGroup / recordGroupQuery, fields in the seed's order (seed 003)."""
    code = termination_code(r)
    return {
        "voiceId": str(r.id),
        "callee": r.callee,
        "displayNum": r.display_num,
        "code": r.area,
        "submitTime": iso_or_null(r.submit_ms, tz),
        "callTime": iso_or_null(r.call_ms, tz),
        "ringingTime": iso_or_null(r.ringing_ms, tz),
        "answerTime": iso_or_null(r.answer_ms, tz),
        "hangupTime": iso_or_null(r.hangup_ms, tz),
        "callDuration": r.call_duration_s,
        "chargedDuration": r.charged_duration_s,
        "terminationCode": code,
        "terminationReason": termination_reason(r),
        "sipCode": code,  # §7: records carry sipCode with the same value
        "cost": format_amount(r.cost_micros),
        "billPeriod": r.bill_period,
        "rate": format_amount(r.rate_micros),
        "baseCost": format_amount(r.base_cost_micros),
        "voiceFileId": r.file_id,  # "" for TTS calls (sendCode plays no uploaded file)
        "feedbackValue": r.feedback_value,
        "calledInfo": r.called_info,
        **quote_fields(r),
    }


def ring_duration_s(r: CallRecord) -> int:
    """``ringDuration`` (§1.16): ringing until the answer, or until the hang-up when nobody
    answered; 0 when the phone never rang. Whole seconds to the nearest, like callDuration."""
    if r.ringing_ms is None:
        return 0
    end = r.answer_ms if r.answer_ms is not None else r.hangup_ms
    if end is None:
        return 0
    return (max(0, end - r.ringing_ms) + 500) // 1000


def push_item(r: CallRecord) -> dict[str, Any]:
    """pushVoiceReport (§1.16): Int ``type``, epoch-ms Long times (null when absent)."""
    code = termination_code(r)
    return {
        "voiceId": str(r.id),
        "type": int(r.kind),
        "callee": r.callee,
        "displayNum": r.display_num,
        "submitTime": r.submit_ms,
        "callTime": r.call_ms,
        "ringingTime": r.ringing_ms,
        "answerTime": r.answer_ms,
        "hangupTime": r.hangup_ms,
        "callDuration": r.call_duration_s,
        "chargedDuration": r.charged_duration_s,
        "billPeriod": r.bill_period,
        "code": r.area,
        "voiceFileId": r.file_id,
        "rate": format_amount(r.rate_micros),
        "baseCost": format_amount(r.base_cost_micros),
        "cost": format_amount(r.cost_micros),
        "terminationCode": code,
        "terminationReason": termination_reason(r),
        "sipCode": code,
        "feedbackValue": r.feedback_value,
        "calledInfo": r.called_info,
        "ringDuration": ring_duration_s(r),
        # With redials only the last attempt is pushed (§1.11); this says how many came before.
        "outRecallCount": r.recalls_done,
        **quote_fields(r),
    }


def file_item(f: VoiceFile) -> dict[str, str]:
    """A fileQuery record (§1.13)."""
    return {"fileId": f.file_id, "fileName": f.file_name}
