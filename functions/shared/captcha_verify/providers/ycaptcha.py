"""yCAPTCHA (xyspg/ycaptcha).

Protocol: POST JSON only {"token", "secretKey"}. A 200 is not a success by itself: only
{"success": true} is, and it carries no metadata. {"success": false, "error": "Invalid token"}
is an unknown, used or expired token; "Invalid secretKey" is our secret, and the server deletes
the token before checking the secret, so a wrong secret burns the user's token: the secret's
shape is checked here before anything is sent. A 500 restores the token, so it is retried.
"""

from __future__ import annotations

import re
from typing import ClassVar

from captcha_verify.outcome import ErrorCode, ProviderAnswer
from captcha_verify.providers.base import Adapter, OutboundCall, json_object, unreadable


class YCaptchaAdapter(Adapter):
    name: ClassVar[str] = "ycaptcha"
    token_fields: ClassVar[tuple[str, ...]] = ("ycaptcha-response",)
    default_url: ClassVar[str] = "https://ycaptcha.xyspg.moe/api/v0/captcha/siteverify"
    token_pattern: ClassVar[re.Pattern[str] | None] = re.compile(r"[A-Za-z0-9_-]{64}")
    secret_pattern: ClassVar[re.Pattern[str] | None] = re.compile(r"sk_[A-Za-z0-9_-]{32}")
    retry_statuses: ClassVar[frozenset[int]] = frozenset({500})

    def build_call(self, token: str, secret: str, sitekey: str | None) -> OutboundCall:
        return OutboundCall(self.verify_url, {"token": token, "secretKey": secret})

    def interpret(self, status: int, body: bytes) -> ProviderAnswer:
        data = json_object(body)
        if status != 200 or data is None:
            return unreadable(status)
        if data.get("success") is True:
            return ProviderAnswer.verified()
        if data.get("success") is not False:
            return ProviderAnswer.unverifiable("200 without a success flag")
        error = data.get("error")
        if error == "Invalid secretKey":
            return ProviderAnswer.unverifiable("provider rejected our secret", ErrorCode.INVALID_INPUT_SECRET)
        if error is None or error == "Invalid token":
            # Older servers answer every failure as a bare {"success": false}.
            return ProviderAnswer.rejected(ErrorCode.INVALID_INPUT_RESPONSE, "token invalid, expired or used")
        return ProviderAnswer.unverifiable("unrecognised failure")
