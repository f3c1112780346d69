"""The notifications function's delivery semantics, on moto (SES, DynamoDB, Secrets Manager) and
a webhook receiver on loopback: once per channel and submission, transient failures left on the
queue with a backoff, permanent ones to the channel's dead-letter queue at once, one channel's
failure never repeating another, and the webhook URL and signing key never in a log line."""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from captcha_local.resources import create_table, load_template
from captcha_verify.idempotency import OnceStore
from captcha_verify.notifications.channels import (
    MAX_RETRY_AFTER_SECONDS,
    Permanent,
    SesSender,
    Transient,
    WebhookPoster,
    WebhookSecret,
    classify,
    retry_after_seconds,
)
from captcha_verify.notifications.config import Channel, ChannelQueues, NotifySettings, WebhookFormat
from captcha_verify.notifications.consumer import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_MAX_SECONDS,
    DEDUPE_SECONDS,
    Notifier,
    backoff_seconds,
    build_handler,
)
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from support import FakeContext, ScriptedProvider, load_event, log_records

LEDGER = "notification-ledger-test"
_services = itertools.count()
OWNER = "owner@example.com"
SECRET_ID = "webhook-test"
SIGNING_KEY = "signing-key-never-logged"
QUEUES = {
    channel: ChannelQueues(
        f"https://sqs.us-east-1.amazonaws.com/123456789012/{channel.value.title()}Queue",
        f"https://sqs.us-east-1.amazonaws.com/123456789012/{channel.value.title()}DeadLetterQueue",
    )
    for channel in Channel
}


@dataclass
class RecordingSqs:
    """The two SQS calls the function makes itself, recorded (Lambda's event source does the rest)."""

    hidden: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    def change_message_visibility(self, **call: Any) -> None:
        self.hidden.append(call)

    def send_message(self, **call: Any) -> dict[str, str]:
        self.dead_letters.append(call)
        return {"MessageId": "dead-letter"}


def record_for(channel: Channel, *, receive_count: int = 1, **form: Any) -> dict[str, Any]:
    event = load_event("notifications", "form-submission")
    [record] = event["Records"]
    body = json.loads(record["body"])
    if form:
        body["detail"]["form"] = form
    record["body"] = json.dumps(body)
    record["eventSourceARN"] = f"arn:aws:sqs:us-east-1:123456789012:{channel.value.title()}Queue"
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    record["messageId"] = f"{channel.value}-{receive_count}"
    return record


def batch(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [copy.deepcopy(r) for r in records]}


def sent_emails() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


@pytest.fixture
def receiver() -> Iterator[ScriptedProvider]:
    server = ScriptedProvider()
    yield server
    server.close()


@pytest.fixture
def aws_notify(mocked_aws: None) -> None:
    create_table(boto3.client("dynamodb"), LEDGER, load_template(), "NotificationLedgerTable")
    boto3.client("ses").verify_email_identity(EmailAddress=OWNER)


def notifier(
    receiver: ScriptedProvider | None = None,
    *,
    webhook_format: WebhookFormat | None = WebhookFormat.JSON,
    url: str | None = None,
    autoresponse: str = "",
    sender: str | None = None,
) -> tuple[Notifier, RecordingSqs]:
    settings = NotifySettings(
        ledger_table_name=LEDGER,
        queues=QUEUES,
        notification_emails=(OWNER,),
        sender_email=sender,
        webhook_secret_id=SECRET_ID,
        webhook_format=webhook_format,
        autoresponse_text=autoresponse,
    )
    if receiver is not None or url is not None:
        boto3.client("secretsmanager").create_secret(
            Name=SECRET_ID,
            SecretString=json.dumps({"url": url or receiver.url, "signing_secret": SIGNING_KEY}),  # type: ignore[union-attr]
        )
    sqs = RecordingSqs()
    return (
        Notifier(
            settings=settings,
            once=OnceStore(LEDGER, DEDUPE_SECONDS),
            ses=SesSender(boto3.client("sesv2")),
            poster=WebhookPoster(timeout_seconds=1.0),
            webhook_secret=WebhookSecret(SECRET_ID),
            sqs=sqs,
            clock=lambda: 1_795_250_405.0,
            # A fresh service name gives Powertools a fresh log handler on this test's stdout.
            logger=Logger(service=f"notify-test-{next(_services)}"),
        ),
        sqs,
    )


def run(n: Notifier, event: dict[str, Any]) -> list[str]:
    """The ids the function reports failed (left on their queue)."""
    answer = build_handler(n.settings, n)(event, FakeContext())  # type: ignore[arg-type]
    return [item["itemIdentifier"] for item in answer["batchItemFailures"]]


def test_the_owner_gets_one_email_with_reply_to_the_visitor(aws_notify: None) -> None:
    n, sqs = notifier()
    assert run(n, batch(record_for(Channel.EMAIL))) == []
    [message] = sent_emails()
    # moto adds the To header's addresses to the Destination it was given; AWS sends to Destination.
    assert message.source == OWNER and set(message.destinations) == {OWNER}
    assert "Reply-To: ann@example.org" in message.raw_data
    assert sqs.hidden == sqs.dead_letters == []


