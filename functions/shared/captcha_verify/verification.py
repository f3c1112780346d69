"""One verification, end to end: cheap checks, idempotency, secret, provider call, policy, record,
delivery of the submission, telemetry."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics

from captcha_verify.checks import check_origin, extract_token
from captcha_verify.config import Settings
from captcha_verify.delivery import DeliveryFailed, SubmissionBus
from captcha_verify.form_rules import check_form, honeypot_tripped
from captcha_verify.idempotency import (
    DELIVER_STEP,
    VERIFY_STEP,
    NotKept,
    OnceStore,
    StillInFlight,
    StoreUnavailable,
)
from captcha_verify.kept import keep, restore
from captcha_verify.outcome import ErrorCode, ProviderAnswer, RequestRejected
from captcha_verify.parsing import decode_body, parse_fields, parse_media_type, with_repeats
from captcha_verify.policy import Decision, Outcome, bind_origin, bind_sitekey, decide
from captcha_verify.providers import Adapter
from captcha_verify.rate_limit import RateLimiter
from captcha_verify.records import Attempt, ChallengeLog, build_record, token_digest
from captcha_verify.secret_store import SecretStore, SecretUnavailable
from captcha_verify.submission import form_content, submission_detail
from captcha_verify.telemetry import (
    DUPLICATE_IN_FLIGHT,
    DUPLICATE_REQUEST,
    HONEYPOT_TRIPPED,
    IDEMPOTENCY_STORE_ERROR,
    SUBMISSION_DELIVERED,
    SUBMISSION_DELIVERY_FAILED,
    report,
    report_event,
    report_record_failure,
)
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
    once: OnceStore
    bus: SubmissionBus
    logger: Logger
    metrics: EphemeralMetrics
    rate_limiter: RateLimiter
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def verify(self, inbound: Inbound) -> Result:
        fields: Mapping[str, object] = {}
        try:
            check_origin(inbound.origin, self.settings.allowed_origins)
            media = parse_media_type(inbound.headers.get("content-type"))
            raw = decode_body(inbound.body, inbound.is_base64)
            fields = parse_fields(raw, media)
            form = with_repeats(fields, raw, media)
            if honeypot_tripped(form, self.settings.honeypot_field):
                return Result(self._honeypot(inbound), fields)
            check_form(form, self.settings.required_fields)
            token = extract_token(fields, self.adapter.token_fields)
            self.adapter.check_token(token)
            self.rate_limiter.check(inbound.source_ip)
            # Every check above is free of the token; everything below is keyed on it and may spend it.
        except RequestRejected as rejection:
            attempt = self._attempt(
                inbound,
                Decision(Outcome.REJECTED, rejection.code),
                ProviderAnswer.rejected(rejection.code, rejection.reason),
            )
            report(attempt, self.logger, self.metrics)
            return Result(attempt, fields)
        key = {"provider": self.provider, "token_sha256": token_digest(token)}
        attempt = self._verify_once(inbound, token, key)
        if attempt.decision.success:
            attempt = self._deliver_once(inbound, attempt, form, key)
        return Result(attempt, fields)

    def _honeypot(self, inbound: Inbound) -> Attempt:
        """A bot gets the answer a success gets, so it learns nothing; no token is spent and
        nothing is delivered."""
        self._note(
            "honeypot tripped",
            HONEYPOT_TRIPPED,
            provider=self.provider,
            request_id=inbound.request_id,
            origin=inbound.origin,
            field=self.settings.honeypot_field,
        )
        return self._attempt(inbound, Decision(Outcome.VERIFIED), ProviderAnswer.verified())

    def _verify_once(self, inbound: Inbound, token: str, key: dict[str, str]) -> Attempt:
        """The provider is asked once per token within the window; repeats get the first outcome.

        A "could not verify" outcome is not kept (NotKept deletes the record), so a retry asks again.
        """
        fresh: list[Attempt] = []

        def verify_now() -> dict[str, object]:
            attempt = self._verify_token(inbound, token)
            self._record(attempt)
            report(attempt, self.logger, self.metrics)
            fresh.append(attempt)
            if attempt.decision.outcome is Outcome.FAILED:
                raise NotKept(keep(attempt))
            return keep(attempt)

        ids = {
            "provider": self.provider,
            "request_id": inbound.request_id,
            "token_sha256": key["token_sha256"],
        }
        try:
            ran = self.once.run_once(VERIFY_STEP, key, verify_now, inbound.remaining_ms_now())
        except NotKept:
            return fresh[0]
        except (StillInFlight, StoreUnavailable) as unsure:
            # Honest and retryable: this request did not ask the provider, so it cannot say whether
            # the token is good; the visitor's retry gets the first request's kept outcome.
            in_flight = isinstance(unsure, StillInFlight)
            self._note(
                "twin request still verifying" if in_flight else "idempotency store unavailable",
                DUPLICATE_IN_FLIGHT if in_flight else IDEMPOTENCY_STORE_ERROR,
                level="warning",
                step=VERIFY_STEP,
                **ids,
            )
            return self._attempt(
                inbound,
                Decision(Outcome.FAILED, ErrorCode.INTERNAL_ERROR),
                ProviderAnswer.unverifiable(
                    "twin request in flight" if in_flight else "idempotency store unavailable"
                ),
                token_sha256=key["token_sha256"],
            )
        if not ran.replayed:
            return fresh[0]
        self._note(
            "repeat answered from idempotency record",
            DUPLICATE_REQUEST,
            step=VERIFY_STEP,
            **ids,
        )
        return restore(
            ran.value,
            provider=self.provider,
            created_at=self.clock(),
            request_id=inbound.request_id,
            origin=inbound.origin,
            token_sha256=key["token_sha256"],
        )

    def _deliver_once(
        self, inbound: Inbound, attempt: Attempt, form: Mapping[str, object], key: dict[str, str]
    ) -> Attempt:
        """One event per token. A failure is not kept, so the visitor's retry of the same request
        (whose verification is kept) delivers it without a new token."""
        excluded = (*self.adapter.token_fields, self.settings.honeypot_field)
        detail = submission_detail(attempt, form_content(form, excluded), self.settings.allowed_origins)
        ids = {
            "provider": self.provider,
            "request_id": inbound.request_id,
            "submission_id": detail["submission_id"],
            "token_sha256": key["token_sha256"],
        }
        try:
            ran = self.once.run_once(
                DELIVER_STEP, key, lambda: {"event_id": self.bus.put(detail)}, inbound.remaining_ms_now()
            )
        except (StillInFlight, DeliveryFailed, StoreUnavailable) as failure:
            # A twin still in flight may yet deliver, so it is not counted as a delivery failure;
            # either way the visitor's retry gets the kept answer, or delivers.
            in_flight = isinstance(failure, StillInFlight)
            self._note(
                "twin request still delivering" if in_flight else "submission not delivered",
                DUPLICATE_IN_FLIGHT if in_flight else SUBMISSION_DELIVERY_FAILED,
                level="warning" if in_flight else "error",
                reason=failure.reason if isinstance(failure, DeliveryFailed) else type(failure).__name__,
                **ids,
            )
            return replace(attempt, decision=Decision(Outcome.UNDELIVERED, ErrorCode.DELIVERY_FAILED))
        if ran.replayed:
            self._note(
                "repeat answered from idempotency record",
                DUPLICATE_REQUEST,
                step=DELIVER_STEP,
                **ids,
            )
        else:
            self._note(
                "submission delivered",
                SUBMISSION_DELIVERED,
                event_id=ran.value["event_id"],
                **ids,
            )
        return attempt

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

    def _note(self, message: str, metric: str, *, level: str = "info", **fields: Any) -> None:
        report_event(self.logger, self.metrics, message, metric, level=level, **fields)

    def _record(self, attempt: Attempt) -> None:
        # The record is for review; losing it must never change what the user is told.
        try:
            self.challenge_log.put(build_record(attempt, self.settings.record_ttl_days))
        except Exception as error:
            report_record_failure(error, attempt, self.logger, self.metrics)
