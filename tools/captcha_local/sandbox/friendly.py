"""Friendly Captcha v1 (friendly-challenge) and v2 (@friendlycaptcha/sdk)."""

from __future__ import annotations

import secrets
from base64 import b64encode
from collections.abc import Mapping
from typing import Any

import flask

from captcha_local.sandbox.common import (
    Credentials,
    Reply,
    SandboxProvider,
    SandboxState,
    iso8601,
    json_object,
    json_or_form,
    json_reply,
    non_empty_str,
)

FRIENDLY_V2_MAX_RESPONSE_BYTES = 16 * 1024


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


def new_friendly_token(version: str | None) -> str:
    if version == "v1":
        # signature.puzzle.solution.diagnostics; standard base64 keeps the real '+' and '/'
        # that a form encoder must escape.
        parts = (b64encode(secrets.token_bytes(size)).decode() for size in (48, 96, 9))
        return ".".join((secrets.token_hex(16), *parts))
    return secrets.token_urlsafe(96)


FRIENDLY = SandboxProvider(
    "friendlycaptcha",
    Credentials(secret="sandbox-friendlycaptcha-api-key", sitekey="FCMSANDBOX0000000"),
    (
        ("/friendlycaptcha/api/v1/siteverify", verify_friendly_v1),
        ("/friendlycaptcha/api/v2/captcha/siteverify", verify_friendly_v2),
    ),
    new_token=new_friendly_token,
    versions=("v1", "v2"),
)
