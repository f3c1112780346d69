"""What each channel sends for one submission, rendered from the event detail (pure).

Every value a visitor typed is treated as text: escaped for HTML, Slack and Discord, never
placed in a header except the checked Reply-To address and the cleaned subject, and cut only
where a target's documented limit forces it, with a note saying so.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

# RFC 5321: a path is at most 256 octets including the angle brackets, so an address 254.
MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64
MAX_SUBJECT_LENGTH = 200
# Slack: "text" is truncated past 40,000 characters and Slack advises keeping it under 4,000
# (api.slack.com/reference/messaging/payload); we stay within the advice.
SLACK_TEXT_LIMIT = 4_000
# Discord: "content" is at most 2,000 characters (discord.com/developers/docs/resources/webhook,
# Execute Webhook); Discord counts as JavaScript does, in UTF-16 code units.
DISCORD_CONTENT_LIMIT = 2_000
SIGNATURE_HEADER = "X-Captcha-Verify-Signature"
TIMESTAMP_HEADER = "X-Captcha-Verify-Timestamp"
SUBMISSION_HEADER = "X-Captcha-Verify-Submission-Id"
SUBJECT_FIELD = "_subject"
REPLY_TO_FIELDS = ("email", "_replyto")
CUT_NOTE = "\n… cut here, {count} more characters: the email has the whole submission."

# One address, ASCII only (SES wants internationalised domains in punycode): no spaces, quotes,
# angle brackets, commas or other characters that would make it a list or a display name.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+")
# Discord markdown, and "<" and "@" that start mentions and masked links, are shown as typed.
_DISCORD_SPECIAL = re.compile(r"([\\*_~`|>\[\]()#<@])")
# The email is sent 7-bit clean (quoted-printable or base64 parts): what SES relays unchanged.
# Lines may be as long as RFC 5322 allows (998), so that a 200-character subject is never folded:
# Python's folding of a long first word leaves a leading space in the parsed subject.
_EMAIL_POLICY = SMTP.clone(cte_type="7bit", max_line_length=998)


def valid_address(value: object) -> str | None:
    """`value` when it is exactly one deliverable-looking address, else None."""
    if not isinstance(value, str) or len(value) > MAX_ADDRESS_LENGTH or not _ADDRESS.fullmatch(value):
        return None
    local, _, domain = value.rpartition("@")
    if len(local) > MAX_LOCAL_PART_LENGTH or ".." in value or local.startswith(".") or local.endswith("."):
        return None
    if "=?" in value:  # an RFC 2047 encoded word, decoded by mail clients
        return None
    return value if not domain.startswith("-") else None


def visible(text: str) -> str:
    """Text as a reader should see it: line breaks as "\\n" and every other control or
    line-separator character as U+FFFD, so nothing invisible or terminal-moving survives."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        "\ufffd" if char not in "\n\t" and unicodedata.category(char) in ("Cc", "Zl", "Zp") else char
        for char in text
    )


def field_text(value: object) -> str:
    """A form value as one text: lists joined with ", ", JSON scalars as JSON writes them."""
    if isinstance(value, list):
        return ", ".join(field_text(item) for item in value)
    if isinstance(value, str):
        return visible(value)
    return json.dumps(value)


def site_host(origin: object) -> str | None:
    if not isinstance(origin, str):
        return None
    return urlsplit(origin).hostname or None


def subject_of(detail: Mapping[str, Any]) -> str:
    """The form's `_subject` on one line without control characters, at most 200 characters,
    or "New submission from <site host>"."""
    chosen = detail.get("form", {}).get(SUBJECT_FIELD)
    if isinstance(chosen, list):
        chosen = chosen[0] if chosen else None
    if isinstance(chosen, str):
        # "=?" would start an RFC 2047 encoded word, which mail clients decode into other text.
        words = visible(chosen).replace("\ufffd", " ").replace("=?", "= ?").split()
        line = " ".join(words)[:MAX_SUBJECT_LENGTH].strip()
        if line:
            return line
    host = site_host(detail.get("origin"))
    return f"New submission from {host}" if host else "New form submission"


def reply_to_of(form: Mapping[str, Any]) -> str | None:
    """The visitor's own address: the first of `email`, `_replyto` that is one valid address."""
    for name in REPLY_TO_FIELDS:
        address = valid_address(form.get(name))
        if address:
            return address
    return None


