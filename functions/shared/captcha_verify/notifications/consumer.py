"""The notifications function: one SQS queue per channel, filled by its own rule on the bus.

Per record (a "Form Submission" event):
- once per channel and submission id within a day (a Powertools idempotency record in the
  ledger table): EventBridge delivers at least once, and a repeat is not sent again;
- a transient failure (SES throttling, webhook 408/429/5xx, a timeout) leaves the message on its
  queue, hidden for an exponential backoff (or the receiver's Retry-After), until the queue's
  redrive policy parks it in the dead-letter queue after hours of attempts;
- a permanent failure (an address or message SES refuses, another 4xx) goes to the channel's
  dead-letter queue at once, where its alarm fires.
Channels never share a message, so one channel's failure never delays or repeats another.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from captcha_verify.aws_clients import client
from captcha_verify.idempotency import Kept, OnceStore, StillInFlight, StoreUnavailable
from captcha_verify.notifications import messages
from captcha_verify.notifications.channels import (
    Permanent,
    SesSender,
    Transient,
    WebhookPoster,
    WebhookSecret,
    WebhookTarget,
    post_url,
)
from captcha_verify.notifications.config import Channel, NotifySettings, WebhookFormat, format_for

# A repeat of the same submission id within this window is not sent again to that channel.
DEDUPE_SECONDS = 86_400
# Backoff of a transient failure: 30 s, 1, 2, 4 ... minutes, at most an hour per wait. With the
# queues' maxReceiveCount of 12 that is about six hours of attempts before the dead-letter queue.
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3_600
# Without a Lambda context (tests), how long an in-flight twin may be waited for.
DEFAULT_REMAINING_MS = 5_000

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def backoff_seconds(receive_count: int, retry_after: float | None) -> int:
    if retry_after is not None:
        return max(1, round(retry_after))
    return min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, receive_count - 1))


def webhook_request(
    detail: dict[str, Any], target: WebhookTarget, configured: WebhookFormat | None, now: float
) -> tuple[str, bytes, dict[str, str]]:
    """(URL, body, headers) the webhook is posted with, in the target's format."""
    webhook_format = format_for(target.url, configured)
    if webhook_format is WebhookFormat.SLACK:
        return target.url, json.dumps(messages.slack_body(detail)).encode(), {}
    if webhook_format is WebhookFormat.DISCORD:
        body = json.dumps(messages.discord_body(detail)).encode()
        return post_url(target.url, webhook_format), body, {}
    body = messages.json_body(detail)
    headers = messages.signed_headers(target.signing_secret, int(now), body) if target.signing_secret else {}
    return target.url, body, headers


def submission_of(record: SQSRecord) -> dict[str, Any]:
    """The event detail the rule put on the queue; Permanent when it is not a submission."""
    try:
        detail = json.loads(record.body)["detail"]
    except (ValueError, KeyError, TypeError):
        raise Permanent("message is not an EventBridge event") from None
    if not isinstance(detail, dict) or not isinstance(detail.get("submission_id"), str):
        raise Permanent("event has no submission_id")
    if not isinstance(detail.get("form"), dict):
        raise Permanent("event has no form")
    return detail


