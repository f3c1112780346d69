"""Swetrix Captcha (NestJS: errors are {"statusCode", "message", "error"})."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flask

from captcha_local.sandbox.common import (
    Credentials,
    IssuedToken,
    Reply,
    SandboxProvider,
    SandboxState,
    epoch_ms,
    json_or_form,
    json_reply,
    non_empty_str,
    sha256_hex,
)

SWETRIX_RATE_LIMIT = 120

SWETRIX_PASS_SECRET = "PASS000000000000000000"
SWETRIX_FAIL_SECRET = "FAIL000000000000000000"
SWETRIX_USED_SECRET = "USED000000000000000000"


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


SWETRIX = SandboxProvider(
    "swetrix",
    Credentials(secret="sandbox-swetrix-secret", sitekey="sandbox-pid1"),
    (("/swetrix/v1/captcha/validate", verify_swetrix),),
    shapes=("current", "legacy"),
)
