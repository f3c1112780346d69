"""Captcha Cat and ByeBot: two brands of one engine, verified through its `validate_token` route.

Protocol: POST JSON {"api_key", "token"}. Any 2xx means valid, with an optional JSON body
({"success", "sitekey", "challenged_at" (unix seconds), "solve_time_ms", "interactive_solved"});
Captcha Cat may send an empty body. 400 with no body means invalid, expired or already used,
which the engine does not tell apart. Every other status means the engine could not verify.
"""

from __future__ import annotations

from typing import ClassVar

from captcha_verify.outcome import ErrorCode, ProviderAnswer
from captcha_verify.providers.base import (
    Adapter,
    OutboundCall,
    bool_or_none,
    from_epoch,
    int_or_none,
    json_object,
    str_or_none,
    unexpected_status,
)


class RayEngineAdapter(Adapter):
    def build_call(self, token: str, secret: str, sitekey: str | None) -> OutboundCall:
        return OutboundCall(self.verify_url, {"api_key": secret, "token": token})

    def interpret(self, status: int, body: bytes) -> ProviderAnswer:
        if 200 <= status < 300:
            return self._verified(body)
        if status == 400:
            return ProviderAnswer.rejected(ErrorCode.INVALID_INPUT_RESPONSE, "token invalid, expired or used")
        return unexpected_status(status)

    @staticmethod
    def _verified(body: bytes) -> ProviderAnswer:
        # The status alone is the verdict; the body is optional metadata (the engine's own client
        # reads it only when present), so an empty or unreadable body still verifies.
        if not body.strip():
            return ProviderAnswer.verified()
        data = json_object(body)
        if data is None:
            return ProviderAnswer.verified()
        if data.get("success", True) is not True:
            return ProviderAnswer.unverifiable("2xx body says success is not true")
        return ProviderAnswer.verified(
            challenge_ts=from_epoch(data.get("challenged_at"), millis=False),
            sitekey=str_or_none(data.get("sitekey")),
            solve_time_ms=int_or_none(data.get("solve_time_ms")),
            interactive=bool_or_none(data.get("interactive_solved")),
        )


class CaptchaCatAdapter(RayEngineAdapter):
    name: ClassVar[str] = "captchacat"
    token_fields: ClassVar[tuple[str, ...]] = ("captchacat-token",)
    default_url: ClassVar[str] = "https://challenge.captchacat.com/validate_token"


class ByeBotAdapter(RayEngineAdapter):
    name: ClassVar[str] = "byebot"
    token_fields: ClassVar[tuple[str, ...]] = ("byebot-token",)
    default_url: ClassVar[str] = "https://challenge.byebot.de/validate_token"