def field_entries(form: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """(name, lines of the value) per field in the visitor's order."""
    return [(visible(name).replace("\n", " "), field_text(value).split("\n")) for name, value in form.items()]


def field_lines(form: Mapping[str, Any]) -> list[str]:
    """One "name: value" line per field in the visitor's order; later lines of a value indented."""
    lines = []
    for name, (first, *rest) in field_entries(form):
        lines.append(f"{name}: {first}")
        lines.extend(f"  {line}" for line in rest)
    return lines


def status_lines(detail: Mapping[str, Any]) -> list[str]:
    verification = detail.get("verification") or {}
    degraded = verification.get("degraded")
    how = "accepted WITHOUT verification (provider unreachable)" if degraded else "verified"
    lines = [f"Received: {detail.get('received_at')}"]
    if detail.get("origin"):
        lines.append(f"Page: {detail['origin']}")
    lines += [f"CAPTCHA: {detail.get('provider')}, {how}", f"Submission id: {detail.get('submission_id')}"]
    return lines


def email_text(detail: Mapping[str, Any]) -> str:
    return "\n".join([*field_lines(detail.get("form", {})), "", *status_lines(detail)]) + "\n"


def email_html(detail: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><th style="text-align:left;vertical-align:top">{html.escape(visible(name))}</th>'
        f'<td style="white-space:pre-wrap">{html.escape(field_text(value))}</td></tr>'
        for name, value in detail.get("form", {}).items()
    )
    status = "<br>".join(html.escape(line) for line in status_lines(detail))
    return (
        '<!doctype html><html><head><meta charset="utf-8"></head><body>'
        f'<table>{rows}</table><p style="color:#555">{status}</p></body></html>\n'
    )


def owner_email(detail: Mapping[str, Any], sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The owner's notification: text and HTML alternatives, Reply-To the visitor when valid."""
    message = EmailMessage(policy=_EMAIL_POLICY)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject_of(detail)
    reply_to = reply_to_of(detail.get("form", {}))
    if reply_to:
        message["Reply-To"] = reply_to
    message["Date"] = formatdate(usegmt=True)
    message[SUBMISSION_HEADER] = str(detail.get("submission_id"))
    message.set_content(email_text(detail), charset="utf-8")
    message.add_alternative(email_html(detail), subtype="html", charset="utf-8")
    return message


def autoresponse_email(
    sender: str, recipient: str, subject: str, text: str, reply_to: str | None
) -> EmailMessage:
    """The visitor's confirmation: the owner's fixed subject and text, nothing the visitor typed."""
    message = EmailMessage(policy=_EMAIL_POLICY)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    if reply_to:
        message["Reply-To"] = reply_to
    message["Date"] = formatdate(usegmt=True)
    message.set_content(text if text.endswith("\n") else text + "\n", charset="utf-8")
    return message


def slack_escape(text: str) -> str:
    """Slack's three control characters (api.slack.com/reference/surfaces/formatting#escaping):
    with them escaped, no <!channel>, <@user> or <url|label> can be formed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def discord_escape(text: str) -> str:
    return _DISCORD_SPECIAL.sub(r"\\\1", text)


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int, *, whole_end: Callable[[str], str] = lambda kept: kept) -> str:
    """`text` when it is within `limit` (UTF-16 code units), else its start and a visible note;
    `whole_end` trims a cut that would end inside an escape."""
    if _utf16_length(text) <= limit:
        return text
    # The note's count is never longer than len(text)'s digits, so this much room always suffices.
    room = limit - _utf16_length(CUT_NOTE.format(count=len(text)))
    kept = text[:room]
    while _utf16_length(kept) > room:
        kept = kept[: len(kept) - max(1, (_utf16_length(kept) - room) // 2)]
    kept = whole_end(kept)
    return kept + CUT_NOTE.format(count=len(text) - len(kept))


def _without_half_entity(kept: str) -> str:
    return re.sub(r"&[a-z]{0,3}$", "", kept)


def _without_half_backslash_escape(kept: str) -> str:
    return kept[:-1] if (len(kept) - len(kept.rstrip("\\"))) % 2 else kept


def _chat_text(detail: Mapping[str, Any], escape: Callable[[str], str], bold: str) -> str:
    lines = [f"{bold}{escape(subject_of(detail))}{bold}"]
    for name, (first, *rest) in field_entries(detail.get("form", {})):
        lines.append(f"{bold}{escape(name)}{bold}: {escape(first)}")
        lines.extend(f"  {escape(line)}" for line in rest)
    lines.append(escape(" · ".join(status_lines(detail))))
    return "\n".join(lines)


def slack_body(detail: Mapping[str, Any]) -> dict[str, Any]:
    text = fit(_chat_text(detail, slack_escape, "*"), SLACK_TEXT_LIMIT, whole_end=_without_half_entity)
    # link_names off: a plain "@channel" stays text (only <!channel> notifies, and "<" is escaped).
    return {"text": text, "link_names": False, "unfurl_links": False, "unfurl_media": False}


def discord_body(detail: Mapping[str, Any]) -> dict[str, Any]:
    content = fit(
        _chat_text(detail, discord_escape, "**"),
        DISCORD_CONTENT_LIMIT,
        whole_end=_without_half_backslash_escape,
    )
    return {"content": content, "allowed_mentions": {"parse": []}}


def json_body(detail: Mapping[str, Any]) -> bytes:
    return json.dumps(detail, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", as the verifier in docs/delivery.md recomputes it."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}