def test_a_repeat_of_the_same_submission_is_not_sent_again(
    aws_notify: None, capsys: pytest.CaptureFixture[str]
) -> None:
    n, _ = notifier()
    record = record_for(Channel.EMAIL)
    assert run(n, batch(record)) == []
    assert run(n, batch(record)) == []  # EventBridge delivered the event twice
    assert len(sent_emails()) == 1
    outcomes = [
        r["outcome"] for r in log_records(capsys.readouterr().out) if r.get("message") == "notification"
    ]
    assert outcomes == ["sent", "repeat"]


def test_an_unverified_sender_goes_to_the_dead_letter_queue_at_once(aws_notify: None) -> None:
    n, sqs = notifier(sender="nobody@unverified.example")
    record = record_for(Channel.EMAIL)
    assert run(n, batch(record)) == []  # not retried: SES will refuse it again
    [dead] = sqs.dead_letters
    assert dead["QueueUrl"] == QUEUES[Channel.EMAIL].dead_letter_queue_url
    assert dead["MessageBody"] == record["body"]
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "SES MessageRejected"
    assert sent_emails() == []


def test_a_webhook_5xx_stays_on_the_queue_with_a_growing_backoff_and_email_is_not_repeated(
    aws_notify: None, receiver: ScriptedProvider
) -> None:
    n, sqs = notifier(receiver)
    receiver.answer(503)
    receiver.answer(503)
    email, hook = record_for(Channel.EMAIL), record_for(Channel.WEBHOOK)
    assert run(n, batch(email)) == []
    assert run(n, batch(hook)) == [hook["messageId"]]
    later = record_for(Channel.WEBHOOK, receive_count=4)
    assert run(n, batch(later)) == [later["messageId"]]
    assert [h["VisibilityTimeout"] for h in sqs.hidden] == [BACKOFF_BASE_SECONDS, BACKOFF_BASE_SECONDS * 8]
    assert {h["QueueUrl"] for h in sqs.hidden} == {QUEUES[Channel.WEBHOOK].queue_url}

    receiver.answer(200, b"ok")
    assert run(n, batch(record_for(Channel.WEBHOOK, receive_count=5))) == []
    assert len(receiver.received) == 3
    assert len(sent_emails()) == 1, "the webhook's retries never repeat the email"
    assert sqs.dead_letters == []


def test_a_429_waits_as_long_as_retry_after_says(aws_notify: None, receiver: ScriptedProvider) -> None:
    n, sqs = notifier(receiver)
    receiver.answer(429, headers={"Retry-After": "120"})
    hook = record_for(Channel.WEBHOOK)
    assert run(n, batch(hook)) == [hook["messageId"]]
    assert [h["VisibilityTimeout"] for h in sqs.hidden] == [120]


def test_a_webhook_4xx_goes_to_the_dead_letter_queue_at_once(
    aws_notify: None, receiver: ScriptedProvider
) -> None:
    n, sqs = notifier(receiver)
    receiver.answer(404, b"no such webhook")
    assert run(n, batch(record_for(Channel.WEBHOOK))) == []
    [dead] = sqs.dead_letters
    assert dead["QueueUrl"] == QUEUES[Channel.WEBHOOK].dead_letter_queue_url
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "webhook answered 404"
    # A permanent failure keeps no ledger record, so a redrive after the fix delivers it.
    receiver.answer(200)
    assert run(n, batch(record_for(Channel.WEBHOOK))) == []
    assert len(receiver.received) == 2


def test_a_slow_webhook_times_out_and_is_retried(aws_notify: None, receiver: ScriptedProvider) -> None:
    n, sqs = notifier(receiver)
    receiver.answer(200, delay=3)
    hook = record_for(Channel.WEBHOOK)
    assert run(n, batch(hook)) == [hook["messageId"]]
    assert len(sqs.hidden) == 1


