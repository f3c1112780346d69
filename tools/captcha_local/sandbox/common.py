"""What every provider's stand-in shares: credentials, raw replies, issued tokens, request bodies,
and the state of one sandbox app (tokens, injected faults, the call log, rate windows)."""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import flask

TOKEN_LIFETIME_SECONDS = 300
# Tokens are forgotten this long after issue so a long `make local` session stays small,
# while still answering "expired" (not "unknown") for anything a test could backdate.
TOKEN_RETENTION_SECONDS = 3600
RATE_WINDOW_SECONDS = 60
DEFAULT_SOLVE_TIME_MS = 1500


@dataclass(frozen=True)
class Credentials:
    secret: str
    sitekey: str


@dataclass(frozen=True)
class Reply:
    """A provider answer, kept raw so injected faults and real answers render the same way."""

    status: int
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_response(self) -> flask.Response:
        response = flask.Response(self.body, status=self.status)
        # Flask would label every body text/html; providers send no type on empty answers.
        del response.headers["Content-Type"]
        response.headers.update(self.headers)
        return response


def json_reply(status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(payload), {"Content-Type": "application/json", **(headers or {})})


@dataclass
class IssuedToken:
    provider: str
    sitekey: str
    issued_at: float  # epoch seconds the challenge was passed, backdated by age_seconds
    solve_time_ms: int
    interactive: bool
    legacy: bool  # answer in the shape older Swetrix / yCAPTCHA servers use
    version: str | None  # Friendly Captcha API generation, None for other providers
    origin: str | None
    challenge: str  # 64 hex chars, what Swetrix reports as `challenge` (or `hash`)
    used: bool = False
    idempotency_key: str | None = None  # Turnstile: the key sent with the verification that spent it

    def expired(self, now: float) -> bool:
        return now - self.issued_at > TOKEN_LIFETIME_SECONDS


def json_object(request: flask.Request) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not JSON or not an object."""
    if not request.is_json:
        return None
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else None


def json_or_form(request: flask.Request) -> dict[str, Any] | None:
    """JSON object or form fields; None only for a JSON body that does not parse to an object."""
    if request.is_json:
        return json_object(request)
    return request.form.to_dict()


def non_empty_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def epoch_ms(seconds: float) -> int:
    return int(seconds * 1000)


def iso8601(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Fault:
    """An injected raw answer, served instead of the provider's for the next ``remaining`` calls."""

    reply: Reply
    delay_ms: int
    remaining: int


# The fields that carry the token across all the verify APIs, for the call log's digest.
_TOKEN_FIELDS = ("token", "solution", "response")


def token_digest(request: flask.Request) -> str | None:
    body = json_or_form(request) or {}
    for name in _TOKEN_FIELDS:
        value = non_empty_str(body.get(name))
        if value is not None:
            return sha256_hex(value)
    return None


class SandboxState:
    """Tokens, faults, call log and rate windows of one app.

    Methods do not lock: callers hold ``lock`` around every use, so a check-and-consume
    sequence inside a provider handler is atomic under the threaded server.
    """

    def __init__(self, credentials: Mapping[str, Credentials]) -> None:
        self.credentials = dict(credentials)
        self.lock = threading.Lock()
        self.tokens: dict[tuple[str, str], IssuedToken] = {}
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.calls: list[dict[str, Any]] = []
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def lookup(self, provider: str, token: object) -> IssuedToken | None:
        return self.tokens.get((provider, token)) if isinstance(token, str) else None

    def store(self, token: str, issued: IssuedToken, now: float) -> None:
        stale = [key for key, kept in self.tokens.items() if now - kept.issued_at > TOKEN_RETENTION_SECONDS]
        for key in stale:
            del self.tokens[key]
        self.tokens[(issued.provider, token)] = issued

    def throttle(self, provider: str, limit: int, now: float) -> int | None:
        """Count a call in a sliding window; the seconds to wait when over ``limit``, else None."""
        hits = self._hits[provider]
        while hits and hits[0] <= now - RATE_WINDOW_SECONDS:
            hits.popleft()
        if len(hits) >= limit:
            return max(1, math.ceil(hits[0] + RATE_WINDOW_SECONDS - now))
        hits.append(now)
        return None

    def take_fault(self, provider: str) -> Fault | None:
        queue = self.faults[provider]
        if not queue:
            return None
        fault = queue[0]
        if fault.remaining <= 1:
            queue.popleft()
        else:
            queue[0] = Fault(fault.reply, fault.delay_ms, fault.remaining - 1)
        return fault


# A provider handler: (state, provider, request, now) -> reply. Runs with the state lock held.
Handler = Callable[[SandboxState, str, flask.Request, float], Reply]


# What a widget of the provider obtains for a solved challenge, given the API generation (or None).
TokenMaker = Callable[[str | None], str]
# A fixed answer to an issue request, before any token is made: (status, JSON body), or None.
FixedIssue = Callable[[Mapping[str, Any]], tuple[int, dict[str, str]] | None]


def opaque_token(version: str | None) -> str:
    # 64 chars of [A-Za-z0-9_-]: yCAPTCHA's documented shape, opaque for the others.
    return secrets.token_urlsafe(48)


@dataclass(frozen=True)
class SandboxProvider:
    """One provider's stand-in: its sandbox credentials, its verify routes, and the tokens it issues."""

    name: str
    credentials: Credentials
    routes: tuple[tuple[str, Handler], ...]
    new_token: TokenMaker = opaque_token
    shapes: tuple[str, ...] = ()  # older server answer shapes a token can ask for
    versions: tuple[str, ...] = ()  # API generations; the first is the default
    fixed_issue: FixedIssue | None = None
