"""One verification, end to end: cheap checks; the rate-limit count and the idempotency claim,
concurrently; secret, provider call, policy; the commit of the submission with the challenge
record, concurrently; telemetry. On a warm verified submission that is two sequential AWS round
trips besides the provider call."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics

from captcha_verify.checks import check_origin, extract_token
from captcha_verify.config import Settings
from captcha_verify.deadline import begin, run_within
from captcha_verify.delivery import DeliveryFailed, SubmissionBus
from captcha_verify.form_rules import check_controls, check_form, honeypot_tripped
from captcha_verify.kept import keep, restore
from captcha_verify.outcome import CHANGED_FORM_REASON, ErrorCode, ProviderAnswer, RequestRejected
from captcha_verify.parsing import decode_body, parse_fields, parse_media_type, with_repeats
from captcha_verify.policy import Decision, Outcome, bind_origin, bind_sitekey, decide
from captcha_verify.providers import Adapter
from captcha_verify.rate_limit import RateLimiter
from captcha_verify.records import Attempt, ChallengeLog, build_record, token_digest
from captcha_verify.secret_store import SecretStore, SecretUnavailable
from captcha_verify.submission import (
    FormValue,
    check_size,
    email_key,
    form_content,
    form_digest,
    serialise,
    submission_detail,
    submission_id,
)
from captcha_verify.submission_store import (
    COMMITTED,
    IN_PROGRESS,
    Claimed,
    Found,
    StillInFlight,
    StoreUnavailable,
    SubmissionStore,
)
from captcha_verify.telemetry import (
    CHANGED_REPEAT,
    DUPLICATE_IN_FLIGHT,
    DUPLICATE_REQUEST,
    HONEYPOT_TRIPPED,
    IDEMPOTENCY_STORE_ERROR,
    REPEAT_MESSAGE,
    SUBMISSION_COMMIT_FAILED,
    SUBMISSION_COMMITTED,
    SUBMISSION_DELIVERY_FAILED,
    report,
    report_event,
    report_record_failure,
)
from captcha_verify.transport import ProviderUnreachable, Transport, call_budget

# Re-claims after a twin's claim vanished (it could not verify) or was abandoned (its Lambda died).
MAX_CLAIMS = 3
# Without a Lambda context (never in Lambda), how long a claim is held.
DEFAULT_HOLD_MS = 10_000
# Left for answering once the wait for an in-flight twin gives up.
ANSWER_MARGIN_MS = 1_000
# The direct put when the commit failed: the Lambda's time left after the provider's budget
# (transport.RESERVED_SECONDS) must hold the commit's bound and this one.
DIRECT_PUT_SECONDS = 2.0
# A twin waits about the first's provider budget plus its commit, no longer.
TWIN_MARGIN_SECONDS = 1.0


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
    store: SubmissionStore
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
            content = form_content(form, (*self.adapter.token_fields, self.settings.honeypot_field))
            check_controls(content)
            check_size(content)
            token = extract_token(fields, self.adapter.token_fields)
            self.adapter.check_token(token)
            # Every check above is free of the token and of AWS; the claim below is keyed on it.
            held = self._claim(inbound, token_digest(token), content)
        except RequestRejected as rejection:
            attempt = self._attempt(
                inbound,
                Decision(Outcome.REJECTED, rejection.code),
                ProviderAnswer.rejected(rejection.code, rejection.reason),
            )
            report(attempt, self.logger, self.metrics)
            return Result(attempt, fields)
        if isinstance(held, Attempt):
            return Result(held, fields)
        attempt = self._verify_token(inbound, token)
        report(attempt, self.logger, self.metrics)
        return Result(self._settle(inbound, held, attempt, content), fields)

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

    def _claim(self, inbound: Inbound, digest: str, content: Mapping[str, FormValue]) -> Claimed | Attempt:
        """The token for this request, or the answer it gets without asking the provider.

        The rate-limit count and the claim are one round trip: the count runs while the claim is
        written. A rate-limited request gives back a claim it made (RequestRejected propagates).
        """
        check_limit = self.rate_limiter.begin(inbound.source_ip)
        sid = submission_id(self.provider, digest)
        form_sha256 = form_digest(content)
        remaining = inbound.remaining_ms_now()
        hold_ms = remaining if remaining is not None else DEFAULT_HOLD_MS
        ids = {"provider": self.provider, "request_id": inbound.request_id, "token_sha256": digest}
        held: Claimed | Found | StoreUnavailable
        try:
            held = self.store.claim(sid, self.provider, form_sha256, hold_ms)
        except StoreUnavailable as unavailable:
            held = unavailable
        try:
            check_limit()
        except RequestRejected:
            if isinstance(held, Claimed):
                self._release(held, ids)
            raise
        wait_seconds = self.settings.verify_timeout_seconds + TWIN_MARGIN_SECONDS
        if remaining is not None:
            wait_seconds = min(wait_seconds, (remaining - ANSWER_MARGIN_MS) / 1000)
        deadline = time.monotonic() + max(0.0, wait_seconds)
        try:
            return self._settle_claim(inbound, held, sid, form_sha256, hold_ms, deadline, ids)
        except (StillInFlight, StoreUnavailable) as unsure:
            return self._unsure(inbound, unsure, digest, ids)

    def _settle_claim(
        self,
        inbound: Inbound,
        held: Claimed | Found | StoreUnavailable,
        sid: str,
        form_sha256: str,
        hold_ms: int,
        deadline: float,
        ids: dict[str, Any],
    ) -> Claimed | Attempt:
        """Our own claim, or the kept answer of a twin that held it, waiting for a twin in flight
        until the deadline (StillInFlight after that)."""
        for _ in range(MAX_CLAIMS):
            if isinstance(held, StoreUnavailable):
                raise held
            if isinstance(held, Claimed):
                return held
            if held.state == IN_PROGRESS:
                settled = self.store.wait(sid, deadline)
                if settled is not None and not settled.abandoned(int(self.store.clock() * 1000)):
                    return self._repeat(inbound, settled, form_sha256, ids["token_sha256"], ids)
                held = self.store.claim(sid, self.provider, form_sha256, hold_ms)
                continue
            return self._repeat(inbound, held, form_sha256, ids["token_sha256"], ids)
        raise StillInFlight(sid)

    def _unsure(
        self, inbound: Inbound, unsure: StillInFlight | StoreUnavailable, digest: str, ids: dict[str, Any]
    ) -> Attempt:
        """Honest and retryable: this request did not ask the provider, so it cannot say whether
        the token is good; the visitor's retry gets the first request's kept outcome."""
        in_flight = isinstance(unsure, StillInFlight)
        self._note(
            "twin request still verifying" if in_flight else "idempotency store unavailable",
            DUPLICATE_IN_FLIGHT if in_flight else IDEMPOTENCY_STORE_ERROR,
            level="warning",
            error=type(unsure.__cause__ or unsure).__name__,
            **ids,
        )
        return self._attempt(
            inbound,
            Decision(Outcome.FAILED, ErrorCode.INTERNAL_ERROR),
            ProviderAnswer.unverifiable(
                "twin request in flight" if in_flight else "idempotency store unavailable"
            ),
            token_sha256=digest,
        )

    def _repeat(
        self, inbound: Inbound, found: Found, form_sha256: str, digest: str, ids: dict[str, str]
    ) -> Attempt:
        """The first request's answer; an edited form or a token past the window is not a repeat."""
        now = int(self.store.clock())
        if found.state == COMMITTED and found.form_sha256 != form_sha256:
            self._note("repeat with a changed form not sent", CHANGED_REPEAT, level="warning", **ids)
            return self._used(inbound, CHANGED_FORM_REASON, digest)
        if found.answer is None or (found.state == COMMITTED and found.replay_until < now):
            return self._used(inbound, "token already used", digest)
        self._note(REPEAT_MESSAGE, DUPLICATE_REQUEST, **ids)
        return restore(
            json.loads(found.answer),
            provider=self.provider,
            created_at=self.clock(),
            request_id=inbound.request_id,
            origin=inbound.origin,
            token_sha256=digest,
        )

    def _used(self, inbound: Inbound, reason: str, digest: str) -> Attempt:
        attempt = self._attempt(
            inbound,
            Decision(Outcome.REJECTED, ErrorCode.TIMEOUT_OR_DUPLICATE),
            ProviderAnswer.rejected(ErrorCode.TIMEOUT_OR_DUPLICATE, reason),
            token_sha256=digest,
        )
        report(attempt, self.logger, self.metrics)
        return attempt

    def _settle(
        self, inbound: Inbound, claim: Claimed, attempt: Attempt, content: Mapping[str, FormValue]
    ) -> Attempt:
        """The outcome into the store with the challenge record written concurrently (one round
        trip): a verified submission committed, a rejection kept, a "could not verify" given back."""
        recording = begin(lambda: self._record(attempt))
        ids = {
            "provider": self.provider,
            "request_id": inbound.request_id,
            "submission_id": claim.submission_id,
            "token_sha256": attempt.token_sha256,
        }
        try:
            if not attempt.decision.success:
                if attempt.decision.outcome is Outcome.FAILED:
                    self._release(claim, ids)
                else:
                    self._keep_answer(claim, attempt, ids)
                return attempt
            return self._commit(inbound, claim, attempt, content, ids)
        finally:
            recording.result()

    def _commit(
        self,
        inbound: Inbound,
        claim: Claimed,
        attempt: Attempt,
        content: Mapping[str, FormValue],
        ids: dict[str, Any],
    ) -> Attempt:
        detail = submission_detail(attempt, content, self.settings.allowed_origins)
        serialised = serialise(detail)
        try:
            self.store.commit(claim, serialise(keep(attempt)), serialised, _index(detail))
        except StoreUnavailable as failure:
            return self._put_directly(inbound, attempt, serialised, str(failure), ids)
        self._note("submission committed", SUBMISSION_COMMITTED, **ids)
        return attempt

    def _put_directly(
        self, inbound: Inbound, attempt: Attempt, detail: str, reason: str, ids: dict[str, Any]
    ) -> Attempt:
        """The token is spent and the store did not take the submission: the bus gets it straight
        away, and only if it refuses too is the visitor asked to send again (a loss, alarmed)."""
        remaining = inbound.remaining_ms_now()
        seconds = DIRECT_PUT_SECONDS if remaining is None else min(DIRECT_PUT_SECONDS, remaining / 1000 - 0.5)
        try:
            event_id = run_within(seconds, lambda: self.bus.put_serialised(detail))
        except TimeoutError:
            failure = DeliveryFailed("TimeoutError")
        except DeliveryFailed as refused:
            failure = refused
        else:
            self._note(
                "submission not committed, put on the bus directly",
                SUBMISSION_COMMIT_FAILED,
                level="error",
                reason=reason,
                event_id=event_id,
                **ids,
            )
            return attempt
        self._note(
            "submission lost: neither committed nor put on the bus",
            SUBMISSION_DELIVERY_FAILED,
            level="error",
            reason=f"{reason}; {failure.reason}",
            **ids,
        )
        return replace(attempt, decision=Decision(Outcome.UNDELIVERED, ErrorCode.DELIVERY_FAILED))

    def _keep_answer(self, claim: Claimed, attempt: Attempt, ids: dict[str, Any]) -> None:
        try:
            self.store.keep_answer(claim, serialise(keep(attempt)))
        except StoreUnavailable:
            # The answer stands; a repeat finds the claim in progress and, once its hold ends, asks again.
            self._note("rejection not kept", IDEMPOTENCY_STORE_ERROR, level="warning", **ids)

    def _release(self, claim: Claimed, ids: dict[str, Any]) -> None:
        try:
            self.store.release(claim)
        except Exception:
            # The claim's hold ends with this invocation's time: a retry after that asks again.
            self._note("claim not released", IDEMPOTENCY_STORE_ERROR, level="warning", **ids)

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


def _index(detail: Mapping[str, Any]) -> dict[str, str]:
    """The store's index keys: newest first by month, and every submission of one address."""
    received_at = str(detail["received_at"])
    index = {"received_at": received_at, "received_month": received_at[:7]}
    email = email_key(detail["form"])
    if email is not None:
        index["email"] = email
    return index