def test_the_json_webhook_is_the_detail_signed_over_timestamp_and_body(
    aws_notify: None, receiver: ScriptedProvider
) -> None:
    n, _ = notifier(receiver)
    receiver.answer(204)
    record = record_for(Channel.WEBHOOK)
    assert run(n, batch(record)) == []
    [posted] = receiver.received
    headers, body = posted["headers"], posted["body"]
    assert json.loads(body) == json.loads(record["body"])["detail"]
    assert headers["Content-Type"] == "application/json"
    # The verifier in docs/delivery.md, word for word in substance.
    timestamp = headers["X-Captcha-Verify-Timestamp"]
    expected = hmac.new(SIGNING_KEY.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Captcha-Verify-Signature"], f"sha256={expected}")
    assert timestamp == "1795250405"


def test_discord_is_posted_with_wait_true_and_no_mentions(
    aws_notify: None, receiver: ScriptedProvider
) -> None:
    n, _ = notifier(receiver, webhook_format=WebhookFormat.DISCORD)
    receiver.answer(200, {"id": "1"})
    assert run(n, batch(record_for(Channel.WEBHOOK, message="@everyone look"))) == []
    [posted] = receiver.received
    assert posted["path"] == "/verify?wait=true"
    body = json.loads(posted["body"])
    assert body["allowed_mentions"] == {"parse": []} and "\\@everyone" in body["content"]


def test_the_webhook_url_and_signing_key_never_reach_a_log_line(
    aws_notify: None, receiver: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    url = receiver.url.replace("/verify", "/services/T0/B0/XXXXsecretpath")
    n, _ = notifier(url=url)
    for answer in ({"status": 500}, {"status": 404}, {"status": 200, "delay": 3}):
        receiver.answer(**answer)
        run(n, batch(record_for(Channel.WEBHOOK)))
    n.webhook_secret = WebhookSecret("no-such-secret")
    run(n, batch(record_for(Channel.WEBHOOK)))
    out = capsys.readouterr()
    text = out.out + out.err
    outcomes = [r["outcome"] for r in log_records(out.out) if r.get("message") == "notification"]
    assert outcomes == ["retry", "dead-lettered", "retry", "retry"]
    assert "XXXXsecretpath" not in text and SIGNING_KEY not in text and "127.0.0.1" not in text


def test_the_autoresponse_sends_the_owners_text_once_and_never_the_visitors(aws_notify: None) -> None:
    n, _ = notifier(autoresponse="Thanks, we will answer within a day.")
    record = record_for(Channel.AUTORESPONSE, email="ann@example.org", message="CLICK https://evil.example")
    assert run(n, batch(record)) == []
    assert run(n, batch(record)) == []
    [message] = sent_emails()
    assert set(message.destinations) == {"ann@example.org"}
    assert "Thanks, we will answer within a day." in message.raw_data
    assert "evil.example" not in message.raw_data and "CLICK" not in message.raw_data


def test_the_autoresponse_skips_a_form_without_a_valid_email(aws_notify: None) -> None:
    n, sqs = notifier(autoresponse="Thanks.")
    assert (
        run(n, batch(record_for(Channel.AUTORESPONSE, email="ann@example.org\r\nBcc: x@example.com"))) == []
    )
    assert sent_emails() == [] and sqs.dead_letters == []


def test_a_message_that_is_not_a_submission_goes_to_the_dead_letter_queue(aws_notify: None) -> None:
    n, sqs = notifier()
    record = record_for(Channel.EMAIL)
    record["body"] = "not json"
    assert run(n, batch(record)) == []
    assert (
        sqs.dead_letters[0]["MessageAttributes"]["reason"]["StringValue"]
        == "message is not an EventBridge event"
    )


def test_settings_read_every_channel_from_the_environment() -> None:
    env = {
        "NOTIFICATION_LEDGER_TABLE_NAME": LEDGER,
        "NOTIFICATION_EMAIL": "a@example.com, b@example.com",
        "EMAIL_QUEUE_URL": QUEUES[Channel.EMAIL].queue_url,
        "EMAIL_DEAD_LETTER_QUEUE_URL": QUEUES[Channel.EMAIL].dead_letter_queue_url,
        "WEBHOOK_QUEUE_URL": "",
        "WEBHOOK_FORMAT": "Slack",
    }
    settings = NotifySettings.from_env(env)
    assert settings.notification_emails == ("a@example.com", "b@example.com")
    assert settings.sender == "a@example.com"
    assert set(settings.queues) == {Channel.EMAIL}
    assert settings.webhook_format is WebhookFormat.SLACK
    assert settings.channel_of("arn:aws:sqs:us-east-1:123456789012:EmailQueue") is Channel.EMAIL
    assert settings.channel_of("arn:aws:sqs:us-east-1:123456789012:Other") is None


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, None),
        (204, None),
        (408, Transient),
        (429, Transient),
        (500, Transient),
        (503, Transient),
        (301, Permanent),
        (400, Permanent),
        (403, Permanent),
        (404, Permanent),
    ],
)
def test_webhook_statuses_are_classified(status: int, kind: type[Exception] | None) -> None:
    if kind is None:
        classify(status, None, 0.0)
    else:
        with pytest.raises(kind):
            classify(status, None, 0.0)


def test_retry_after_is_read_as_seconds_or_a_date_and_capped() -> None:
    assert retry_after_seconds("30", 0.0) == 30
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10
    assert retry_after_seconds("999999", 0.0) == MAX_RETRY_AFTER_SECONDS
    assert retry_after_seconds("soon", 0.0) is None


def test_the_backoff_doubles_to_an_hour() -> None:
    assert [backoff_seconds(n, None) for n in (1, 2, 3, 12)] == [30, 60, 120, BACKOFF_MAX_SECONDS]
    assert backoff_seconds(3, 5.4) == 5
