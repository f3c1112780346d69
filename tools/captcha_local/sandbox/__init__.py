"""Local stand-in for the CAPTCHA providers' verify APIs.

Faithful to ``providers.md``: it issues tokens to a stand-in widget, enforces single use and
the 300 s lifetime, checks secrets and site keys, and answers with each provider's real
statuses and bodies, traps included (yCAPTCHA burning a token on a wrong secret, Swetrix
hiding a wrong secret behind "Could not decrypt token", Captcha Cat's empty 200, Turnstile's
test keys and idempotency key, ...).

It serves ``make local`` (the demo page's widgets get tokens here and the Lambdas verify
here) and the integration tests, which can also inject raw faults and read back which
verify calls arrived. All state lives in memory inside one app; nothing here ever logs or
records a secret or a raw token.

Run it with ``python -m captcha_local.sandbox --port 3001``.
"""

import argparse
import hashlib
import json
import logging
import math
import secrets
import threading
import time
import uuid
from base64 import b64encode
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import flask
from werkzeug.serving import make_server

TOKEN_LIFETIME_SECONDS = 300
# Tokens are forgotten this long after issue so a long `make local` session stays small,
# while still answering "expired" (not "unknown") for anything a test could backdate.
TOKEN_RETENTION_SECONDS = 3600
RATE_WINDOW_SECONDS = 60
SWETRIX_RATE_LIMIT = 120
YCAPTCHA_RATE_LIMIT = 100
FRIENDLY_V2_MAX_RESPONSE_BYTES = 16 * 1024
DEFAULT_SOLVE_TIME_MS = 1500

SWETRIX_PASS_SECRET = "PASS000000000000000000"
SWETRIX_FAIL_SECRET = "FAIL000000000000000000"
SWETRIX_USED_SECRET = "USED000000000000000000"

# Cloudflare's documented Turnstile test keys. The passing and interactive site keys make the widget
# hand out one fixed dummy token; the failing ones never produce a token. The test secrets accept
# only that dummy token: always passing, always failing, or reporting it already spent.
TURNSTILE_DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"
TURNSTILE_PASS_SITEKEYS = frozenset(
    {"1x00000000000000000000AA", "1x00000000000000000000BB", "3x00000000000000000000FF"}
)
TURNSTILE_FAIL_SITEKEYS = frozenset({"2x00000000000000000000AB", "2x00000000000000000000BB"})
TURNSTILE_PASS_SECRET = "1x0000000000000000000000000000000AA"
TURNSTILE_FAIL_SECRET = "2x0000000000000000000000000000000AA"
TURNSTILE_SPENT_SECRET = "3x0000000000000000000000000000000AA"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    secret: str
    sitekey: str


SANDBOX_CREDENTIALS: dict[str, Credentials] = {
    "captchacat": Credentials(secret="sandbox-captchacat-api-key", sitekey="ca7ca7c0ffee00000001"),
    "byebot": Credentials(secret="sandbox-byebot-api-key", sitekey="b7eb07c0ffee00000002"),
    "swetrix": Credentials(secret="sandbox-swetrix-secret", sitekey="sandbox-pid1"),
    "ycaptcha": Credentials(secret="sk_sandbox" + "0" * 25, sitekey="pk_sandbox" + "0" * 25),
    "friendlycaptcha": Credentials(secret="sandbox-friendlycaptcha-api-key", sitekey="FCMSANDBOX0000000"),
    "turnstile": Credentials(secret="0x4AAAAAAAsandbox-turnstile-secret", sitekey="0x4AAAAAAAsandboxSiteKey"),
}


# --------------------------------------------------------------------------------------
# Shared plumbing: replies, tokens, request bodies
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Captcha Cat and ByeBot: one engine, two brands
# --------------------------------------------------------------------------------------

# ByeBot documents a JSON body on success; Captcha Cat sends an empty 200.
_ENGINE_SUCCESS_BODY = {"captchacat": False, "byebot": True}


