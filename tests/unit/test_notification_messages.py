"""What each channel sends, over hostile form content: quotes, backslashes, CR/LF in every field,
markup, mentions, Slack link syntax, emoji, 10,000-character values, 50 fields and field names
that look like headers. Every body must be valid JSON within its target's limits, every email
must parse (stdlib `email`) into exactly the intended headers, with every value in the text part
and no markup from the visitor in the HTML part."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import html
import json
import re
from typing import Any

import pytest
from captcha_verify.notifications import messages
from captcha_verify.notifications.config import WebhookFormat, format_for
from captcha_verify.submission import MAX_ORIGIN_LENGTH, bounded_origin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HOSTILE = [
    '"',
    "\\",
    "\r\n",
    "\n",
    "\r",
    "\t",
    "<script>alert(1)</script>",
    "<b>bold</b>",
    "@everyone",
    "@here",
    "<!channel>",
    "<@U123>",
    "<https://evil.example|Reset your password>",
    "[Reset your password](https://evil.example)",
    "&amp;",
    "```",
    "😀",
    "Bcc: victim@example.com",
    "\x00",
    "\x1b[2J",
    "\u2028",
    "=?utf-8?q?x?=",
]
HEADER_NAMES = [
    "Subject",
    "Bcc",
    "To: x@example.com",
    "Content-Type",
    "Reply-To",
    "From\r\nX: y",
    "_subject",
    "email",
]
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
VALUE = st.one_of(
    st.lists(st.one_of(st.sampled_from(HOSTILE), TEXT), max_size=8).map("".join),
    st.integers(0, 10_000).map(lambda n: ("x" * n) + "\r\n<i>end</i>"),
)
FIELD_VALUE = st.one_of(VALUE, st.lists(VALUE, max_size=3), st.booleans(), st.integers())
NAME = st.one_of(st.sampled_from(HEADER_NAMES), st.sampled_from(HOSTILE), TEXT.filter(bool))
FORM = st.dictionaries(NAME, FIELD_VALUE, max_size=50)
ORIGIN = st.one_of(st.none(), st.just("https://www.example.com"), st.just("http://127.0.0.1:3002"))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

OWNER = "owner@example.com"
INTENDED = {"From", "To", "Subject", "Date", messages.SUBMISSION_HEADER, "MIME-Version", "Content-Type"}
# The tags the layer writes; anything else that looks like markup came from the visitor.
OWN_MARKUP = re.compile(r"<!doctype html>|</?(html|head|body|meta|table|tr|th|td|p|br)\b[^<>]*>")


def detail_of(
    form: dict[str, Any], origin: str | None = "https://www.example.com", **extra: Any
) -> dict[str, Any]:
    return {
        "submission_id": "0b8f0c52-6a4e-5d6b-9d3e-3c1f0e2a7b10",
        "provider": "byebot",
        "received_at": "2026-11-21T10:00:05.250Z",
        "origin": origin,
        "request_id": "r-1",
        "form": form,
        "verification": {"degraded": extra.get("degraded", False), "token_sha256": "ab" * 32},
    }


def parse(message: Any) -> email.message.EmailMessage:
    raw = message.as_bytes()
    assert raw.isascii(), "sent 7-bit clean"
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def parts(parsed: email.message.EmailMessage) -> dict[str, str]:
    return {
        part.get_content_subtype(): str(part.get_content()).replace("\r\n", "\n")
        for part in parsed.walk()
        if part.get_content_maintype() == "text"
    }


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@SETTINGS
@given(form=FORM, origin=ORIGIN)
def test_every_email_parses_into_exactly_the_intended_headers_and_carries_every_value(
    form: dict[str, Any], origin: str | None
) -> None:
    detail = detail_of(form, origin)
    parsed = parse(messages.owner_email(detail, OWNER, [OWNER, "second@example.com"]))

    reply_to = messages.reply_to_of(form)
    assert set(parsed.keys()) == INTENDED | ({"Reply-To"} if reply_to else set())
    assert len(parsed.keys()) == len(set(parsed.keys())), "no header twice"
    assert parsed["From"] == OWNER and parsed["To"] == f"{OWNER}, second@example.com"
    assert parsed["Subject"] == messages.subject_of(detail)
    assert len(parsed["Subject"]) <= messages.MAX_SUBJECT_LENGTH and parsed["Subject"].strip()
    if reply_to:
        assert parsed["Reply-To"] == reply_to and len(reply_to) <= messages.MAX_ADDRESS_LENGTH

    body = parts(parsed)
    assert set(body) == {"plain", "html"}
    text = body["plain"]
    for name, value in form.items():
        first, *rest = messages.field_text(value).split("\n")
        assert f"{messages.visible(name).replace(chr(10), ' ')}: {first}" in text
        for line in rest:
            assert f"\n  {line}" in text
    assert "Submission id: 0b8f0c52-6a4e-5d6b-9d3e-3c1f0e2a7b10" in text

    markup = OWN_MARKUP.sub("", body["html"])
    assert "<" not in markup and ">" not in markup, "only the layer's own tags"
    for value in form.values():
        assert html.escape(messages.field_text(value)) in body["html"]


@SETTINGS
@given(form=FORM)
def test_every_slack_body_is_json_within_limits_and_forms_no_mention_or_link(form: dict[str, Any]) -> None:
    body = json.loads(json.dumps(messages.slack_body(detail_of(form))))
    text = body["text"]
    assert len(text) <= messages.SLACK_TEXT_LIMIT
    assert "<" not in text and ">" not in text, "no <!channel>, <@user> or <url|label> can form"
    assert "&" not in re.sub(r"&(amp|lt|gt);", "", text), "every & is an entity"
    assert body["link_names"] is False


def _unescaped(text: str, char: str) -> list[int]:
    """Positions of `char` not preceded by an odd run of backslashes."""
    found = []
    for match in re.finditer(re.escape(char), text):
        run = len(text[: match.start()]) - len(text[: match.start()].rstrip("\\"))
        if run % 2 == 0:
            found.append(match.start())
    return found


@SETTINGS
@given(form=FORM)
def test_every_discord_body_is_json_within_limits_and_pings_or_links_nothing(form: dict[str, Any]) -> None:
    body = json.loads(json.dumps(messages.discord_body(detail_of(form))))
    content = body["content"]
    assert utf16_length(content) <= messages.DISCORD_CONTENT_LIMIT
    assert body["allowed_mentions"] == {"parse": []}
    for char in "@<[]()":
        assert _unescaped(content, char) == [], char


@SETTINGS
@given(form=FORM)
def test_every_json_body_is_the_detail_verbatim_and_its_signature_verifies(form: dict[str, Any]) -> None:
    detail = detail_of(form)
    body = messages.json_body(detail)
    assert json.loads(body) == detail
    headers = messages.signed_headers("key", 1_795_250_405, body)
    # The verifier in docs/delivery.md.
    expected = hmac.new(b"key", headers[messages.TIMESTAMP_HEADER].encode() + b"." + body, hashlib.sha256)
    assert hmac.compare_digest(headers[messages.SIGNATURE_HEADER], "sha256=" + expected.hexdigest())
    assert messages.signed_headers("other", 1_795_250_405, body) != headers


def test_a_long_discord_message_is_cut_with_a_visible_note_not_refused() -> None:
    content = messages.discord_body(detail_of({"message": "word " * 400 + "😀" * 300}))["content"]
    assert utf16_length(content) <= 2000
    assert content.endswith("the email has the whole submission.")
    assert "more characters" in content


def test_a_1900_character_message_reaches_discord_whole() -> None:
    """A 1,900-character message once made a 2,045-character content, which Discord refuses."""
    content = messages.discord_body(detail_of({"message": "a" * 1_700}, origin=None))["content"]
    assert "a" * 1_700 in content and utf16_length(content) <= 2000


def test_subject_is_the_forms_subject_on_one_line_or_names_the_site() -> None:
    assert (
        messages.subject_of(detail_of({"_subject": "Quote\r\nBcc: x@example.com"}))
        == "Quote Bcc: x@example.com"
    )
    assert messages.subject_of(detail_of({"_subject": "y" * 300})) == "y" * 200
    assert messages.subject_of(detail_of({"_subject": "=?utf-8?q?x?="})) == "= ?utf-8?q?x?="
    assert messages.subject_of(detail_of({"_subject": " \r\n "})) == "New submission from www.example.com"
    assert messages.subject_of(detail_of({}, origin=None)) == "New form submission"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("ann@example.org", True),
        ("ann.lee+forms@mail.example.co.uk", True),
        ("ann@example", False),
        ("ann@example.org\r\nBcc: x@example.com", False),
        ("ann@example.org, bob@example.org", False),
        ("Ann <ann@example.org>", False),
        ('"ann"@example.org', False),
        ("ann..lee@example.org", False),
        ("a" * 65 + "@example.org", False),
        ("a@" + "b" * 250 + ".org", False),
        ("änn@example.org", False),
        ("=?utf-8?q?ann?=@example.org", False),
        (["ann@example.org"], False),
    ],
)
def test_reply_to_is_one_valid_address_or_none(value: object, valid: bool) -> None:
    assert messages.reply_to_of({"email": value}) == (value if valid else None)


def test_reply_to_falls_back_to_replyto_field() -> None:
    assert (
        messages.reply_to_of({"email": "not an address", "_replyto": "bob@example.org"}) == "bob@example.org"
    )


def test_degraded_submissions_say_so_in_the_email() -> None:
    text = messages.email_text(detail_of({"a": "b"}, degraded=True))
    assert "accepted WITHOUT verification" in text


def test_the_autoresponse_carries_only_the_owners_text() -> None:
    parsed = parse(messages.autoresponse_email(OWNER, "ann@example.org", "Thanks", "We got it.", OWNER))
    assert set(parsed.keys()) == {
        "From",
        "To",
        "Subject",
        "Reply-To",
        "Date",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    }
    assert parsed.get_content().replace("\r\n", "\n") == "We got it.\n"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.slack.com/services/T/B/x", WebhookFormat.SLACK),
        ("https://discord.com/api/webhooks/1/abc", WebhookFormat.DISCORD),
        ("https://discordapp.com/api/webhooks/1/abc", WebhookFormat.DISCORD),
        ("https://example.com/hooks/forms", WebhookFormat.JSON),
        ("https://hooks.slack.com.evil.example/x", WebhookFormat.JSON),
    ],
)
def test_the_webhook_format_follows_the_url_host_unless_configured(url: str, expected: WebhookFormat) -> None:
    assert format_for(url, None) is expected
    assert format_for(url, WebhookFormat.JSON) is WebhookFormat.JSON


@pytest.mark.parametrize(
    ("origin", "allowed", "expected"),
    [
        ("https://www.example.com", frozenset(), "https://www.example.com"),
        ("https://www.example.com", frozenset({"https://www.example.com"}), "https://www.example.com"),
        ("https://other.example", frozenset({"https://www.example.com"}), None),
        ("http://[::1]:3002", frozenset(), "http://[::1]:3002"),
        ("https://www.example.com <!channel> @everyone URGENT", frozenset(), None),
        ("https://www.example.com/path", frozenset(), None),
        ("null", frozenset(), None),
        ("https://" + "a" * 300 + ".com", frozenset(), None),
        (None, frozenset(), None),
    ],
)
def test_the_events_origin_is_an_allowed_well_formed_origin_or_null(
    origin: str | None, allowed: frozenset[str], expected: str | None
) -> None:
    assert bounded_origin(origin, allowed) == expected


@SETTINGS
@given(origin=st.one_of(st.text(max_size=300), st.text(max_size=300).map(lambda t: "https://" + t)))
def test_any_origin_header_becomes_a_short_well_formed_origin_or_null(origin: str) -> None:
    bounded = bounded_origin(origin, frozenset())
    assert bounded is None or (
        len(bounded) <= MAX_ORIGIN_LENGTH and re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", bounded)
    )
