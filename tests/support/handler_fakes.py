"""The real handler wired to in-memory fakes of AWS and the provider, for property tests that run
thousands of requests (the fuzz suite, the log-line bounds): no moto, no sockets.

`Rig.invoke` captures what the handler prints for that one request only: a buffer kept for a
whole run and copied per example made a 100,000-example run quadratic.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics
from captcha_verify.config import Settings
from captcha_verify.delivery import DeliveryFailed
from captcha_verify.entrypoint import build_handler
from captcha_verify.providers import OutboundCall
from captcha_verify.rate_limit import RateLimiter
from captcha_verify.submission_store import ANSWERED, COMMITTED, Claimed, Found, StoreUnavailable
from captcha_verify.telemetry import bounded_logger
from captcha_verify.transport import ProviderReply

from support import FakeContext, load_event

SECRET = "sk_" + "SeCrEtCaNaRy0123456789abcdefghij"[:32]
RATE_LIMIT_KEY = "k" * 64


def minimal_settings(**overrides: Any) -> Settings:
    """Settings with placeholder names for every required resource."""
    return Settings(
        challenge_table_name="t",
        provider_secret_id="s",
        submission_bus_name="b",
        idempotency_table_name="i",
        **overrides,
    )


@dataclass
class FakeSecrets:
    reads: int = 0

    def get(self) -> str:
        self.reads += 1
        return SECRET

    def forget(self) -> None:
        pass


@dataclass
class FakeTransport:
    replies: list[ProviderReply] = field(default_factory=list)
    calls: int = 0
    last: OutboundCall | None = None

    def send(self, call: OutboundCall, budget: float) -> ProviderReply:
        self.calls += 1
        self.last = call
        return self.replies.pop() if self.replies else ProviderReply(200, b'{"success": true}', 5)


@dataclass
class FakeLog:
    """The challenge log: keeps the items of the current request only."""

    items: list[dict[str, Any]] = field(default_factory=list)
    written: int = 0

    def put(self, item: dict[str, Any]) -> None:
        self.items.append(item)
        self.written += 1


@dataclass
class FakeStore:
    """The submission store. With `remember`, a token settled before is found again (a repeat);
    without, every token is claimed afresh (the store has its own tests). `failure` makes the
    commit fail, as a store that took the claim and then stopped answering."""

    remember: bool = False
    failure: str | None = None
    settled: dict[str, Found] = field(default_factory=dict)
    committed: list[str] = field(default_factory=list)
    clock: Any = time.time

    def claim(self, submission_id: str, provider: str, form_sha256: str, hold_ms: int) -> Claimed | Found:
        if self.remember and submission_id in self.settled:
            return self.settled[submission_id]
        return Claimed(submission_id, "claim", provider, form_sha256)

    def commit(self, claim: Claimed, answer: str, detail: str, index: Any) -> None:
        if self.failure is not None:
            raise StoreUnavailable(self.failure)
        self.committed.append(detail)
        self._settle(claim, COMMITTED, answer)

    def keep_answer(self, claim: Claimed, answer: str) -> None:
        self._settle(claim, ANSWERED, answer)

    def release(self, claim: Claimed) -> None:
        self.settled.pop(claim.submission_id, None)

    def _settle(self, claim: Claimed, state: str, answer: str) -> None:
        if self.remember:
            until = int(self.clock()) + 600
            self.settled[claim.submission_id] = Found(state, claim.form_sha256, answer, 0, until)


@dataclass
class FakeBus:
    """Keeps the events of the current request; `failure` makes the next puts fail with it."""

    details: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None
    puts: int = 0

    def put_serialised(self, detail: str) -> str:
        if self.failure is not None:
            raise DeliveryFailed(self.failure)
        self.details.append(json.loads(detail))
        self.puts += 1
        return f"evt-{self.puts}"


class FakeKeyStore:
    def get(self) -> str:
        return RATE_LIMIT_KEY


@dataclass
class FakeCounter:
    """DynamoDB's UpdateItem ADD on the rate-limit table; `failure` makes it raise."""

    hits: dict[str, int] = field(default_factory=dict)
    failure: Exception | None = None

    def update_item(self, **request: Any) -> dict[str, Any]:
        if self.failure is not None:
            raise self.failure
        pk = request["Key"]["pk"]["S"]
        self.hits[pk] = self.hits.get(pk, 0) + 1
        return {"Attributes": {"hits": {"N": str(self.hits[pk])}}}


@dataclass
class Rig:
    provider: str
    handler: Any
    secrets: FakeSecrets
    transport: FakeTransport
    log: FakeLog
    bus: FakeBus
    store: FakeStore
    counter: FakeCounter | None = None
    output: str = ""

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """One request; afterwards `output`, `log.items` and `bus.details` hold its traces only."""
        self.log.items.clear()
        self.bus.details.clear()
        self.store.committed.clear()
        buffer = io.StringIO()
        with _logging_to(buffer), redirect_stdout(buffer):
            response = self.handler(event, FakeContext())
        self.output = buffer.getvalue()
        return response


_stream = io.StringIO()


class _Switch(io.TextIOBase):
    """The stream Powertools' log handler was built with; writes go where `_logging_to` points."""

    def write(self, text: str) -> int:
        return _stream.write(text)


@contextmanager
def _logging_to(buffer: io.StringIO) -> Iterator[None]:
    global _stream
    _stream, previous = buffer, _stream
    try:
        yield
    finally:
        _stream = previous


def build_rig(
    provider: str,
    settings: Settings,
    *,
    service: str,
    remember: bool = False,
    rate_limit: int = 0,
) -> Rig:
    """The provider's handler on fakes; its log lines reach `Rig.output` (Powertools binds its
    handler to the stream that sys.stdout is when the first Logger of a service is made)."""
    secrets, transport, log, bus, store = (
        FakeSecrets(),
        FakeTransport(),
        FakeLog(),
        FakeBus(),
        FakeStore(remember),
    )
    counter = FakeCounter() if rate_limit else None
    with redirect_stdout(_Switch()), pytest.MonkeyPatch.context() as patch:  # type: ignore[type-var]
        patch.setenv("POWERTOOLS_SERVICE_NAME", service)
        patch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CaptchaVerifyFakes")
        limiter = (
            RateLimiter(rate_limit, "rate", FakeKeyStore(), bounded_logger(), EphemeralMetrics(), counter)  # type: ignore[arg-type]
            if counter is not None
            else None
        )
        handler = build_handler(
            provider,
            settings=settings,
            secrets=secrets,  # type: ignore[arg-type]
            transport=transport,  # type: ignore[arg-type]
            challenge_log=log,  # type: ignore[arg-type]
            bus=bus,  # type: ignore[arg-type]
            store=store,  # type: ignore[arg-type]
            rate_limiter=limiter,
        )
    return Rig(provider, handler, secrets, transport, log, bus, store, counter)


def http_event(
    provider: str,
    headers: dict[str, str],
    body: bytes,
    *,
    base64_encoded: bool = False,
    source_ip: str | None = None,
) -> dict[str, Any]:
    """An HTTP API 2.0 event with these headers and raw body (latin-1, so any bytes survive)."""
    event = load_event(provider, "fetch-json")
    event["headers"] = headers
    event["isBase64Encoded"] = base64_encoded
    event["body"] = base64.b64encode(body).decode() if base64_encoded else body.decode("latin-1")
    if source_ip is not None:
        event["requestContext"]["http"]["sourceIp"] = source_ip
    return event