def verify_engine(state: SandboxState, provider: str, request: flask.Request, now: float) -> Reply:
    body = json_object(request)
    if body is None:
        return Reply(400)
    # The engine's answer to a wrong key is undocumented: 403 keeps it "could not verify"
    # for the client, and the token stays usable since the engine never looked at it.
    if body.get("api_key") != state.credentials[provider].secret:
        return Reply(403)
    issued = state.lookup(provider, body.get("token"))
    # Invalid, expired and used are deliberately indistinguishable: all a bare 400.
    if issued is None or issued.used or issued.expired(now):
        return Reply(400)
    issued.used = True
    if not _ENGINE_SUCCESS_BODY[provider]:
        return Reply(200)
    return json_reply(
        200,
        {
            "success": True,
            "sitekey": issued.sitekey,
            "challenged_at": int(issued.issued_at),
            "solve_time_ms": issued.solve_time_ms,
            "interactive_solved": issued.interactive,
        },
    )


# --------------------------------------------------------------------------------------
# Swetrix Captcha (NestJS: errors are {"statusCode", "message", "error"})
# --------------------------------------------------------------------------------------


def swetrix_error(status: int, message: str | list[str], error: str = "Bad Request") -> Reply:
    return json_reply(status, {"statusCode": status, "message": message, "error": error})


def swetrix_validation_messages(body: Mapping[str, Any]) -> list[str]:
    """class-validator style messages for missing or empty fields (an array, not a string)."""
    messages: list[str] = []
    for name in ("token", "secret"):
        if non_empty_str(body.get(name)) is None:
            messages += [f"{name} should not be empty", f"{name} must be a string"]
    return messages


def swetrix_data(issued: IssuedToken) -> dict[str, Any]:
    if issued.legacy:
        return {
            "hash": issued.challenge,
            "timestamp": epoch_ms(issued.issued_at),
            "autoVerified": not issued.interactive,
            "pid": issued.sitekey,
        }
    return {"challenge": issued.challenge, "timestamp": epoch_ms(issued.issued_at), "pid": issued.sitekey}


def swetrix_test_secret_reply(state: SandboxState, token: str, secret: str, now: float) -> Reply | None:
    """The hosted service's fixed-outcome secrets; they never touch the token store."""
    if secret == SWETRIX_FAIL_SECRET:
        return swetrix_error(400, "Could not decrypt token")
    if secret == SWETRIX_USED_SECRET:
        return swetrix_error(400, "Token already used")
    if secret != SWETRIX_PASS_SECRET:
        return None
    issued = state.lookup("swetrix", token)
    if issued is not None:
        return json_reply(200, {"success": True, "data": swetrix_data(issued)})
    pid = state.credentials["swetrix"].sitekey
    data = {"challenge": sha256_hex(token), "timestamp": epoch_ms(now), "pid": pid}
    return json_reply(200, {"success": True, "data": data})


def verify_swetrix(state: SandboxState, provider: str, request: flask.Request, now: float) -> Reply:
    # The throttler guard runs before body validation, so every call counts.
    if state.throttle(provider, SWETRIX_RATE_LIMIT, now) is not None:
        return swetrix_error(429, "Too many requests, please try again later", "Too Many Requests")
    body = json_or_form(request)
    if body is None:
        return swetrix_error(400, "Unexpected token in JSON body")
    messages = swetrix_validation_messages(body)
    if messages:
        return swetrix_error(400, messages)
    token, secret = body["token"], body["secret"]
    fixed = swetrix_test_secret_reply(state, token, secret, now)
    if fixed is not None:
        return fixed
    issued = state.lookup(provider, token)
    # Tokens are encrypted with the project secret: a wrong secret looks like a bad token,
    # and the token is left unused because the server never got to read it.
    if issued is None or secret != state.credentials[provider].secret:
        return swetrix_error(400, "Could not decrypt token")
    if issued.expired(now):
        return swetrix_error(400, "Token expired")
    if issued.used:
        return swetrix_error(400, "Token already used")
    issued.used = True
    return json_reply(200, {"success": True, "data": swetrix_data(issued)})


# --------------------------------------------------------------------------------------
# yCAPTCHA
# --------------------------------------------------------------------------------------


def ycaptcha_failure(error: str, legacy: bool) -> Reply:
    return json_reply(200, {"success": False} if legacy else {"success": False, "error": error})


