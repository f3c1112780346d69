"""The contract's vocabulary: error codes, their HTTP statuses, and what a provider's answer means."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum


class ErrorCode(StrEnum):
    MISSING_INPUT_RESPONSE = "missing-input-response"
    INVALID_INPUT_RESPONSE = "invalid-input-response"
    TIMEOUT_OR_DUPLICATE = "timeout-or-duplicate"
    SITEKEY_MISMATCH = "sitekey-mismatch"
    BAD_REQUEST = "bad-request"
    ORIGIN_NOT_ALLOWED = "origin-not-allowed"
    PAYLOAD_TOO_LARGE = "payload-too-large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    MISSING_INPUT_SECRET = "missing-input-secret"
    INVALID_INPUT_SECRET = "invalid-input-secret"
    INTERNAL_ERROR = "internal-error"
    INVALID_FORM = "invalid-form"
    RATE_LIMITED = "rate-limited"
    DELIVERY_FAILED = "delivery-failed"

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self]


_HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.MISSING_INPUT_RESPONSE: 400,
    ErrorCode.INVALID_INPUT_RESPONSE: 400,
    ErrorCode.TIMEOUT_OR_DUPLICATE: 400,
    ErrorCode.SITEKEY_MISMATCH: 400,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.ORIGIN_NOT_ALLOWED: 403,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.MISSING_INPUT_SECRET: 500,
    ErrorCode.INVALID_INPUT_SECRET: 500,
    ErrorCode.INTERNAL_ERROR: 502,
    ErrorCode.INVALID_FORM: 400,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.DELIVERY_FAILED: 503,
}


# The reason of a repeat whose form differs from the first (an edited form sent with the same
# CAPTCHA): answered timeout-or-duplicate, and the HTML page says what happened.
CHANGED_FORM_REASON = "form already sent with this CAPTCHA; the changes were not sent"


class Verdict(Enum):
    """The three classes every provider answer falls into (docs/forms.md, Failure policy)."""

    VERIFIED = "verified"
    REJECTED = "rejected"
    UNVERIFIABLE = "unverifiable"


@dataclass(frozen=True)
class ProviderAnswer:
    """What one provider answer means, before the failure policy is applied.

    `error_code` is what a rejection (or, under the closed policy, an unverifiable answer) reports;
    `reason` is a short, secret-free explanation for logs and metrics.
    """

    verdict: Verdict
    reason: str
    error_code: ErrorCode | None = None
    challenge_ts: datetime | None = None
    hostname: str | None = None
    sitekey: str | None = None
    solve_time_ms: int | None = None
    interactive: bool | None = None
    # Where the token was solved, as the provider reports it (Friendly v2): bound to ALLOWED_ORIGINS.
    origin: str | None = None
    # False where accepting under the open policy would let anyone force acceptance (a 429).
    degradable: bool = True

    @classmethod
    def verified(cls, **metadata: object) -> ProviderAnswer:
        return cls(Verdict.VERIFIED, "verified", **metadata)  # type: ignore[arg-type]

    @classmethod
    def rejected(cls, code: ErrorCode, reason: str) -> ProviderAnswer:
        return cls(Verdict.REJECTED, reason, code)

    @classmethod
    def unverifiable(cls, reason: str, code: ErrorCode = ErrorCode.INTERNAL_ERROR) -> ProviderAnswer:
        return cls(Verdict.UNVERIFIABLE, reason, code)

    @classmethod
    def rate_limited(cls) -> ProviderAnswer:
        """The provider's 429: anyone can cause it by flooding junk tokens, so it is never accepted."""
        return cls(
            Verdict.UNVERIFIABLE, "provider rate limit (429)", ErrorCode.INTERNAL_ERROR, degradable=False
        )


class RequestRejected(Exception):
    """A cheap check failed: the request is answered with `code` and no outbound call is made."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
