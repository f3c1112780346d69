"""From a provider's answer to the user's answer: sitekey binding and the failure policy."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from captcha_verify.config import FailurePolicy, normalize_origin, origin_host
from captcha_verify.outcome import ErrorCode, ProviderAnswer, Verdict


class Outcome(StrEnum):
    VERIFIED = "verified"
    REJECTED = "rejected"
    DEGRADED = "degraded"  # could not verify, accepted under the open policy
    FAILED = "failed"  # could not verify, refused under the closed policy
    UNDELIVERED = "undelivered"  # verified (or degraded), but the bus did not take the submission


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    error_code: ErrorCode | None = None

    @property
    def success(self) -> bool:
        return self.outcome in (Outcome.VERIFIED, Outcome.DEGRADED)

    @property
    def degraded(self) -> bool:
        return self.outcome is Outcome.DEGRADED

    @property
    def http_status(self) -> int:
        return self.error_code.http_status if self.error_code else 200

    @property
    def error_codes(self) -> list[str]:
        return [self.error_code.value] if self.error_code else []


def bind_sitekey(answer: ProviderAnswer, expected: str | None) -> ProviderAnswer:
    """A verified token made for another site key is a rejection; unknown site keys cannot be bound."""
    if answer.verdict is not Verdict.VERIFIED or not expected or answer.sitekey is None:
        return answer
    if answer.sitekey == expected:
        return answer
    return replace(
        answer,
        verdict=Verdict.REJECTED,
        reason="token made for another site key",
        error_code=ErrorCode.SITEKEY_MISMATCH,
    )


def bind_origin(answer: ProviderAnswer, allowed: frozenset[str]) -> ProviderAnswer:
    """A verified token solved outside ALLOWED_ORIGINS is a site mismatch: the Origin header of the
    post alone can be set by any non-browser client. Friendly v2 reports the page's origin, which is
    bound whole; Turnstile reports only its hostname, which is bound to the allowed origins' hosts."""
    if answer.verdict is not Verdict.VERIFIED or not allowed:
        return answer
    if answer.origin is not None:
        bound = normalize_origin(answer.origin) in allowed
    elif answer.hostname is not None:
        bound = answer.hostname.lower().strip("[]") in {origin_host(origin) for origin in allowed}
    else:
        return answer
    if bound:
        return answer
    return replace(
        answer,
        verdict=Verdict.REJECTED,
        reason="token solved on a site that is not allowed",
        error_code=ErrorCode.SITEKEY_MISMATCH,
    )


def decide(answer: ProviderAnswer, policy: FailurePolicy) -> Decision:
    match answer.verdict:
        case Verdict.VERIFIED:
            return Decision(Outcome.VERIFIED)
        case Verdict.REJECTED:
            return Decision(Outcome.REJECTED, answer.error_code or ErrorCode.INVALID_INPUT_RESPONSE)
        case Verdict.UNVERIFIABLE if policy is FailurePolicy.OPEN and answer.degradable:
            return Decision(Outcome.DEGRADED)
        case _:
            return Decision(Outcome.FAILED, answer.error_code or ErrorCode.INTERNAL_ERROR)
