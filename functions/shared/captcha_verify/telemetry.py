"""The one structured log line and the EMF metrics each verification attempt leaves in CloudWatch.

Metric names and log fields are a contract: the template's alarms, dashboard and saved queries
read them (see the README's observability section).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from captcha_verify.policy import Outcome
from captcha_verify.records import MAX_ORIGIN_LENGTH, Attempt

LOG_MESSAGE = "verification"

OUTCOME_METRICS: dict[Outcome, str] = {
    Outcome.VERIFIED: "Verified",
    Outcome.REJECTED: "Rejected",
    Outcome.DEGRADED: "DegradedAcceptance",
    Outcome.FAILED: "ProviderError",
}
RECORD_WRITE_FAILED = "RecordWriteFailed"


def log_fields(attempt: Attempt) -> dict[str, Any]:
    """The log line's fields: never a secret, a raw token or an IP address."""
    answer, decision = attempt.answer, attempt.decision
    fields: dict[str, Any] = {
        "provider": attempt.provider,
        "outcome": decision.outcome.value,
        "success": decision.success,
        "error_codes": decision.error_codes,
        "degraded": decision.degraded,
        "reason": answer.reason,
        "reached_provider": attempt.reached_provider,
        "provider_status": attempt.provider_status,
        "provider_latency_ms": attempt.provider_latency_ms,
        "solve_time_ms": answer.solve_time_ms,
        "token_age_ms": attempt.token_age_ms,
        "interactive": answer.interactive,
        "sitekey": answer.sitekey,
        "token_sha256": attempt.token_sha256,
        # The Origin header is the client's to choose (up to API Gateway's 10 KiB): bounded, as in the record.
        "origin": attempt.origin[:MAX_ORIGIN_LENGTH] if attempt.origin else None,
        "request_id": attempt.request_id,
    }
    return {name: value for name, value in fields.items() if value is not None}


def provider_failed(attempt: Attempt) -> bool:
    """The provider (or our configuration) could not verify, whatever the policy made of it."""
    return attempt.decision.outcome in (Outcome.DEGRADED, Outcome.FAILED)


def report(attempt: Attempt, logger: Logger, metrics: EphemeralMetrics) -> None:
    fields = log_fields(attempt)
    if attempt.decision.degraded:
        logger.warning(LOG_MESSAGE, extra=fields)
    elif provider_failed(attempt):
        logger.error(LOG_MESSAGE, extra=fields)
    else:
        logger.info(LOG_MESSAGE, extra=fields)
    metrics.add_metric(name=OUTCOME_METRICS[attempt.decision.outcome], unit=MetricUnit.Count, value=1)
    if attempt.decision.degraded:
        # Counted under both names: the error-rate alarm sees every provider failure, and the
        # degraded alarm sees every acceptance made without verification.
        metrics.add_metric(name="ProviderError", unit=MetricUnit.Count, value=1)
    for name, value in (
        ("SolveTime", attempt.answer.solve_time_ms),
        ("TokenAge", attempt.token_age_ms),
        ("ProviderLatency", attempt.provider_latency_ms),
    ):
        if value is not None:
            metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=value)


def report_record_failure(
    error: Exception, attempt: Attempt, logger: Logger, metrics: EphemeralMetrics
) -> None:
    logger.error(
        "challenge record not written",
        extra={"provider": attempt.provider, "request_id": attempt.request_id, "error": type(error).__name__},
    )
    metrics.add_metric(name=RECORD_WRITE_FAILED, unit=MetricUnit.Count, value=1)


# Submission events: each leaves one log line (ids and reasons only, never a form value) and
# one metric. Alarmed: SubmissionCommitFailed (the store refused a verified submission, which went
# to the bus directly), SubmissionDeliveryFailed (a loss: neither the store nor the bus took it,
# the visitor was asked to send again) and SubmissionRelayFailed (the relay could not put one).
HONEYPOT_TRIPPED = "HoneypotTripped"
SUBMISSION_COMMITTED = "SubmissionCommitted"
SUBMISSION_COMMIT_FAILED = "SubmissionCommitFailed"
SUBMISSION_DELIVERED = "SubmissionDelivered"
SUBMISSION_DELIVERY_FAILED = "SubmissionDeliveryFailed"
SUBMISSION_RELAY_FAILED = "SubmissionRelayFailed"
DUPLICATE_REQUEST = "DuplicateRequest"
DUPLICATE_IN_FLIGHT = "DuplicateInFlight"
CHANGED_REPEAT = "ChangedRepeat"
IDEMPOTENCY_STORE_ERROR = "IdempotencyStoreError"
# The log message of a request answered from the store (make local's terminal marks it a repeat).
REPEAT_MESSAGE = "repeat answered from the submission store"


def report_event(
    logger: Logger,
    metrics: EphemeralMetrics,
    message: str,
    metric: str,
    *,
    level: str = "info",
    **fields: Any,
) -> None:
    getattr(logger, level)(
        message, extra={name: value for name, value in fields.items() if value is not None}
    )
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
