"""The "Form Submission" event: what a verified form delivers, built from the parsed fields (pure)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from captcha_verify.checks import GENERIC_TOKEN_FIELD
from captcha_verify.config import normalize_origin
from captcha_verify.records import Attempt, iso_millis, iso_seconds
from captcha_verify.responses import FAILURE_URL_FIELD, SUCCESS_URL_FIELD
from captcha_verify.telemetry import bounded

SOURCE = "captcha-verify"
DETAIL_TYPE = "Form Submission"
# submission_id = uuid5(namespace, provider + token digest): the same token always names the same
# submission, so a consumer that sees a submission twice (EventBridge delivers at least once)
# can tell it is a repeat.
_SUBMISSION_NAMESPACE = uuid.UUID("6f1c3f0e-52a4-4b8e-9a51-0c2f5b7d9e11")

FormValue = str | int | float | bool | list[str]

MAX_ORIGIN_LENGTH = 256
# What a browser sends as Origin: scheme, host (a name or a bracketed IPv6 address), optional port.
_WELL_FORMED_ORIGIN = re.compile(
    r"https?://([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?"
)


def submission_id(provider: str, token_sha256: str) -> str:
    return str(uuid.uuid5(_SUBMISSION_NAMESPACE, f"{provider}:{token_sha256}"))


def form_content(fields: Mapping[str, object], excluded: Iterable[str]) -> dict[str, FormValue]:
    """Every text field a visitor filled, less the token, redirect and honeypot fields.

    JSON scalars keep their type, lists keep their text items; objects (and anything nested)
    are not text fields and are left out.
    """
    skip = {*excluded, GENERIC_TOKEN_FIELD, SUCCESS_URL_FIELD, FAILURE_URL_FIELD}
    form: dict[str, FormValue] = {}
    for name, value in fields.items():
        if name in skip:
            continue
        if isinstance(value, str | int | float | bool):
            form[name] = value
        elif isinstance(value, list):
            form[name] = [item for item in value if isinstance(item, str)]
    return form


def bounded_origin(origin: str | None, allowed: frozenset[str]) -> str | None:
    """The request's Origin as the event carries it: an allowed origin (any well-formed one when
    none are configured), at most 256 characters, else None. Consumers put it in subjects and
    messages, so nothing a client makes up travels further than this."""
    if origin is None or len(origin) > MAX_ORIGIN_LENGTH or not _WELL_FORMED_ORIGIN.fullmatch(origin):
        return None
    if allowed and normalize_origin(origin) not in allowed:
        return None
    return origin


def submission_detail(
    attempt: Attempt, form: Mapping[str, FormValue], allowed_origins: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The event detail of design.md for a successful attempt (verified or degraded)."""
    answer = attempt.answer
    token_sha256 = attempt.token_sha256 or ""
    return {
        "submission_id": submission_id(attempt.provider, token_sha256),
        "provider": attempt.provider,
        "received_at": iso_millis(attempt.created_at),
        "origin": bounded_origin(attempt.origin, allowed_origins),
        "request_id": attempt.request_id,
        "form": dict(form),
        "verification": {
            "degraded": attempt.decision.degraded,
            "challenge_ts": iso_seconds(answer.challenge_ts) if answer.challenge_ts else None,
            "sitekey": bounded(answer.sitekey),
            "solve_time_ms": answer.solve_time_ms,
            "interactive": answer.interactive,
            "token_sha256": token_sha256,
        },
    }
