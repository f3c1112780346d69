"""Cloudflare Turnstile (siteverify: every answer is JSON with "success" and "error-codes")."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import flask

from captcha_local.sandbox.common import (
    Credentials,
    Reply,
    SandboxProvider,
    SandboxState,
    iso8601,
    json_or_form,
    json_reply,
)

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


def new_turnstile_token(version: str | None) -> str:
    # Opaque and dot-separated like Cloudflare's, well under its 2,048-character maximum.
    return f"0.{secrets.token_urlsafe(384)}.{secrets.token_hex(16)}"


def test_sitekey_issue(body: Mapping[str, Any]) -> tuple[int, dict[str, str]] | None:
    """What the widget gets with one of Cloudflare's test site keys: the dummy token, or no token."""
    sitekey = body.get("sitekey")
    if sitekey in TURNSTILE_FAIL_SITEKEYS:
        return 400, {"error": "this Turnstile test site key always fails the challenge"}
    if sitekey in TURNSTILE_PASS_SITEKEYS:
        return 200, {"token": TURNSTILE_DUMMY_TOKEN}
    return None


TURNSTILE = SandboxProvider(
    "turnstile",
    Credentials(secret="0x4AAAAAAAsandbox-turnstile-secret", sitekey="0x4AAAAAAAsandboxSiteKey"),
    (("/turnstile/turnstile/v0/siteverify", verify_turnstile),),
    new_token=new_turnstile_token,
    fixed_issue=test_sitekey_issue,
)