@dataclass
class Notifier:
    settings: NotifySettings
    once: OnceStore
    ses: SesSender = field(default_factory=SesSender)
    poster: WebhookPoster = field(default_factory=WebhookPoster)
    webhook_secret: WebhookSecret | None = None
    sqs: Any = None
    clock: Callable[[], float] = time.time
    logger: Logger = field(default_factory=Logger)

    @classmethod
    def from_settings(cls, settings: NotifySettings) -> Notifier:
        return cls(
            settings=settings,
            once=OnceStore(settings.ledger_table_name, DEDUPE_SECONDS),
            webhook_secret=WebhookSecret(settings.webhook_secret_id) if settings.webhook_secret_id else None,
        )

    def send(self, channel: Channel, detail: dict[str, Any]) -> Kept:
        """Sends one channel's message now; what was sent, for the ledger (no content)."""
        if channel is Channel.EMAIL:
            owners = list(self.settings.notification_emails)
            message = messages.owner_email(detail, self.settings.sender, owners)
            return {"ses_message_id": self.ses.send(message, self.settings.sender, owners)}
        if channel is Channel.AUTORESPONSE:
            visitor = messages.valid_address(detail["form"].get("email"))
            if visitor is None or not self.settings.autoresponse_text:
                return {"skipped": "no valid email field"}
            message = messages.autoresponse_email(
                self.settings.sender,
                visitor,
                self.settings.autoresponse_subject or "Thank you, we received your message",
                self.settings.autoresponse_text,
                self.settings.notification_emails[0] if self.settings.notification_emails else None,
            )
            return {"ses_message_id": self.ses.send(message, self.settings.sender, [visitor])}
        if self.webhook_secret is None:
            raise Permanent("no webhook configured")
        target = self.webhook_secret.get()
        url, body, headers = webhook_request(detail, target, self.settings.webhook_format, self.clock())
        return {"status": self.poster.post(url, body, headers)}

    def handle(self, record: SQSRecord, remaining_ms: int | None) -> None:
        """Delivers one record; raises to leave it on its queue for a later attempt."""
        channel = self.settings.channel_of(record.event_source_arn)
        if channel is None:
            raise RuntimeError("record from a queue that is not a channel's")
        queues = self.settings.queues[channel]
        attempt = int(record.attributes.approximate_receive_count or 1)
        log = {"channel": channel.value, "attempt": attempt, "message_id": record.message_id}
        try:
            detail = submission_of(record)
            log["submission_id"] = detail["submission_id"]
            ran = self.once.run_once(
                f"notify-{channel.value}",
                {"channel": channel.value, "submission_id": detail["submission_id"]},
                lambda: self.send(channel, detail),
                remaining_ms if remaining_ms is not None else DEFAULT_REMAINING_MS,
            )
        except Permanent as failure:
            self._sqs().send_message(
                QueueUrl=queues.dead_letter_queue_url,
                MessageBody=record.body,
                MessageAttributes={"reason": {"DataType": "String", "StringValue": failure.reason}},
            )
            dead = {**log, "outcome": "dead-lettered", "reason": failure.reason}
            self.logger.error("notification", extra=dead)
            return
        except (Transient, StillInFlight, StoreUnavailable) as failure:
            reason = failure.reason if isinstance(failure, Transient) else type(failure).__name__
            delay = backoff_seconds(attempt, failure.retry_after if isinstance(failure, Transient) else None)
            self._hide(queues.queue_url, record.receipt_handle, delay)
            self.logger.warning(
                "notification", extra={**log, "outcome": "retry", "reason": reason, "retry_in_seconds": delay}
            )
            raise
        outcome = "repeat" if ran.replayed else ("skipped" if "skipped" in ran.value else "sent")
        self.logger.info("notification", extra={**log, "outcome": outcome})

    def _hide(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        """The backoff: the message stays invisible this long (else the queue's own timeout)."""
        try:
            self._sqs().change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except Exception as error:
            self.logger.warning("backoff not set", extra={"error": type(error).__name__})

    def _sqs(self) -> Any:
        if self.sqs is None:
            self.sqs = client("sqs")
        return self.sqs


def build_handler(settings: NotifySettings | None = None, notifier: Notifier | None = None) -> Handler:
    settings = settings or NotifySettings.from_env()
    notifier = notifier or Notifier.from_settings(settings)
    # A batch whose every record failed is answered like any other partial failure, not raised:
    # each failed record already carries its own backoff.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    @notifier.logger.inject_lambda_context
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        def record_handler(record: SQSRecord) -> None:
            remaining = context.get_remaining_time_in_millis() if context is not None else None
            notifier.handle(record, remaining)

        answer = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        return dict(answer)

    return handler
