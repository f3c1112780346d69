"""The one structured log line and the EMF metrics each verification attempt leaves in CloudWatch.

Metric names and log fields are a contract: the template's alarms, dashboard and saved queries
read them (see docs/operations.md).

Every string a visitor can choose (the Origin header, up to API Gateway's 10 KiB) or a provider's
answer carries (site key, error codes) is bounded here and nowhere else: the logger's formatter
cuts every field of every line, whatever the call site logged, and the challenge record and the
bus event take their free text through `bounded`. Without it, one request a second with a
10,000-character Origin writes about 17 GB of logs a day.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from captcha_verify.policy import Outcome

if TYPE_CHECKING:
    from captcha_verify.records import Attempt

LOG_MESSAGE = "verification"

# Any one string field in a log line, record or event (an origin, a site key, a reason).
MAX_TEXT_LENGTH = 256
# A traceback keeps its head (where it happened) and its tail (what happened), cut in between.
MAX_TRACE_LENGTH = 4096
MAX_LIST_ITEMS = 10
# No log line is longer, whatever a visitor sends. A JSON-escaped control character takes six
# bytes, so a line over this is written again with every field cut harder (see BoundedFormatter).
MAX_LINE_BYTES = 8192
_CUT = "…"
# JSON leaves these raw in a string, and a reader splitting on Unicode line breaks would cut the line.
_LINE_BREAKS = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})
# (text, traceback) limits, tried in turn until the line fits; the last is used whatever it gives.
_LINE_LIMITS = ((MAX_TEXT_LENGTH, MAX_TRACE_LENGTH), (32, 1024), (32, 32))

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
        "origin": attempt.origin,
        "request_id": attempt.request_id,
    }
    return {name: value for name, value in fields.items() if value is not None}


def bounded(value: Any, limit: int = MAX_TEXT_LENGTH) -> Any:
    """`value` with every string in it at most `limit` characters (a cut one ends in "…"), every
    list and mapping at most MAX_LIST_ITEMS long, and anything else that is not a number, a bool
    or None as its bounded text. A lone surrogate becomes "?", so the line can always be written."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [bounded(item, limit) for item in value[:MAX_LIST_ITEMS]]
    if isinstance(value, Mapping):
        return {str(k)[:limit]: bounded(v, limit) for k, v in list(value.items())[:MAX_LIST_ITEMS]}
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[: max(limit - 1, 0)] + _CUT
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def bounded_trace(text: str, limit: int = MAX_TRACE_LENGTH) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return bounded(f"{text[:half]}{_CUT}{text[-half:]}", limit + 1)


class BoundedFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON line with every field bounded: no call site can log an unbounded string.
    The traceback is the `exception` field only (Powertools' structured `stack_trace` repeats it)."""

    def __init__(self) -> None:
        super().__init__(serialize_stacktrace=False)

    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        line = ""
        for text_limit, trace_limit in _LINE_LIMITS:
            fields = {
                name: bounded_trace(str(value), trace_limit)
                if name == "exception"
                else bounded(value, text_limit)
                for name, value in log.items()
            }
            line = super().serialize(fields).translate(_LINE_BREAKS)  # type: ignore[arg-type]
            if len(line.encode("utf-8")) <= MAX_LINE_BYTES:
                break
        return line


def bounded_logger() -> Logger:
    """The functions' logger: Powertools' Logger with the bounded formatter. The first Logger of a
    service configures the one handler they all share, so one made before this (by an import, a
    test) would silently keep its unbounded formatter: it is replaced."""
    logger = Logger(logger_formatter=BoundedFormatter())
    if not isinstance(logger.registered_formatter, BoundedFormatter):
        logger.registered_handler.setFormatter(BoundedFormatter())
    return logger


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
