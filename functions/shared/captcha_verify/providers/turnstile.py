"""Cloudflare Turnstile.

Protocol: POST (form or JSON) {"secret", "response", "remoteip"?, "idempotency_key"?} to siteverify;
the answer is always JSON {"success", "error-codes", "challenge_ts"?, "hostname"?, "action"?,
"cdata"?}. A 200 is not a success by itself: only "success": true is. The error codes are the
siteverify vocabulary this project answers in, so they map one to one; the only judgement is which
of them are about the visitor's token (a rejection) and which mean Cloudflare did not finish
judging it (could not verify). A token is single use, valid 300 s and at most 2,048 characters.

Cloudflare documents no format for secret keys, so no secret is refused for its shape here.
`remoteip` is optional and, per Cloudflare, not strictly validated; it is not sent, so the
visitor's address stays out of one more request. Turnstile's answer names no site key, so
EXPECTED_SITEKEY cannot be checked; the secret belongs to one widget, whose tokens alone it accepts.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import ClassVar

from captcha_verify.outcome import ErrorCode, ProviderAnswer
from captcha_verify.providers.base import (
    Adapter,
    OutboundCall,
    from_iso,
    json_object,
    unexpected_status,
    unreadable,
)

MAX_TOKEN_LENGTH = 2048
# RFC 1035 caps a name at 253 characters; anything longer is not a hostname a page was served on.
MAX_HOSTNAME_LENGTH = 253
_HOSTNAME = re.compile(rf"[\x21-\x7e]{{1,{MAX_HOSTNAME_LENGTH}}}")

# Fixed, so every function instance derives the same key from the same token (uuid5 is SHA-1 of
# namespace + name: deterministic, and shaped as the UUID Cloudflare asks for).
IDEMPOTENCY_NAMESPACE = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://challenges.cloudflare.com/turnstile/v0/siteverify"
)

_TOKEN_ERRORS: dict[str, ErrorCode] = {
    "invalid-input-response": ErrorCode.INVALID_INPUT_RESPONSE,
    "timeout-or-duplicate": ErrorCode.TIMEOUT_OR_DUPLICATE,
}

# With one of these Cloudflare did not judge the token: our secret, our request, or its own fault.
# We never send an empty token, so "missing-input-response" is a request we did not mean to send.
_UNVERIFIED_ERRORS: dict[str, ErrorCode] = {
    "missing-input-secret": ErrorCode.MISSING_INPUT_SECRET,
    "invalid-input-secret": ErrorCode.INVALID_INPUT_SECRET,
    "missing-input-response": ErrorCode.INTERNAL_ERROR,
    "bad-request": ErrorCode.INTERNAL_ERROR,
    "internal-error": ErrorCode.INTERNAL_ERROR,
}


def idempotency_key(token: str) -> str:
    """The same UUID for every verification of one token, derived from its SHA-256 digest.

    Cloudflare answers a repeated verification that carries the first one's key with the first
    answer instead of "timeout-or-duplicate". The project keeps no "could not verify" outcome, so
    a visitor's retry after a timed-out call, and the transport's own retry, send the token again:
    had Cloudflare spent it on the lost call, a fresh random key would turn that retry into a false
    rejection. A key derived from the token survives across function instances and cold starts.
    A repeat of a token that was already verified (kept) never reaches Cloudflare: the project's own
    idempotency record answers it for IDEMPOTENCY_WINDOW_SECONDS, longer than the token lives by default.
    """
    digest = hashlib.sha256(token.encode()).hexdigest()
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, digest))


def classify_errors(codes: object) -> ProviderAnswer:
    """A failure's error codes: one that says Cloudflare did not judge the token wins over a token code."""
    known = [code for code in codes if isinstance(code, str)] if isinstance(codes, list) else []
    for code in known:
        if code in _UNVERIFIED_ERRORS:
            return ProviderAnswer.unverifiable(f"provider error {code}", _UNVERIFIED_ERRORS[code])
    for code in known:
        if code in _TOKEN_ERRORS:
            return ProviderAnswer.rejected(_TOKEN_ERRORS[code], code)
    return ProviderAnswer.unverifiable("failure without a known error code")


class TurnstileAdapter(Adapter):
    name: ClassVar[str] = "turnstile"
    token_fields: ClassVar[tuple[str, ...]] = ("cf-turnstile-response",)
    default_url: ClassVar[str] = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
    token_pattern: ClassVar[re.Pattern[str] | None] = re.compile(rf"[\x21-\x7e]{{1,{MAX_TOKEN_LENGTH}}}")
    # Cloudflare says an internal error may be retried, and the idempotency key makes a retry safe
    # even when the first call spent the token.
    retry_statuses: ClassVar[frozenset[int]] = frozenset({500, 502, 503, 504})

    def build_call(self, token: str, secret: str, sitekey: str | None) -> OutboundCall:
        return OutboundCall(
            self.verify_url, {"secret": secret, "response": token, "idempotency_key": idempotency_key(token)}
        )

    def interpret(self, status: int, body: bytes) -> ProviderAnswer:
        data = json_object(body)
        if data is None or not isinstance(data.get("success"), bool):
            return unreadable(status)
        if data["success"] and status == 200:
            return self._verified(data)
        codes = data.get("error-codes")
        if status != 200 and not codes:
            return unexpected_status(status)
        return classify_errors(codes)

    @staticmethod
    def _verified(data: dict[str, object]) -> ProviderAnswer:
        hostname = data.get("hostname")
        if hostname is None or hostname == "":
            # Cloudflare documents a hostname on every success; without one there is nothing to bind.
            return ProviderAnswer.verified(challenge_ts=from_iso(data.get("challenge_ts")))
        if not isinstance(hostname, str) or not _HOSTNAME.fullmatch(hostname):
            return ProviderAnswer.unverifiable("success with an unreadable hostname")
        return ProviderAnswer.verified(challenge_ts=from_iso(data.get("challenge_ts")), hostname=hostname)