def verify_ycaptcha(state: SandboxState, provider: str, request: flask.Request, now: float) -> Reply:
    retry_after = state.throttle(provider, YCAPTCHA_RATE_LIMIT, now)
    if retry_after is not None:
        return json_reply(
            429, {"error": "Too many requests", "retryAfter": retry_after}, {"Retry-After": str(retry_after)}
        )
    # JSON only: the route reads request.json(), so a form body arrives as "no fields".
    body = json_object(request) or {}
    token, secret = non_empty_str(body.get("token")), non_empty_str(body.get("secretKey"))
    if token is None or secret is None:
        return json_reply(400, {"success": False, "error": "Missing token or secretKey"})
    # The provider deletes the token before it compares the secret: a wrong secret burns it,
    # and a used token is simply gone, hence "Invalid token".
    issued = state.tokens.pop((provider, token), None)
    if issued is None:
        return ycaptcha_failure("Invalid token", legacy=False)
    if secret != state.credentials[provider].secret:
        return ycaptcha_failure("Invalid secretKey", issued.legacy)
    if issued.expired(now):
        return ycaptcha_failure("Invalid token", issued.legacy)
    return json_reply(200, {"success": True})


# --------------------------------------------------------------------------------------
# Friendly Captcha v1 (friendly-challenge) and v2 (@friendlycaptcha/sdk)
# --------------------------------------------------------------------------------------


def friendly_v1_failure(status: int, code: str, details: str) -> Reply:
    return json_reply(status, {"success": False, "errors": [code], "details": details})


def verify_friendly_v1(state: SandboxState, provider: str, request: flask.Request, now: float) -> Reply:
    body = json_or_form(request)
    fields = ("solution", "secret", "sitekey")
    if body is None or any(not isinstance(body.get(name, ""), str) for name in fields):
        return friendly_v1_failure(400, "bad_request", "the request body is not valid JSON or form data")
    secret, solution, sitekey = body.get("secret", ""), body.get("solution", ""), body.get("sitekey", "")
    if not secret:
        return friendly_v1_failure(400, "secret_missing", "the secret (API key) parameter is missing")
    if secret != state.credentials[provider].secret:
        return friendly_v1_failure(401, "secret_invalid", "the API key is invalid")
    if not solution:
        return friendly_v1_failure(400, "solution_missing", "the solution parameter is missing")
    issued = state.lookup(provider, solution)
    # Widget placeholders (".UNSTARTED", ...), v2 responses and another site's puzzles all
    # fail the signature check the same way.
    if issued is None or issued.version != "v1" or (sitekey and sitekey != issued.sitekey):
        return friendly_v1_failure(200, "solution_invalid", "the solution is invalid")
    if issued.used or issued.expired(now):
        return friendly_v1_failure(
            200, "solution_timeout_or_duplicate", "the puzzle has expired or was already used"
        )
    issued.used = True
    return json_reply(200, {"success": True})


def friendly_v2_failure(status: int, code: str, detail: str) -> Reply:
    return json_reply(status, {"success": False, "error": {"error_code": code, "detail": detail}})


def friendly_v2_request_problem(body: Mapping[str, Any]) -> Reply | None:
    """The 400 answer for a malformed request body, or None when it is well formed."""
    sitekey = body.get("sitekey")
    if sitekey is not None and non_empty_str(sitekey) is None:
        return friendly_v2_failure(400, "sitekey_invalid", "sitekey must be a non-empty string")
    response = body.get("response")
    if response is None or response == "":
        return friendly_v2_failure(400, "response_missing", "the response field is missing")
    if not isinstance(response, str) or len(response.encode()) > FRIENDLY_V2_MAX_RESPONSE_BYTES:
        return friendly_v2_failure(400, "bad_request", "response must be a string of at most 16 KB")
    return None


def verify_friendly_v2(state: SandboxState, provider: str, request: flask.Request, now: float) -> Reply:
    api_key = request.headers.get("X-API-Key", "")
    if not api_key:
        return friendly_v2_failure(401, "auth_required", "the X-API-Key header is missing")
    if api_key != state.credentials[provider].secret:
        return friendly_v2_failure(401, "auth_invalid", "the API key is invalid")
    body = json_object(request)
    if body is None:
        return friendly_v2_failure(400, "bad_request", "the body must be a JSON object")
    problem = friendly_v2_request_problem(body)
    if problem is not None:
        return problem
    issued = state.lookup(provider, body["response"])
    sitekey = body.get("sitekey")
    if issued is None or issued.version != "v2" or (sitekey is not None and sitekey != issued.sitekey):
        return friendly_v2_failure(200, "response_invalid", "the response is invalid")
    if issued.used:
        return friendly_v2_failure(200, "response_duplicate", "the response was already used")
    if issued.expired(now):
        return friendly_v2_failure(200, "response_timeout", "the response has expired")
    issued.used = True
    return json_reply(
        200,
        {
            "success": True,
            "data": {
                "event_id": "ev_" + secrets.token_hex(12),
                "challenge": {"timestamp": iso8601(issued.issued_at), "origin": issued.origin},
                "risk_intelligence": None,
            },
        },
    )


