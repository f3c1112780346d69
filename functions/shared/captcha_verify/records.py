"""The challenge log: one DynamoDB item per attempt that reached the secret/provider stage.

Key design: partition `provider`, sort `sk` = "<created_at>#<request_id>". created_at is a
fixed-width UTC timestamp, so one provider's records in a time range are one Query on an `sk`
range, newest first with ScanIndexForward=false, and two attempts in the same millisecond
still get distinct keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from captcha_verify.aws_clients import client
from captcha_verify.deadline import run_within
from captcha_verify.outcome import ProviderAnswer
from captcha_verify.policy import Decision
from captcha_verify.telemetry import bounded

# The write happens after the provider call: however DynamoDB behaves (throttled, silent), the
# answer waits at most this long for it (transport.RESERVED_SECONDS leaves room for it).
RECORD_WRITE_SECONDS = 2.0


def iso_millis(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_seconds(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_age_ms(answer: ProviderAnswer, now: datetime) -> int | None:
    if answer.challenge_ts is None:
        return None
    return max(0, round((now - answer.challenge_ts).total_seconds() * 1000))


@dataclass(frozen=True)
class Attempt:
    """Everything known about one verification attempt, for the record, the log line and metrics."""

    provider: str
    decision: Decision
    answer: ProviderAnswer
    created_at: datetime
    request_id: str
    reached_provider: bool = False
    token_sha256: str | None = None
    origin: str | None = None
    provider_status: int | None = None
    provider_latency_ms: int | None = None

    @property
    def token_age_ms(self) -> int | None:
        return token_age_ms(self.answer, self.created_at)


def build_record(attempt: Attempt, ttl_days: int) -> dict[str, Any]:
    """The item, with absent values left out rather than written as empty strings."""
    answer = attempt.answer
    created_at = iso_millis(attempt.created_at)
    item: dict[str, Any] = {
        "provider": attempt.provider,
        "sk": f"{created_at}#{attempt.request_id}",
        "success": attempt.decision.success,
        "error_codes": attempt.decision.error_codes,
        "degraded": attempt.decision.degraded,
        # The free text a visitor or a provider chose, bounded as in the log line.
        "sitekey": bounded(answer.sitekey),
        "challenge_ts": iso_seconds(answer.challenge_ts) if answer.challenge_ts else None,
        "solve_time_ms": answer.solve_time_ms,
        "token_age_ms": attempt.token_age_ms,
        "interactive": answer.interactive,
        "provider_status": attempt.provider_status,
        "provider_latency_ms": attempt.provider_latency_ms,
        "token_sha256": attempt.token_sha256,
        "origin": bounded(attempt.origin),
        "request_id": attempt.request_id,
        "created_at": created_at,
        "expires_at": int((attempt.created_at + timedelta(days=ttl_days)).timestamp()),
    }
    return {name: value for name, value in item.items() if value is not None and value != ""}


@dataclass
class ChallengeLog:
    table_name: str
    dynamodb: Any = None

    def put(self, item: dict[str, Any]) -> None:
        if self.dynamodb is None:
            self.dynamodb = client("dynamodb")
        dynamodb = self.dynamodb
        run_within(
            RECORD_WRITE_SECONDS, lambda: dynamodb.put_item(TableName=self.table_name, Item=_serialize(item))
        )


def _serialize(item: dict[str, Any]) -> dict[str, Any]:
    # The low-level client (shared, time-bounded) takes typed attribute values.
    serializer = TypeSerializer()
    return {name: serializer.serialize(value) for name, value in item.items()}
