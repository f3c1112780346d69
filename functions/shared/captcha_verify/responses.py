"""The answer the browser gets: siteverify-shaped JSON, a 303 redirect, or a small HTML page."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aws_lambda_powertools.event_handler import Response

from captcha_verify.config import Settings, normalize_origin
from captcha_verify.outcome import CHANGED_FORM_REASON, ErrorCode
from captcha_verify.rate_limit import WINDOW_SECONDS
from captcha_verify.records import Attempt, iso_seconds

# On every answer: never cached, never content-sniffed into something the browser would run.
ANSWER_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
# The HTML page loads nothing and may not be framed (no clickjacking of a "Thank you" page).
PAGE_POLICY = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
}
# A URL character that may go into a Location header as it is: printable ASCII, no space.
_URL_CHARACTERS = re.compile(r"[\x21-\x7e]+")

# Hidden form fields a page may use to name its own redirect targets.
SUCCESS_URL_FIELD = "success_url"
FAILURE_URL_FIELD = "failure_url"

# What each code means to a visitor (the HTML answer; the demo site's error page shows them too).
EXPLANATIONS: dict[str, str] = {
    "missing-input-response": "The CAPTCHA was not completed.",
    "invalid-input-response": "The CAPTCHA answer was not accepted.",
    "timeout-or-duplicate": "The CAPTCHA answer expired or was already used. Please solve it again.",
    "sitekey-mismatch": "The CAPTCHA was solved for another site.",
    "bad-request": "The form could not be read.",
    "origin-not-allowed": "This form may not be sent from that site.",
    "payload-too-large": "The form is too large.",
    "unsupported-media-type": "The form was sent in an unsupported format.",
    "missing-input-secret": "The CAPTCHA check is not configured yet.",
    "invalid-input-secret": "The CAPTCHA check is misconfigured.",
    "internal-error": "The CAPTCHA could not be checked right now. Please try again.",
    "invalid-form": "A required field is missing or the form breaks a field limit.",
    "rate-limited": "Too many attempts from your network. Please wait a minute and try again.",
    "delivery-failed": "Your form was checked but could not be handed on. Please send it again.",
}
CHANGED_FORM_EXPLANATION = (
    "This form was already sent with this CAPTCHA, and the changes were not. "
    "Solve the CAPTCHA again to send the changed form."
)


def siteverify_body(attempt: Attempt) -> dict[str, Any]:
    answer, decision = attempt.answer, attempt.decision
    return {
        "success": decision.success,
        "error-codes": decision.error_codes,
        "provider": attempt.provider,
        "challenge_ts": iso_seconds(answer.challenge_ts) if answer.challenge_ts else None,
        "hostname": answer.hostname,
        "sitekey": answer.sitekey,
        "solve_time_ms": answer.solve_time_ms,
        "interactive": answer.interactive,
        "degraded": decision.degraded,
    }


def prefers_html(content_type: str | None, accept: str | None) -> bool:
    """A plain HTML form post: a form body, and an Accept that ranks text/html above JSON.

    `fetch` sends Accept: */* by default, which ranks both equally, so it gets JSON.
    """
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return False
    quality = _accept_qualities(accept or "")
    return _quality(quality, "text/html") > _quality(quality, "application/json")


def _accept_qualities(accept: str) -> dict[str, float]:
    qualities: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (piece.strip() for piece in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media:
            qualities[media.lower()] = q
    return qualities


def _quality(qualities: Mapping[str, float], media: str) -> float:
    kind = media.split("/", 1)[0]
    for candidate in (media, f"{kind}/*", "*/*"):
        if candidate in qualities:
            return qualities[candidate]
    return 0.0


def answer_headers(attempt: Attempt) -> dict[str, str]:
    """ANSWER_HEADERS, and Retry-After on a rate-limited answer: one whole counting window, so the
    client's next try always lands in a fresh one."""
    if attempt.decision.error_code is ErrorCode.RATE_LIMITED:
        return {**ANSWER_HEADERS, "Retry-After": str(WINDOW_SECONDS)}
    return ANSWER_HEADERS


def json_response(attempt: Attempt) -> Response:
    return Response(
        status_code=attempt.decision.http_status,
        content_type="application/json",
        body=json.dumps(siteverify_body(attempt)),
        headers=answer_headers(attempt),
    )


def redirect_target(attempt: Attempt, fields: Mapping[str, object], settings: Settings) -> str | None:
    """Where a plain form post goes next; a form's own target only where its origin is allowed."""
    success = attempt.decision.success
    own = fields.get(SUCCESS_URL_FIELD if success else FAILURE_URL_FIELD)
    target = own if isinstance(own, str) and _allowed_target(own, settings.allowed_origins) else None
    target = target or (settings.success_redirect_url if success else settings.failure_redirect_url)
    if target is None or success:
        return target
    return _with_query(target, error=attempt.decision.error_codes[0] if attempt.decision.error_codes else "")


def _allowed_target(url: str, allowed_origins: frozenset[str]) -> bool:
    """Only a plain absolute URL on an allowed origin: a control character (a decoded %0A) would
    split the Location header, and urlsplit raises on hosts such as "https://[x"."""
    if not _URL_CHARACTERS.fullmatch(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc or not allowed_origins:
        return False
    return normalize_origin(f"{parts.scheme}://{parts.netloc}") in allowed_origins


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


def html_response(attempt: Attempt, target: str | None) -> Response:
    if target is not None:
        return Response(status_code=303, headers={**answer_headers(attempt), "Location": target}, body="")
    decision = attempt.decision
    if decision.success:
        title, text = "Thank you", "Your form was sent."
    else:
        code = decision.error_codes[0]
        explanation = (
            CHANGED_FORM_EXPLANATION if attempt.answer.reason == CHANGED_FORM_REASON else EXPLANATIONS[code]
        )
        title, text = "Verification failed", f"{explanation} (error: {code})"
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p></body></html>"
    )
    return Response(
        status_code=decision.http_status,
        content_type="text/html; charset=utf-8",
        body=page,
        headers={**answer_headers(attempt), **PAGE_POLICY},
    )
