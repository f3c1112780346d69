"""Friendly Captcha, both API generations.

v1: POST {"solution", "secret", "sitekey"?}; {"success", "errors"} where a 200 may still be a
failure. v2: POST {"response", "sitekey"?} with the secret in X-API-Key; failures carry
{"error": {"error_code"}}. In both, only token errors reject; everything else means the
provider could not verify, which Friendly Captcha itself advises accepting under an open policy.
"""

from __future__ import annotations

from typing import ClassVar

from captcha_verify.checks import check_token_shape
from captcha_verify.config import origin_host
from captcha_verify.outcome import ErrorCode, ProviderAnswer, RequestRejected
from captcha_verify.providers.base import (
    Adapter,
    OutboundCall,
    from_iso,
    json_object,
    unexpected_status,
    unreadable,
)

_CONFIGURATION_ERRORS: dict[str, ErrorCode] = {
    "secret_missing": ErrorCode.MISSING_INPUT_SECRET,
    "secret_invalid": ErrorCode.INVALID_INPUT_SECRET,
    "auth_required": ErrorCode.MISSING_INPUT_SECRET,
    "auth_invalid": ErrorCode.INVALID_INPUT_SECRET,
}

_TOKEN_ERRORS: dict[str, ErrorCode] = {
    "solution_invalid": ErrorCode.INVALID_INPUT_RESPONSE,
    "solution_timeout_or_duplicate": ErrorCode.TIMEOUT_OR_DUPLICATE,
    "response_invalid": ErrorCode.INVALID_INPUT_RESPONSE,
    "response_timeout": ErrorCode.TIMEOUT_OR_DUPLICATE,
    "response_duplicate": ErrorCode.TIMEOUT_OR_DUPLICATE,
}


def classify_error(error_code: object) -> ProviderAnswer:
    if not isinstance(error_code, str):
        return ProviderAnswer.unverifiable("failure without an error code")
    if error_code in _TOKEN_ERRORS:
        return ProviderAnswer.rejected(_TOKEN_ERRORS[error_code], error_code)
    return ProviderAnswer.unverifiable(
        f"provider error {error_code}", _CONFIGURATION_ERRORS.get(error_code, ErrorCode.INTERNAL_ERROR)
    )


class FriendlyV1Adapter(Adapter):
    name: ClassVar[str] = "friendlycaptcha"
    token_fields: ClassVar[tuple[str, ...]] = ("frc-captcha-solution",)
    default_url: ClassVar[str] = "https://api.friendlycaptcha.com/api/v1/siteverify"

    def check_token(self, token: str) -> None:
        # The widget fills the field with a placeholder such as ".UNFINISHED" until the puzzle is solved.
        if token.startswith("."):
            raise RequestRejected(ErrorCode.MISSING_INPUT_RESPONSE, "widget placeholder, puzzle not solved")
        check_token_shape(token)
        if token.count(".") != 3:
            raise RequestRejected(ErrorCode.INVALID_INPUT_RESPONSE, "solution does not have four parts")

    def build_call(self, token: str, secret: str, sitekey: str | None) -> OutboundCall:
        payload = {"solution": token, "secret": secret}
        if sitekey:
            payload["sitekey"] = sitekey
        return OutboundCall(self.verify_url, payload)

    def interpret(self, status: int, body: bytes) -> ProviderAnswer:
        data = json_object(body)
        if data is None or not isinstance(data.get("success"), bool):
            return unreadable(status)
        if data["success"] and status == 200:
            return ProviderAnswer.verified()
        errors = data.get("errors")
        first = errors[0] if isinstance(errors, list) and errors else None
        if first is None and status != 200:
            return unexpected_status(status)
        return classify_error(first)


class FriendlyV2Adapter(Adapter):
    name: ClassVar[str] = "friendlycaptcha"
    token_fields: ClassVar[tuple[str, ...]] = ("frc-captcha-response",)
    default_url: ClassVar[str] = "https://global.frcapi.com/api/v2/captcha/siteverify"

    def check_token(self, token: str) -> None:
        if token.startswith("."):
            raise RequestRejected(ErrorCode.MISSING_INPUT_RESPONSE, "widget placeholder, puzzle not solved")
        check_token_shape(token)

    def build_call(self, token: str, secret: str, sitekey: str | None) -> OutboundCall:
        payload = {"response": token}
        if sitekey:
            payload["sitekey"] = sitekey
        return OutboundCall(self.verify_url, payload, {"X-API-Key": secret})

    def interpret(self, status: int, body: bytes) -> ProviderAnswer:
        data = json_object(body)
        if data is None or not isinstance(data.get("success"), bool):
            return unreadable(status)
        if data["success"] and status == 200:
            return self._verified(data.get("data"))
        error = data.get("error")
        error_code = error.get("error_code") if isinstance(error, dict) else None
        if error_code is None and status != 200:
            return unexpected_status(status)
        return classify_error(error_code)

    @staticmethod
    def _verified(data: object) -> ProviderAnswer:
        challenge = data.get("challenge") if isinstance(data, dict) else None
        if not isinstance(challenge, dict):
            return ProviderAnswer.verified()
        origin = challenge.get("origin")
        return ProviderAnswer.verified(
            challenge_ts=from_iso(challenge.get("timestamp")),
            hostname=origin_host(origin),
            origin=origin if isinstance(origin, str) and origin else None,
        )