# --------------------------------------------------------------------------------------
# Cloudflare Turnstile (siteverify: every answer is JSON with "success" and "error-codes")
# --------------------------------------------------------------------------------------


def turnstile_failure(*codes: str) -> Reply:
    # Cloudflare documents only 200 answers; a failure is "success": false with its codes.
    return json_reply(200, {"success": False, "error-codes": list(codes)})


def turnstile_success(challenge_ts: float, hostname: str | None, action: str = "", cdata: str = "") -> Reply:
    return json_reply(
        200,
        {
            "success": True,
            "challenge_ts": iso8601(challenge_ts),
            "hostname": hostname,
            "error-codes": [],
            "action": action,
            "cdata": cdata,
        },
    )


def turnstile_request_problem(body: Mapping[str, Any]) -> Reply | None:
    """The failure for a request Cloudflare would not judge a token from, or None when well formed."""
    fields = ("secret", "response", "remoteip", "idempotency_key")
    if any(body.get(name) is not None and not isinstance(body[name], str) for name in fields):
        return turnstile_failure("bad-request")
    if not body.get("secret"):
        return turnstile_failure("missing-input-secret")
    if not body.get("response"):
        return turnstile_failure("missing-input-response")
    key = body.get("idempotency_key")
    if key:
        try:
            uuid.UUID(key)
        except ValueError:
            return turnstile_failure("bad-request")
    return None


def turnstile_test_secret_reply(secret: str, token: str, now: float) -> Reply | None:
    """The documented test secrets: they accept only the dummy token and never touch the token store."""
    if secret not in (TURNSTILE_PASS_SECRET, TURNSTILE_FAIL_SECRET, TURNSTILE_SPENT_SECRET):
        return None
    if token != TURNSTILE_DUMMY_TOKEN:
        return turnstile_failure("invalid-input-secret")
    if secret == TURNSTILE_FAIL_SECRET:
        return turnstile_failure("invalid-input-response")
    if secret == TURNSTILE_SPENT_SECRET:
        return turnstile_failure("timeout-or-duplicate")
    # The values Cloudflare's testing page shows for a passing dummy token.
    return turnstile_success(now, "localhost", action="test", cdata="test-data")


def turnstile_hostname(origin: str | None) -> str | None:
    # A token issued without an origin (by a test or curl) came from no page: there is no hostname.
    try:
        return urlsplit(origin).hostname if origin else None
    except ValueError:
        return None


def verify_turnstile(state: SandboxState, provider: str, request: flask.Request, now: float) -> Reply:
    body = json_or_form(request)
    if body is None:
        return turnstile_failure("bad-request")
    problem = turnstile_request_problem(body)
    if problem is not None:
        return problem
    secret, token, key = body["secret"], body["response"], body.get("idempotency_key") or None
    fixed = turnstile_test_secret_reply(secret, token, now)
    if fixed is not None:
        return fixed
    # The secret names the widget whose tokens are checked, so a wrong one leaves the token unread.
    if secret != state.credentials[provider].secret:
        return turnstile_failure("invalid-input-secret")
    issued = state.lookup(provider, token)
    if issued is None:
        return turnstile_failure("invalid-input-response")
    if issued.used:
        # The same token with the key of the verification that spent it gets that answer again.
        if key is not None and key == issued.idempotency_key:
            return turnstile_success(issued.issued_at, turnstile_hostname(issued.origin))
        return turnstile_failure("timeout-or-duplicate")
    if issued.expired(now):
        return turnstile_failure("timeout-or-duplicate")
    issued.used = True
    issued.idempotency_key = key
    return turnstile_success(issued.issued_at, turnstile_hostname(issued.origin))


