"""One verification, end to end: cheap checks, secret, provider call, policy, record, telemetry."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics

from captcha_verify.checks import check_origin, extract_token
from captcha_verify.config import Settings
from captcha_verify.outcome import ErrorCode, ProviderAnswer, RequestRejected
from captcha_verify.parsing import decode_body, parse_fields, parse_media_type
from captcha_verify.policy import Decision, Outcome, bind_origin, bind_sitekey, decide
from captcha_verify.providers import Adapter
from captcha_verify.rate_limit import RateLimiter
from captcha_verify.records import Attempt, ChallengeLog, build_record, token_digest
from captcha_verify.secret_store import SecretStore, SecretUnavailable
from captcha_verify.telemetry import report, report_record_failure
from captcha_verify.transport import ProviderUnreachable, Transport, call_budget


@dataclass(frozen=True)
class Inbound:
    """The parts of an HTTP API request that verification reads."""

    headers: Mapping[str, str]  # lower-case names, as HTTP API payload 2.0 delivers them
    body: str | None
    is_base64: bool
    request_id: str
    remaining_ms: int | None = None
    # Only ever used as a keyed hash (rate limiting); never logged or stored.
    source_ip: str | None = None
    received_at: float = field(default_factory=time.monotonic)

    def remaining_ms_now(self) -> int | None:
        """The Lambda's remaining time now, not when the request arrived."""
        if self.remaining_ms is None:
            return None
        return self.remaining_ms - round((time.monotonic() - self.received_at) * 1000)

    @property
    def origin(self) -> str | None:
        return self.headers.get("origin")


@dataclass(frozen=True)
class Result:
    attempt: Attempt
    fields: Mapping[str, object]


@dataclass
class Verifier:
    provider: str
    adapter: Adapter
    settings: Settings
    secrets: SecretStore
    transport: Transport
    challenge_log: ChallengeLog
    logger: Logger
    metrics: EphemeralMetrics
    rate_limiter: RateLimiter
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def verify(self, inbound: Inbound) -> Result:
        fields: Mapping[str, object] = {}
        try:
            check_origin(inbound.origin, self.settings.allowed_origins)
            media = parse_media_type(inbound.headers.get("content-type"))
            fields = parse_fields(decode_body(inbound.body, inbound.is_base64), media)
            token = extract_token(fields, self.adapter.token_fields)
            self.adapter.check_token(token)
            self.rate_limiter.check(inbound.source_ip)
        except RequestRejected as rejection:
            attempt = self._attempt(
                inbound,
                Decision(Outcome.REJECTED, rejection.code),
                ProviderAnswer.rejected(rejection.code, rejection.reason),
            )
            report(attempt, self.logger, self.metrics)
            return Result(attempt, fields)
        attempt = self._verify_token(inbound, token)
        self._record(attempt)
        report(attempt, self.logger, self.metrics)
        return Result(attempt, fields)

    def _verify_token(self, inbound: Inbound, token: str) -> Attempt:
        answer, status, latency_ms = self._ask_provider(inbound, token)
        answer = bind_origin(
            bind_sitekey(answer, self.settings.expected_sitekey), self.settings.allowed_origins
        )
        if answer.error_code is ErrorCode.INVALID_INPUT_SECRET:
            self.secrets.forget()
        return self._attempt(
            inbound,
            decide(answer, self.settings.failure_policy),
            answer,
            reached_provider=True,
            token_sha256=token_digest(token),
            provider_status=status,
            provider_latency_ms=latency_ms,
        )

    def _ask_provider(self, inbound: Inbound, token: str) -> tuple[ProviderAnswer, int | None, int | None]:
        """The provider's answer, its HTTP status and latency (None where no call was made)."""
        try:
            secret = self.secrets.get()
        except SecretUnavailable as error:
            return (
                ProviderAnswer.unverifiable(f"secret unavailable ({error})", ErrorCode.MISSING_INPUT_SECRET),
                None,
                None,
            )
        if not secret:
            return ProviderAnswer.unverifiable("secret is empty", ErrorCode.MISSING_INPUT_SECRET), None, None
        refusal = self.adapter.check_secret(secret)
        if refusal is not None:
            return refusal, None, None
        call = self.adapter.build_call(token, secret, self.settings.expected_sitekey)
        budget = call_budget(self.settings.verify_timeout_seconds, inbound.remaining_ms_now())
        try:
            reply = self.transport.send(call, budget)
        except ProviderUnreachable as failure:
            return failure.answer, None, failure.latency_ms
        return self.adapter.answer(reply.status, reply.body), reply.status, reply.latency_ms

    def _attempt(
        self, inbound: Inbound, decision: Decision, answer: ProviderAnswer, **known: object
    ) -> Attempt:
        return Attempt(
            provider=self.provider,
            decision=decision,
            answer=answer,
            created_at=self.clock(),
            request_id=inbound.request_id,
            origin=inbound.origin,
            **known,  # type: ignore[arg-type]
        )

    def _record(self, attempt: Attempt) -> None:
        # The record is for review; losing it must never change what the user is told.
        try:
            self.challenge_log.put(build_record(attempt, self.settings.record_ttl_days))
        except Exception as error:
            report_record_failure(error, attempt, self.logger, self.metrics)
