"""Captcha Cat and ByeBot: one engine (Ray), two brands."""

from __future__ import annotations

import flask

from captcha_local.sandbox.common import (
    Credentials,
    Reply,
    SandboxProvider,
    SandboxState,
    json_object,
    json_reply,
)

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


CAPTCHACAT = SandboxProvider(
    "captchacat",
    Credentials(secret="sandbox-captchacat-api-key", sitekey="ca7ca7c0ffee00000001"),
    (("/captchacat/validate_token", verify_engine),),
)
BYEBOT = SandboxProvider(
    "byebot",
    Credentials(secret="sandbox-byebot-api-key", sitekey="b7eb07c0ffee00000002"),
    (("/byebot/validate_token", verify_engine),),
)
