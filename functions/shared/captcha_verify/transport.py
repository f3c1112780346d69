"""The one outbound HTTP call to the provider: a pooled `requests` session, bounded in wall-clock
time (not per socket read) and in the size of the body it reads."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

from captcha_verify.deadline import SocketDeadline, watch_current
from captcha_verify.outcome import ErrorCode, ProviderAnswer
from captcha_verify.providers import OutboundCall

# Left after the provider call for the commit (submission_store.COMMIT_SECONDS, the record written
# meanwhile), the direct put if the commit fails (verification.DIRECT_PUT_SECONDS) and the answer,
# so the function answers before Lambda kills it.
RESERVED_SECONDS = 4.5
MIN_CALL_SECONDS = 0.2
MAX_CONNECT_SECONDS = 1.0
# Provider answers are a few hundred bytes; nothing they send is worth more memory than this.
MAX_PROVIDER_BODY_BYTES = 64 * 1024
_CHUNK_BYTES = 8 * 1024
# What requests would refuse to send (and then quote back in its error, secret included).
_HEADER_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")


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


class _BodyTooLarge(Exception):
    pass


def call_budget(timeout_seconds: float, remaining_ms: int | None) -> float:
    """Seconds the provider call may take: the configured timeout, never past the Lambda's end."""
    if remaining_ms is None:
        return timeout_seconds
    return min(timeout_seconds, remaining_ms / 1000 - RESERVED_SECONDS)


def attempt_timeouts(budget: float) -> tuple[float, float]:
    """(connect, read) timeouts of one socket operation. The whole call is bounded by its
    deadline, so a provider may use all of its budget to answer (a 2 s answer under a 3 s budget)."""
    return min(MAX_CONNECT_SECONDS, budget), budget


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self) -> Any:
        watch_current(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        watch_current(self.sock)
        return super().getresponse()


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose connections put their socket under the running deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def make_session(retry_statuses: frozenset[int]) -> requests.Session:
    retry = Retry(
        total=1,
        connect=1,
        read=0,
        status=1 if retry_statuses else 0,
        other=0,
        redirect=0,
        status_forcelist=retry_statuses,
        allowed_methods=frozenset({"POST"}),
        backoff_factor=0,
        respect_retry_after_header=False,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    session = requests.Session()
    session.mount("https://", _WatchedAdapter(max_retries=retry))
    session.mount("http://", _WatchedAdapter(max_retries=retry))
    return session


def sendable_headers(headers: Mapping[str, str]) -> bool:
    """Header values requests accepts; checked first, because its refusal quotes the value."""
    return all(_HEADER_VALUE.fullmatch(value) for value in headers.values())


@dataclass
class Transport:
    """Sends one provider call; the session is made once per container and reused."""

    retry_statuses: frozenset[int] = frozenset()
    session: requests.Session | None = None

    def send(self, call: OutboundCall, budget: float) -> ProviderReply:
        if budget < MIN_CALL_SECONDS:
            raise ProviderUnreachable(ProviderAnswer.unverifiable("no time left to call the provider"), 0)
        if not sendable_headers(call.headers):
            raise ProviderUnreachable(
                ProviderAnswer.unverifiable(
                    "secret has characters an HTTP header cannot carry", ErrorCode.INVALID_INPUT_SECRET
                ),
                0,
            )
        if self.session is None:
            self.session = make_session(self.retry_statuses)
        started = time.perf_counter()
        deadline = SocketDeadline(budget)
        try:
            with deadline.running():
                status, body = self._exchange(call, budget)
        except _BodyTooLarge:
            raise ProviderUnreachable(
                ProviderAnswer.unverifiable("provider body over the limit"), _since(started)
            ) from None
        except requests.RequestException as error:
            # The exception's text may echo the URL or a header: only its class is reported.
            reason = failure_reason(error, deadline.expired)
            raise ProviderUnreachable(ProviderAnswer.unverifiable(reason), _since(started)) from None
        return ProviderReply(status, body, _since(started))

    def _exchange(self, call: OutboundCall, budget: float) -> tuple[int, bytes]:
        assert self.session is not None
        with self.session.post(
            call.url,
            json=dict(call.json),
            headers=dict(call.headers),
            timeout=attempt_timeouts(budget),
            allow_redirects=False,
            stream=True,
        ) as response:
            body = bytearray()
            for chunk in response.iter_content(_CHUNK_BYTES):
                body += chunk
                if len(body) > MAX_PROVIDER_BODY_BYTES:
                    raise _BodyTooLarge
            return response.status_code, bytes(body)


def failure_reason(error: requests.RequestException, deadline_expired: bool) -> str:
    """A short, secret-free reason: timed out (the deadline, or a read or connect timeout that
    urllib3 wraps in a ConnectionError), a TLS failure, or unreachable."""
    cause = error.args[0] if error.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    # urllib3 derives NewConnectionError (refused, no route) from ConnectTimeoutError.
    timed_out = isinstance(cause, ReadTimeoutError | ConnectTimeoutError | TimeoutError) and not isinstance(
        cause, NewConnectionError
    )
    if deadline_expired or timed_out or isinstance(error, requests.Timeout):
        return "provider timed out"
    if isinstance(error, requests.exceptions.SSLError):
        return "provider TLS error"
    return f"provider unreachable ({type(error).__name__})"


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
