"""The local inbox shows an email as a mail client would (parsed from the raw message SES got),
and hands the notifications function its queue's messages as Lambda's SQS event source does."""

from __future__ import annotations

import json

from captcha_local.inbox import failed_ids, parsed_email, sqs_event
from captcha_verify.notifications.config import Channel, ChannelQueues, NotifySettings
from captcha_verify.notifications.messages import owner_email
from support import load_event

DETAIL = json.loads(load_event("notifications", "form-submission")["Records"][0]["body"])["detail"]


def test_the_inbox_shows_the_headers_and_both_parts_of_the_raw_message() -> None:
    raw = owner_email(DETAIL, "owner@example.com", ["owner@example.com"]).as_string()
    shown = parsed_email(raw)
    headers = dict(shown["headers"])
    assert headers["Reply-To"] == "ann@example.org" and headers["From"] == "owner@example.com"
    assert 'message: Hello "there"\n  Second line <b>bold</b>\n' in shown["text"]
    assert "&lt;b&gt;bold&lt;/b&gt;" in shown["html"] and "<b>" not in shown["html"]
    assert shown["raw"] == raw


def test_the_sqs_event_is_what_the_function_reads_as_a_channels_record() -> None:
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": json.dumps({"detail": DETAIL}),
        "MD5OfBody": "x",
        "Attributes": {"ApproximateReceiveCount": "2"},
    }
    arn = "arn:aws:sqs:us-east-1:123456789012:EmailQueue"
    [record] = sqs_event([message], arn, "us-east-1")["Records"]
    assert record["eventSource"] == "aws:sqs" and record["messageId"] == "m-1"
    settings = NotifySettings(
        "ledger",
        {Channel.EMAIL: ChannelQueues("http://127.0.0.1:1/123456789012/EmailQueue", "dlq")},
    )
    assert settings.channel_of(record["eventSourceARN"]) is Channel.EMAIL
    # The same shape as the sample event the unit tests use (events/notifications).
    sample = load_event("notifications", "form-submission")["Records"][0]
    assert set(record) == set(sample)


def test_failed_ids_follow_the_partial_batch_answer() -> None:
    assert failed_ids({"ok": {"batchItemFailures": [{"itemIdentifier": "a"}]}}) == {"a"}
    assert failed_ids({"ok": {"batchItemFailures": []}}) == set()
    assert failed_ids({"error": "TimeoutError"}) is None
