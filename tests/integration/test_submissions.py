"""Submissions end to end over real HTTP through `make local`'s stack: the function commits the
submission to the store, the relay puts it on the local bus from the store's stream, the
template's rules deliver it to the stand-in queues, and the demo site's inbox shows it with the
notification email's text."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from captcha_local.inbox import RULE_TARGETS
from captcha_verify.responses import EXPLANATIONS

from .local_harness import HTTP_TIMEOUT, Harness

pytestmark = pytest.mark.slow

INBOX_WAIT_SECONDS = 10


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


def test_a_verified_form_reaches_the_inbox_with_the_email_text(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    token = h.issue("byebot")
    response = h.post_json(
        "byebot",
        {
            "email": "ann@example.org",
            "message": "Hello there",
            "topics": ["a", "b"],
            token.field: token.value,
        },
    )
    assert response.status_code == 200, response.text

    entry = wait_for_entry(h, token.sha256)

    detail = entry["detail"]
    assert detail["provider"] == "byebot" and detail["origin"] == h.site
    assert detail["form"] == {"email": "ann@example.org", "message": "Hello there", "topics": ["a", "b"]}
    # The text the NotificationRule's own input transformer makes of the event.
    assert entry["email"].startswith(f"New form submission from {h.site}\n")
    assert '"message":"Hello there"' in entry["email"].replace(": ", ":").replace(", ", ",")
    assert "CAPTCHA: byebot (accepted without verification: false)" in entry["email"]
    assert '"text": "New form submission from' in entry["webhook"]
    # One line per delivery in the terminal, naming fields but no value.
    time.sleep(0.3)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if detail["submission_id"] in line]
    assert len(lines) == 1 and "(email, message, topics)" in lines[0] and "ann@example.org" not in out


def test_double_clicked_form_post_delivers_once_and_both_see_the_thank_you_page(h: Harness) -> None:
    token = h.issue("swetrix")
    fields = {"name": "Ada", "message": "Only once please", token.field: token.value}

    first, second = h.post_form("swetrix", fields), h.post_form("swetrix", fields)

    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"] == f"{h.site}/thanks.html"
    wait_for_entry(h, token.sha256)
    time.sleep(0.5)  # a second delivery, if there were one, would have arrived by now
    assert len(entries_for(h, token.sha256)) == 1
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
    for rule in RULE_TARGETS:
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
        assert h.stack.inbox is not None
        h.stack.inbox.create()

    # Committed: the visitor is thanked while the bus is gone, and the relay delivers it after.
    assert answered.status_code == 303 and answered.headers["Location"] == f"{h.site}/thanks.html"
    assert wait_for_entry(h, token.sha256)["detail"]["form"] == {"email": "ann@example.org"}
    assert len([c for c in h.verify_calls("friendlycaptcha") if c["token_sha256"] == token.sha256]) == 1
    # The error page explains every code with the layer's own words, which config.js carries.
    config = requests.get(f"{h.site}/config.js", timeout=HTTP_TIMEOUT).text
    assert json.dumps(EXPLANATIONS["delivery-failed"]) in config
