"""The one outbound HTTP call to the provider: a pooled `requests` session, bounded in time."""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from captcha_verify.outcome import ProviderAnswer
from captcha_verify.providers import OutboundCall

# Left for the record write and the answer after the provider call, so the function answers
# before Lambda kills it.
RESERVED_SECONDS = 1.0
MIN_CALL_SECONDS = 0.2
MAX_CONNECT_SECONDS = 1.0


@dataclass(frozen=True)
class ProviderReply:
    status: int
    body: bytes
    latency_ms: int


class ProviderUnreachable(Exception):
    def __init__(self, answer: ProviderAnswer, latency_ms: int) -> None:
        super().__init__(answer.reason)
        self.answer = answer
        self.latency_ms = latency_ms


def call_budget(timeout_seconds: float, remaining_ms: int | None) -> float:
    """Seconds the provider call may take: the configured timeout, never past the Lambda's end."""
    if remaining_ms is None:
        return timeout_seconds
    return min(timeout_seconds, remaining_ms / 1000 - RESERVED_SECONDS)


def attempt_timeouts(budget: float, status_retries: bool) -> tuple[float, float]:
    """(connect, read) timeouts such that every permitted attempt together fits the budget.

    A refused or timed-out connection is retried once (nothing reached the provider, so no token
    was consumed): two connects and one read must fit. Where the provider documents a status as
    safe to retry, two full attempts must fit.
    """
    connect = min(MAX_CONNECT_SECONDS, budget / 4)
    reads = 2 if status_retries else 1
    return connect, (budget - 2 * connect) / reads


def make_session(retry_statuses: frozenset[int]) -> requests.Session:
    retry = Retry(
        total=1,
        connect=1,
        read=0,
        status=1 if retry_statuses else 0,
        other=0,
        status_forcelist=retry_statuses,
        allowed_methods=frozenset({"POST"}),
        backoff_factor=0,
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


@dataclass
class Transport:
    """Sends one provider call; the session is made once per container and reused."""

    retry_statuses: frozenset[int] = frozenset()
    session: requests.Session | None = None

    def send(self, call: OutboundCall, budget: float) -> ProviderReply:
        if budget < MIN_CALL_SECONDS:
            raise ProviderUnreachable(ProviderAnswer.unverifiable("no time left to call the provider"), 0)
        if self.session is None:
            self.session = make_session(self.retry_statuses)
        started = time.perf_counter()
        try:
            response = self.session.post(
                call.url,
                json=dict(call.json),
                headers=dict(call.headers),
                timeout=attempt_timeouts(budget, bool(self.retry_statuses)),
                allow_redirects=False,
            )
        except requests.Timeout:
            raise ProviderUnreachable(
                ProviderAnswer.unverifiable("provider timed out"), _since(started)
            ) from None
        except requests.RequestException as error:
            # The exception's text may echo the URL; its type is enough and leaks nothing.
            reason = f"provider unreachable ({type(error).__name__})"
            raise ProviderUnreachable(ProviderAnswer.unverifiable(reason), _since(started)) from None
        return ProviderReply(response.status_code, response.content, _since(started))


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
