"""A verification outcome as the submission store keeps it, and back (JSON-safe, no token)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from captcha_verify.outcome import ErrorCode, ProviderAnswer, Verdict
from captcha_verify.policy import Decision, Outcome
from captcha_verify.records import Attempt

Kept = dict[str, Any]


def keep(attempt: Attempt) -> Kept:
    """What a repeat of the request needs to answer exactly as the first did."""
    answer, decision = attempt.answer, attempt.decision
    return {
        "outcome": decision.outcome.value,
        "error_code": decision.error_code.value if decision.error_code else None,
        "verdict": answer.verdict.value,
        "reason": answer.reason,
        "answer_error_code": answer.error_code.value if answer.error_code else None,
        "challenge_ts": answer.challenge_ts.isoformat() if answer.challenge_ts else None,
        "hostname": answer.hostname,
        "sitekey": answer.sitekey,
        "solve_time_ms": answer.solve_time_ms,
        "interactive": answer.interactive,
        "provider_status": attempt.provider_status,
        "provider_latency_ms": attempt.provider_latency_ms,
    }


def restore(kept: Kept, **request: Any) -> Attempt:
    """The first request's outcome, for this request (its own id, origin and time in `request`)."""
    answer = ProviderAnswer(
        verdict=Verdict(kept["verdict"]),
        reason=kept["reason"],
        error_code=_code(kept["answer_error_code"]),
        challenge_ts=datetime.fromisoformat(kept["challenge_ts"]) if kept["challenge_ts"] else None,
        hostname=kept["hostname"],
        sitekey=kept["sitekey"],
        solve_time_ms=kept["solve_time_ms"],
        interactive=kept["interactive"],
    )
    return Attempt(
        answer=answer,
        decision=Decision(Outcome(kept["outcome"]), _code(kept["error_code"])),
        reached_provider=True,
        provider_status=kept["provider_status"],
        provider_latency_ms=kept["provider_latency_ms"],
        **request,
    )


def _code(value: str | None) -> ErrorCode | None:
    return ErrorCode(value) if value else None
