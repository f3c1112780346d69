"""Swetrix Captcha, hosted or self-hosted.

Protocol: POST JSON {"token", "secret"}. Success is 200 {"success": true, "data": {...}} where
data is {"challenge", "timestamp" (epoch ms), "pid"} on current servers and
{"hash", "timestamp", "autoVerified", "pid"} on older ones. A failure's HTTP status equals the
`statusCode` of its body, whose `message` is a string, or an array of strings when a field is missing.
"Could not decrypt token" is both a bad token and a wrong secret: the server cannot tell them apart.
"""

from __future__ import annotations

from typing import ClassVar

from captcha_verify.outcome import ErrorCode, ProviderAnswer
from captcha_verify.providers.base import (
    Adapter,
    OutboundCall,
    from_epoch,
    json_object,
    str_or_none,
    unexpected_status,
)

_TOKEN_REJECTIONS: dict[str, ErrorCode] = {
    "token expired": ErrorCode.TIMEOUT_OR_DUPLICATE,
    "token already used": ErrorCode.TIMEOUT_OR_DUPLICATE,
    "could not decrypt token": ErrorCode.INVALID_INPUT_RESPONSE,
    "invalid token payload": ErrorCode.INVALID_INPUT_RESPONSE,
}


class SwetrixAdapter(Adapter):
    name: ClassVar[str] = "swetrix"
    token_fields: ClassVar[tuple[str, ...]] = ("swetrix-captcha-response",)
    default_url: ClassVar[str] = "https://api.swetrixcaptcha.com/v1/captcha/validate"

    def build_call(self, token: str, secret: str, sitekey: str | None) -> OutboundCall:
        return OutboundCall(self.verify_url, {"token": token, "secret": secret})

    def interpret(self, status: int, body: bytes) -> ProviderAnswer:
        data = json_object(body)
        if status == 200:
            return self._success(data)
        if status == 400 and data is not None:
            return self._failure(data.get("message"))
        return unexpected_status(status)

    @staticmethod
    def _success(body: dict[str, object] | None) -> ProviderAnswer:
        data = body.get("data") if body else None
        if body is None or body.get("success") is not True or not isinstance(data, dict):
            return ProviderAnswer.unverifiable("200 without a success body")
        auto_verified = data.get("autoVerified")
        return ProviderAnswer.verified(
            challenge_ts=from_epoch(data.get("timestamp"), millis=True),
            sitekey=str_or_none(data.get("pid")),
            interactive=(not auto_verified) if isinstance(auto_verified, bool) else None,
        )

    @staticmethod
    def _failure(message: object) -> ProviderAnswer:
        if isinstance(message, list):
            # We always send both fields, so a "missing field" answer is our request's fault.
            return ProviderAnswer.unverifiable("provider says a field is missing")
        code = _TOKEN_REJECTIONS.get(message.strip().lower()) if isinstance(message, str) else None
        if code is None:
            return ProviderAnswer.unverifiable("unrecognised 400 message")
        return ProviderAnswer.rejected(code, str(message).lower())