VERIFY_ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("captchacat", "/captchacat/validate_token", verify_engine),
    ("byebot", "/byebot/validate_token", verify_engine),
    ("swetrix", "/swetrix/v1/captcha/validate", verify_swetrix),
    ("ycaptcha", "/ycaptcha/api/v0/captcha/siteverify", verify_ycaptcha),
    ("friendlycaptcha", "/friendlycaptcha/api/v1/siteverify", verify_friendly_v1),
    ("friendlycaptcha", "/friendlycaptcha/api/v2/captcha/siteverify", verify_friendly_v2),
    ("turnstile", "/turnstile/turnstile/v0/siteverify", verify_turnstile),
)

# The providers this sandbox stands in for: every one with a verify route.
PROVIDERS: tuple[str, ...] = tuple(dict.fromkeys(provider for provider, _, _ in VERIFY_ROUTES))


# --------------------------------------------------------------------------------------
# Token issuing (what a provider's widget would obtain after a solved challenge)
# --------------------------------------------------------------------------------------


class FieldError(ValueError):
    """A request field the sandbox's own endpoints cannot accept; answered as 400."""


def int_field(body: Mapping[str, Any], name: str, default: int) -> int:
    value = body.get(name)
    if value is None or value == "":
        return default
    # JSON booleans are ints in Python; they are a caller mistake here.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise FieldError(f"{name} must be an integer")
    try:
        number = int(value)
    except ValueError:
        raise FieldError(f"{name} must be an integer") from None
    if number < 0:
        raise FieldError(f"{name} must not be negative")
    return number


def float_field(body: Mapping[str, Any], name: str) -> float:
    value = body.get(name)
    if value is None or value == "":
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FieldError(f"{name} must be a number")
    try:
        number = float(value)
    except ValueError:
        raise FieldError(f"{name} must be a number") from None
    if not math.isfinite(number) or number < 0:
        raise FieldError(f"{name} must be a non-negative number")
    return number


def bool_field(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"", "0", "false", "off", "no"}:
        return False
    if isinstance(value, str) and value.lower() in {"1", "true", "on", "yes"}:
        return True
    raise FieldError(f"{name} must be a boolean")


def choice_field(body: Mapping[str, Any], name: str, choices: Sequence[str]) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if value not in choices:
        allowed = ", ".join(choices) if choices else "nothing for this provider"
        raise FieldError(f"{name} must be one of: {allowed}")
    return str(value)


# Options only some providers have: older server shapes, and Friendly Captcha's API generation.
_SHAPES: Mapping[str, tuple[str, ...]] = {"swetrix": ("current", "legacy"), "ycaptcha": ("current", "legacy")}
_VERSIONS: Mapping[str, tuple[str, ...]] = {"friendlycaptcha": ("v1", "v2")}


def response_field(provider: str, version: str | None) -> str:
    """The hidden form field the provider's widget fills by default."""
    if provider == "friendlycaptcha":
        return "frc-captcha-response" if version == "v2" else "frc-captcha-solution"
    return {
        "captchacat": "captchacat-token",
        "byebot": "byebot-token",
        "swetrix": "swetrix-captcha-response",
        "ycaptcha": "ycaptcha-response",
        "turnstile": "cf-turnstile-response",
    }[provider]


def new_token(provider: str, version: str | None) -> str:
    if provider == "friendlycaptcha" and version == "v1":
        # signature.puzzle.solution.diagnostics; standard base64 keeps the real '+' and '/'
        # that a form encoder must escape.
        parts = (b64encode(secrets.token_bytes(size)).decode() for size in (48, 96, 9))
        return ".".join((secrets.token_hex(16), *parts))
    if provider == "friendlycaptcha":
        return secrets.token_urlsafe(96)
    if provider == "turnstile":
        # Opaque and dot-separated like Cloudflare's, well under its 2,048-character maximum.
        return f"0.{secrets.token_urlsafe(384)}.{secrets.token_hex(16)}"
    # 64 chars of [A-Za-z0-9_-]: yCAPTCHA's documented shape, opaque for the others.
    return secrets.token_urlsafe(48)


