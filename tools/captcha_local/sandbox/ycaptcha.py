"""yCAPTCHA."""

from __future__ import annotations

import flask

from captcha_local.sandbox.common import (
    Credentials,
    Reply,
    SandboxProvider,
    SandboxState,
    json_object,
    json_reply,
    non_empty_str,
)

YCAPTCHA_RATE_LIMIT = 100


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


YCAPTCHA = SandboxProvider(
    "ycaptcha",
    Credentials(secret="sk_sandbox" + "0" * 25, sitekey="pk_sandbox" + "0" * 25),
    (("/ycaptcha/api/v0/captcha/siteverify", verify_ycaptcha),),
    shapes=("current", "legacy"),
)
