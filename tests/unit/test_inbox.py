"""The local inbox renders EventBridge input transformers the way the template's targets get them."""

from __future__ import annotations

import json

from captcha_local.inbox import lookup, render
from captcha_local.resources import load_template

EVENT = {
    "detail": {
        "origin": "https://www.example.com",
        "provider": "swetrix",
        "received_at": "2026-11-21T10:00:05.250Z",
        "submission_id": "5c7e",
        "verification": {"degraded": True},
        "form": {"email": "ann@example.org", "message": 'Say "hi"\nbye', "topics": ["a", "b"]},
    }
}


def _transformer(rule: str) -> dict:
    [target] = load_template()["Resources"][rule]["Properties"]["Targets"]
    return target["InputTransformer"]


def test_lookup_follows_input_paths() -> None:
    assert lookup(EVENT, "$.detail.verification.degraded") is True
    assert lookup(EVENT, "$.detail.missing.deeper") is None


def test_email_text_is_readable_and_names_every_part() -> None:
    text = render(_transformer("NotificationRule"), EVENT)
    assert text.startswith("New form submission from https://www.example.com\n")
    assert json.loads(text.split("Fields: ", 1)[1].split("\n", 1)[0]) == EVENT["detail"]["form"]
    assert "Received: 2026-11-21T10:00:05.250Z" in text
    assert "CAPTCHA: swetrix (accepted without verification: true)" in text
    assert not text.startswith('"')


def test_webhook_body_is_json_with_slack_and_discord_text_and_the_detail() -> None:
    body = json.loads(render(_transformer("WebhookRule"), EVENT))
    assert body["submission"] == EVENT["detail"]
    assert body["text"] == body["content"]
    assert body["text"].startswith(
        "New form submission from https://www.example.com at 2026-11-21T10:00:05.250Z"
    )
    assert 'Say \\"hi\\"\\nbye' in body["text"]