def parse_issue_request(
    provider: str, body: Mapping[str, Any], credentials: Credentials, origin_header: str | None, now: float
) -> IssuedToken:
    if body.get("sitekey") != credentials.sitekey:
        raise FieldError(f"sitekey is not the {provider} sandbox site key")
    shape = choice_field(body, "shape", _SHAPES.get(provider, ()))
    version = choice_field(body, "version", _VERSIONS.get(provider, ()))
    if provider == "friendlycaptcha":
        version = version or "v1"
    origin = body.get("origin") or origin_header
    if origin is not None and not isinstance(origin, str):
        raise FieldError("origin must be a string")
    return IssuedToken(
        provider=provider,
        sitekey=credentials.sitekey,
        issued_at=now - float_field(body, "age_seconds"),
        solve_time_ms=int_field(body, "solve_time_ms", DEFAULT_SOLVE_TIME_MS),
        interactive=bool_field(body, "interactive"),
        legacy=shape == "legacy",
        version=version,
        origin=origin,
        challenge=secrets.token_hex(32),
    )


def turnstile_test_sitekey_issue(provider: str, body: Mapping[str, Any]) -> flask.Response | None:
    """What the widget gets with one of Cloudflare's test site keys: the dummy token, or no token."""
    sitekey = body.get("sitekey")
    if provider != "turnstile" or not isinstance(sitekey, str):
        return None
    if sitekey in TURNSTILE_FAIL_SITEKEYS:
        return issue_error(400, "this Turnstile test site key always fails the challenge")
    if sitekey in TURNSTILE_PASS_SITEKEYS:
        return with_cors(flask.jsonify(token=TURNSTILE_DUMMY_TOKEN, field=response_field(provider, None)))
    return None


def issue_error(status: int, message: str) -> flask.Response:
    response = flask.jsonify(error=message)
    response.status_code = status
    return with_cors(response)


def with_cors(response: flask.Response) -> flask.Response:
    # The demo page runs on another localhost port and calls /issue with fetch.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Max-Age"] = "600"
    return response


# --------------------------------------------------------------------------------------
# Fault injection (tests only)
# --------------------------------------------------------------------------------------


def parse_fault(body: Mapping[str, Any]) -> tuple[str, Fault]:
    provider = body.get("provider")
    if provider not in PROVIDERS:
        raise FieldError(f"provider must be one of: {', '.join(PROVIDERS)}")
    status = body.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise FieldError("status must be an HTTP status code")
    raw = body.get("body", "")
    headers = body.get("headers") or {}
    if not isinstance(raw, str):
        raise FieldError("body must be a string (the raw response body)")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise FieldError("headers must be an object of strings")
    # Every provider speaks JSON, so a fault body is labelled JSON unless the test says otherwise.
    if raw and not any(name.lower() == "content-type" for name in headers):
        headers = {"Content-Type": "application/json", **headers}
    count = int_field(body, "count", 1)
    if count < 1:
        raise FieldError("count must be at least 1")
    return provider, Fault(Reply(status, raw, headers), int_field(body, "delay_ms", 0), count)


# --------------------------------------------------------------------------------------
# Stand-in widget script
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WidgetMarkup:
    css_class: str
    sitekey_attribute: str
    version_attribute: str | None = None


WIDGET_MARKUP: Mapping[str, WidgetMarkup] = {
    "captchacat": WidgetMarkup("captcha-widget", "data-sitekey"),
    "byebot": WidgetMarkup("captcha-widget", "data-sitekey"),
    "swetrix": WidgetMarkup("swecaptcha", "data-project-id"),
    "ycaptcha": WidgetMarkup("y-captcha", "data-sitekey"),
    "friendlycaptcha": WidgetMarkup("frc-captcha", "data-sitekey", "data-api-version"),
    "turnstile": WidgetMarkup("cf-turnstile", "data-sitekey"),
}

_WIDGET_TEMPLATE = Path(__file__).with_name("widget.js")
_WIDGET_CONFIG_PLACEHOLDER = "__SANDBOX_CONFIG__"


