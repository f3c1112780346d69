"""What every provider adapter provides, and the small parsing helpers they share.

An adapter is pure: it builds the outbound call and interprets the provider's status and body.
All I/O (secret, HTTP, record) happens around it, so each protocol is tested without mocks.
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from captcha_verify.checks import check_token_shape
from captcha_verify.outcome import ErrorCode, ProviderAnswer


@dataclass(frozen=True)
class OutboundCall:
    url: str
    json: Mapping[str, str]
    headers: Mapping[str, str] = field(default_factory=dict)


class Adapter(ABC):
    name: ClassVar[str]
    token_fields: ClassVar[tuple[str, ...]]
    default_url: ClassVar[str]
    token_pattern: ClassVar[re.Pattern[str] | None] = None
    secret_pattern: ClassVar[re.Pattern[str] | None] = None
    # Statuses after which the provider documents a retry as safe (the token was not consumed).
    retry_statuses: ClassVar[frozenset[int]] = frozenset()

    def __init__(self, verify_url: str) -> None:
        self.verify_url = verify_url

    def check_token(self, token: str) -> None:
        check_token_shape(token, self.token_pattern)

    def check_secret(self, secret: str) -> ProviderAnswer | None:
        """Refuse a secret that cannot be right before it is sent: some providers burn the token first."""
        if self.secret_pattern is not None and not self.secret_pattern.fullmatch(secret):
            return ProviderAnswer.unverifiable("secret has the wrong shape", ErrorCode.INVALID_INPUT_SECRET)
        return None

    @abstractmethod
    def build_call(self, token: str, secret: str, sitekey: str | None) -> OutboundCall: ...

    @abstractmethod
    def interpret(self, status: int, body: bytes) -> ProviderAnswer: ...

    def answer(self, status: int, body: bytes) -> ProviderAnswer:
        """What the reply means; a 429 is the provider's rate limit whatever its body says."""
        if status == 429:
            return ProviderAnswer.rate_limited()
        return self.interpret(status, body)


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is empty, unreadable or another JSON type."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None  # ValueError covers bad UTF-8 and integers past Python's digit limit
    return value if isinstance(value, dict) else None


def unexpected_status(status: int) -> ProviderAnswer:
    """Statuses no protocol gives a meaning to: the provider could not verify."""
    if status in (401, 403):
        return ProviderAnswer.unverifiable(
            f"provider refused our credentials ({status})", ErrorCode.INVALID_INPUT_SECRET
        )
    if status == 429:
        return ProviderAnswer.rate_limited()
    return ProviderAnswer.unverifiable(f"unexpected provider status {status}")


def unreadable(status: int) -> ProviderAnswer:
    """An answer whose body the protocol needs but cannot be read: never a verdict on the token."""
    return (
        unexpected_status(status)
        if status != 200
        else ProviderAnswer.unverifiable("200 without a readable body")
    )


def int_or_none(value: object) -> int | None:
    # bool is an int subclass; a flag is never a duration or a timestamp.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # Python's json reads NaN and Infinity; neither is a time
    return int(value)


def bool_or_none(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def from_epoch(value: object, *, millis: bool) -> datetime | None:
    number = int_or_none(value)
    if number is None or number <= 0:
        return None
    try:
        return datetime.fromtimestamp(number / 1000 if millis else number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def from_iso(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
