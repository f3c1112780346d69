"""Submissions end to end over real HTTP through `make local`'s stack: the function commits the
submission to the store, the relay puts it on the local bus from the store's stream, each channel's
rule fills its queue, the real notifications function sends the email through moto's SES and posts
the signed webhook to the demo site's sink, and the inbox shows both as they were received."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
import requests
from captcha_local.stack import LOCAL_OWNER
from captcha_verify.responses import EXPLANATIONS
from support.local_harness import HTTP_TIMEOUT, Harness

pytestmark = pytest.mark.slow

# A bound for a loaded machine (a delivery takes well under a second when idle).
INBOX_WAIT_SECONDS = 30


def inbox(h: Harness) -> list[dict[str, Any]]:
    response = requests.get(f"{h.site}/inbox.json", timeout=HTTP_TIMEOUT)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    return response.json()


def wait_for_entry(h: Harness, token_sha256: str) -> dict[str, Any]:
    """The inbox entry of one token's submission, once both stand-in targets got it."""
    deadline = time.monotonic() + INBOX_WAIT_SECONDS
    while time.monotonic() < deadline:
        found = [e for e in inbox(h) if e["detail"]["verification"]["token_sha256"] == token_sha256]
        if found and {"email", "webhook"} <= set(found[0]):
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no delivery for {token_sha256[:12]} within {INBOX_WAIT_SECONDS} s")


def entries_for(h: Harness, token_sha256: str) -> list[dict[str, Any]]:
    return [e for e in inbox(h) if e["detail"]["verification"]["token_sha256"] == token_sha256]


def webhook_key(h: Harness) -> str:
    secret = h.stack.aws_client("secretsmanager").get_secret_value(SecretId="WebhookSecret")
    return str(json.loads(secret["SecretString"])["signing_secret"])


def test_a_verified_form_reaches_the_owner_as_an_email_they_can_answer_and_as_a_signed_webhook(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    token = h.issue("byebot")
    message = 'Say "hi" to C:\\temp\r\n<b>bold</b> @everyone'
    response = h.post_json(
        "byebot",
        {
            "email": "ann@example.org",
            "_subject": "Question about\r\nBcc: victim@example.com pricing",
            "message": message,
            "topics": ["a", "b"],
            token.field: token.value,
        },
    )
    assert response.status_code == 200, response.text

    entry = wait_for_entry(h, token.sha256)

    detail = entry["detail"]
    assert detail["provider"] == "byebot" and detail["origin"] == h.site
    [mail] = entry["email"]
    # The raw message exactly as moto's SES received it, parsed as a mail client would.
    parsed = email.message_from_string(mail["raw"], policy=email.policy.default)
    assert parsed["Subject"] == "Question about Bcc: victim@example.com pricing"
    assert parsed["Reply-To"] == "ann@example.org" and parsed["From"] == parsed["To"] == LOCAL_OWNER
    assert "Bcc" not in parsed
    assert 'message: Say "hi" to C:\\temp\n  <b>bold</b> @everyone\n' in mail["text"]
    assert "topics: a, b" in mail["text"] and f"Submission id: {detail['submission_id']}" in mail["text"]
    assert "&lt;b&gt;bold&lt;/b&gt;" in mail["html"]

    [hook] = entry["webhook"]
    body = hook["body"].encode()
    assert json.loads(body) == detail
    timestamp = hook["headers"]["X-Captcha-Verify-Timestamp"]
    expected = hmac.new(webhook_key(h).encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hook["headers"]["X-Captcha-Verify-Signature"] == f"sha256={expected}"

    # One line per delivery in the terminal, naming fields but no value.
    time.sleep(0.3)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if detail["submission_id"] in line and "[inbox]" in line]
    assert sorted(line.split()[1] for line in lines) == ["email", "webhook"]
    assert all("delivered (email, _subject, message, topics)" in line for line in lines)
    assert "ann@example.org" not in out and "pricing" not in out


def test_double_clicked_form_post_delivers_once_and_both_see_the_thank_you_page(h: Harness) -> None:
    token = h.issue("swetrix")
    fields = {"name": "Ada", "message": "Only once please", token.field: token.value}

    first, second = h.post_form("swetrix", fields), h.post_form("swetrix", fields)

    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"] == f"{h.site}/thanks.html"
    entry = wait_for_entry(h, token.sha256)
    time.sleep(1.5)  # a second delivery, if there were one, would have arrived by now
    [entry] = entries_for(h, token.sha256)
    assert len(entry["email"]) == len(entry["webhook"]) == 1
    assert len([c for c in h.verify_calls("swetrix") if c["token_sha256"] == token.sha256]) == 1


def test_honeypot_answers_success_and_delivers_nothing(h: Harness) -> None:
    token = h.issue("ycaptcha")
    response = h.post_json("ycaptcha", {"_gotcha": "https://spam.example", token.field: token.value})
    assert response.status_code == 200 and response.json()["success"] is True
    time.sleep(0.5)
    assert entries_for(h, token.sha256) == []


def test_a_bus_outage_never_fails_the_visitor_and_the_submission_arrives_once_it_is_back(h: Harness) -> None:
    events = h.stack.aws_client("events")
    bus = h.stack.inbox.bus_name if h.stack.inbox else ""
    assert h.stack.inbox is not None
    for rule in [channel.rule_id for channel in h.stack.inbox.channels]:
        targets = events.list_targets_by_rule(Rule=rule, EventBusName=bus)["Targets"]
        events.remove_targets(Rule=rule, EventBusName=bus, Ids=[t["Id"] for t in targets])
        events.delete_rule(Name=rule, EventBusName=bus)
    events.delete_event_bus(Name=bus)
    token = h.issue("friendlycaptcha")
    fields = {"email": "ann@example.org", token.field: token.value}
    try:
        answered = h.post_form("friendlycaptcha", fields)
        time.sleep(1.0)  # the relay tries (and fails) several times meanwhile
        assert entries_for(h, token.sha256) == []
    finally:
        # The bus comes back before its rules can: with the relay running, an event put in between
        # would be accepted and matched by no rule, so the relay waits until both exist.
        assert h.stack.inbox is not None and h.stack.relay is not None
        with h.stack.relay.paused():
            h.stack.inbox.create()

    # Committed: the visitor is thanked while the bus is gone, and the relay delivers it after.
    assert answered.status_code == 303 and answered.headers["Location"] == f"{h.site}/thanks.html"
    assert wait_for_entry(h, token.sha256)["detail"]["form"] == {"email": "ann@example.org"}
    assert len([c for c in h.verify_calls("friendlycaptcha") if c["token_sha256"] == token.sha256]) == 1
    # The error page explains every code with the layer's own words, which config.js carries.
    config = requests.get(f"{h.site}/config.js", timeout=HTTP_TIMEOUT).text
    assert json.dumps(EXPLANATIONS["delivery-failed"]) in config
