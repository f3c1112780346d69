"""The "Form Submission" event: what a verified form delivers, built from the parsed fields (pure)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from captcha_verify.checks import GENERIC_TOKEN_FIELD
from captcha_verify.config import normalize_origin
from captcha_verify.outcome import ErrorCode, RequestRejected
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
# A PutEvents entry is at most 256 KB, counted as the UTF-8 bytes of Source, DetailType and Detail
# ("Calculating Amazon EventBridge PutEvents event entry size", EventBridge user guide); a DynamoDB
# item is at most 400 KB, and the stored item is that Detail plus well under 2 KB of attributes,
# so the bus is the binding limit. The form may use what the rest of the detail leaves: its ids,
# times, digest and origin (at most 256 characters) take well under the allowance.
PUT_EVENTS_ENTRY_BYTES = 256 * 1024
DETAIL_ALLOWANCE_BYTES = 2 * 1024
MAX_FORM_BYTES = PUT_EVENTS_ENTRY_BYTES - len(SOURCE) - len(DETAIL_TYPE) - DETAIL_ALLOWANCE_BYTES
MAX_EMAIL_LENGTH = 254


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
    """The bus event's detail (shown in docs/delivery.md) for a successful attempt (verified or degraded)."""
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


def serialise(value: Any) -> str:
    """The JSON the bus and the store carry: compact, ASCII-only (non-ASCII escaped as \\uXXXX),
    so what is measured before the token is spent is exactly what is put and stored."""
    return json.dumps(value, separators=(",", ":"))


def check_size(form: Mapping[str, FormValue]) -> None:
    """The form as it will be serialised (escaping counts): one that would not fit a PutEvents
    entry is refused before any provider call."""
    if len(serialise(form)) > MAX_FORM_BYTES:
        raise RequestRejected(
            ErrorCode.PAYLOAD_TOO_LARGE, f"the serialised form is over {MAX_FORM_BYTES} bytes"
        )


def form_digest(form: Mapping[str, FormValue]) -> str:
    """Tells a repeat of a form from an edited form sent with the same token."""
    return hashlib.sha256(serialise(form).encode("utf-8")).hexdigest()


def email_key(form: Mapping[str, FormValue]) -> str | None:
    """The visitor's address as the store indexes it (for erasure requests): the `email` field, or
    `_replyto`, when it looks like one address; lower-cased, since people type it in any case."""
    for name in ("email", "_replyto"):
        value = form.get(name)
        if isinstance(value, str) and "@" in value and len(value.strip()) <= MAX_EMAIL_LENGTH:
            return value.strip().lower()
    return None