def widget_config(provider: str, credentials: Mapping[str, Credentials]) -> dict[str, Any]:
    markup = WIDGET_MARKUP[provider]
    return {
        "provider": provider,
        "selector": "." + markup.css_class,
        "sitekeyAttribute": markup.sitekey_attribute,
        "versionAttribute": markup.version_attribute,
        # Captcha Cat and ByeBot share their markup; each script leaves the other brand's divs alone.
        "skipSitekeys": [
            credentials[other].sitekey
            for other in PROVIDERS
            if other != provider and WIDGET_MARKUP[other].css_class == markup.css_class
        ],
    }


def render_widget(template: str, provider: str, credentials: Mapping[str, Credentials]) -> str:
    return template.replace(_WIDGET_CONFIG_PLACEHOLDER, json.dumps(widget_config(provider, credentials)))


# --------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------


def create_app(
    credentials: dict[str, Credentials] = SANDBOX_CREDENTIALS, clock: Callable[[], float] = time.time
) -> flask.Flask:
    missing = [provider for provider in PROVIDERS if provider not in credentials]
    if missing:
        raise ValueError(f"credentials missing for: {', '.join(missing)}")
    app = flask.Flask(__name__)
    state = SandboxState(credentials)
    template = _WIDGET_TEMPLATE.read_text(encoding="utf-8")
    widgets = {provider: render_widget(template, provider, credentials) for provider in PROVIDERS}

    def verify_view(provider: str, handler: Handler) -> Callable[[], flask.Response]:
        def view() -> flask.Response:
            request = flask.request
            digest = token_digest(request)
            with state.lock:
                now = clock()
                fault = state.take_fault(provider)
                reply = fault.reply if fault is not None else handler(state, provider, request, now)
                state.calls.append(
                    {
                        "provider": provider,
                        "path": request.path,
                        "status": reply.status,
                        "token_sha256": digest,
                        "fault": fault is not None,
                        "at": now,
                    }
                )
            if fault is not None and fault.delay_ms:
                time.sleep(fault.delay_ms / 1000)
            return reply.to_response()

        return view

    for provider, path, handler in VERIFY_ROUTES:
        app.add_url_rule(
            path, endpoint=f"verify:{path}", view_func=verify_view(provider, handler), methods=["POST"]
        )

    @app.route("/<provider>/issue", methods=["POST", "OPTIONS"])
    def issue(provider: str) -> flask.Response:
        if flask.request.method == "OPTIONS":
            return with_cors(flask.Response(status=204))
        if provider not in PROVIDERS:
            return issue_error(404, f"unknown provider {provider!r}")
        body = json_or_form(flask.request)
        if body is None:
            return issue_error(400, "body must be a JSON object or form data")
        fixed = turnstile_test_sitekey_issue(provider, body)
        if fixed is not None:
            return fixed
        with state.lock:
            now = clock()
            try:
                issued = parse_issue_request(
                    provider, body, state.credentials[provider], flask.request.headers.get("Origin"), now
                )
            except FieldError as error:
                return issue_error(400, str(error))
            token = new_token(provider, issued.version)
            state.store(token, issued, now)
        return with_cors(flask.jsonify(token=token, field=response_field(provider, issued.version)))

    @app.get("/<provider>/widget.js")
    def widget(provider: str) -> flask.Response:
        if provider not in PROVIDERS:
            flask.abort(404)
        response = flask.Response(widgets[provider], mimetype="text/javascript")
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/_sandbox/faults")
    def add_fault() -> tuple[flask.Response, int]:
        try:
            provider, fault = parse_fault(json_object(flask.request) or {})
        except FieldError as error:
            return flask.jsonify(error=str(error)), 400
        with state.lock:
            state.faults[provider].append(fault)
        return flask.jsonify(provider=provider, count=fault.remaining), 201

    @app.delete("/_sandbox/faults")
    def clear_faults() -> tuple[str, int]:
        with state.lock:
            state.faults.clear()
        return "", 204

    @app.get("/_sandbox/calls")
    def list_calls() -> flask.Response:
        with state.lock:
            return flask.jsonify(list(state.calls))

    @app.delete("/_sandbox/calls")
    def clear_calls() -> tuple[str, int]:
        with state.lock:
            state.calls.clear()
        return "", 204

    return app


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Local sandbox of the CAPTCHA providers' verify APIs.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=3001, help="0 picks a free port (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = make_server(args.host, args.port, create_app(), threaded=True)
    _log.info("CAPTCHA provider sandbox listening on http://%s:%d", args.host, server.server_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
