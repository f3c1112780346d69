"""Cheap checks that cost no outbound call: origin, token presence and token shape."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from captcha_verify.config import normalize_origin
from captcha_verify.outcome import ErrorCode, RequestRejected

GENERIC_TOKEN_FIELD = "token"

# No provider documents a token over 16 KiB (Friendly v2's documented maximum); anything
# outside printable ASCII is not a token any widget produces.
MAX_TOKEN_LENGTH = 16 * 1024
_PRINTABLE_TOKEN = re.compile(r"[\x21-\x7e]+")


def check_origin(origin: str | None, allowed: frozenset[str]) -> None:
    """A browser always sends Origin on a cross-site POST; CORS alone does not stop a form post."""
    if origin is None or not allowed:
        return
    if normalize_origin(origin) not in allowed:
        raise RequestRejected(ErrorCode.ORIGIN_NOT_ALLOWED, "origin not allowed")


def extract_token(fields: Mapping[str, object], names: Iterable[str]) -> str:
    """The token from the widget's own field or the generic `token` field, whichever is filled."""
    for name in (*names, GENERIC_TOKEN_FIELD):
        value = fields.get(name)
        if value is None:
            continue  # absent, or JSON null: no token was sent
        if not isinstance(value, str):
            raise RequestRejected(ErrorCode.INVALID_INPUT_RESPONSE, f"field {name} is not a string")
        if value.strip():
            return value.strip()
    raise RequestRejected(ErrorCode.MISSING_INPUT_RESPONSE, "no token")


def check_token_shape(token: str, pattern: re.Pattern[str] | None = None) -> None:
    if len(token) > MAX_TOKEN_LENGTH or not _PRINTABLE_TOKEN.fullmatch(token):
        raise RequestRejected(ErrorCode.INVALID_INPUT_RESPONSE, "token malformed")
    if pattern is not None and not pattern.fullmatch(token):
        raise RequestRejected(ErrorCode.INVALID_INPUT_RESPONSE, "token does not have the provider's shape")
