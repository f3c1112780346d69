"""The local submission bus, each notification channel's rule and queue as template.yaml defines
them, and the real notifications function consuming the queues as Lambda's SQS event source does.

The inbox shows what reached a person: each email exactly as moto's SES received it (the raw
message, parsed with the stdlib `email` package) and each body the local webhook sink received.
Nothing here renders a message itself.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from captcha_local.terminal import Terminal

# Template rule -> the channel whose queue it fills (and the prefix of its variables).
CHANNEL_RULES = {"EmailRule": "EMAIL", "WebhookRule": "WEBHOOK", "AutoresponseRule": "AUTORESPONSE"}
SUBMISSION_HEADER = "X-Captcha-Verify-Submission-Id"
WEBHOOK_HEADERS = ("Content-Type", "User-Agent", "X-Captcha-Verify-Timestamp", "X-Captcha-Verify-Signature")
# How a Slack or Discord body names its submission (the status line the layer writes).
_SUBMISSION_ID = re.compile(r"Submission id: ([0-9a-f-]{36})")
# The forwarded call is bounded like the function's own (connect, read seconds; answer bytes).
FORWARD_TIMEOUT = (3.0, 10.0)
MAX_FORWARD_ANSWER_BYTES = 16 * 1024
# Long polling: a message is picked up as soon as it arrives, as Lambda's pollers do.
WAIT_SECONDS = 1

Invoke = Callable[[str], dict[str, Any]]


def parsed_email(raw: str) -> dict[str, Any]:
    """A message as a mail client would show it: its headers, text and HTML parts, and the source."""
    message = email.message_from_string(raw, policy=email.policy.default)
    parts: dict[str, str] = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            # The message travels with CRLF line ends; a page shows lines.
            parts.setdefault(part.get_content_subtype(), str(part.get_content()).replace("\r\n", "\n"))
    return {
        "headers": [[name, str(value)] for name, value in message.items()],
        "text": parts.get("plain", ""),
        "html": parts.get("html", ""),
        "raw": raw,
    }


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """What Lambda's SQS event source hands the function for these received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def failed_ids(result: Mapping[str, Any]) -> set[str] | None:
    """The message ids the function reported failed; None when the invocation itself failed."""
    if "ok" not in result or not isinstance(result["ok"], dict):
        return None
    return {str(item.get("itemIdentifier")) for item in result["ok"].get("batchItemFailures", [])}


@dataclass(frozen=True)
class SinkAnswer:
    status: int
    body: bytes
    retry_after: str | None


def forward(url: str, query: str, headers: Mapping[str, str], body: bytes) -> SinkAnswer:
    """The same body and headers posted to `url` (with the function's query, e.g. Discord's
    ?wait=true); its status, bounded answer and Retry-After. A failure answers 504, which the
    function treats as transient, as it would the receiver's own timeout."""
    target = f"{url}{'&' if '?' in url else '?'}{query}" if query else url
    try:
        with requests.post(
            target,
            data=body,
            headers=dict(headers),
            timeout=FORWARD_TIMEOUT,
            allow_redirects=False,
            stream=True,
        ) as response:
            answer = response.raw.read(MAX_FORWARD_ANSWER_BYTES, decode_content=True)
            return SinkAnswer(response.status_code, answer, response.headers.get("Retry-After"))
    except requests.RequestException:
        return SinkAnswer(504, b"", None)


@dataclass
class ChannelQueue:
    channel: str  # "email", "webhook", "autoresponse"
    rule_id: str
    url: str
    arn: str


@dataclass
class NotificationInbox:
    """The bus, the channels' rules and queues, their poller, and what reached a person."""

    resources: Mapping[str, Any]  # the template's Resources
    bus_name: str
    aws_client: Callable[[str], Any]
    region: str
    # The terminal's own line writer, which escapes what the visitor typed (field names, origin).
    announce: Callable[[str], None] = field(default_factory=lambda: Terminal().notice)
    forward_to: str | None = None  # the user's own webhook URL (--webhook-url); never printed
    channels: list[ChannelQueue] = field(default_factory=list, init=False)
    _environment: dict[str, str] = field(default_factory=dict, init=False)
    _details: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    _deliveries: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    _seen_emails: int = field(default=0, init=False)
    _stopped: threading.Event = field(default_factory=threading.Event, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def create(self, environment: Mapping[str, str] | None = None) -> dict[str, str]:
        """The bus and, for each channel the function's environment turns on, its dead-letter
        queue, queue and rule, under the names that environment resolves to (the first call's
        environment again when called without one). Returns the variables that must name the
        queues by URL, as CloudFormation's Ref of a queue does."""
        events, sqs = self.aws_client("events"), self.aws_client("sqs")
        events.create_event_bus(Name=self.bus_name)
        if environment is not None:
            self._environment = dict(environment)
        environment = self._environment
        resolved: dict[str, str] = {}
        self.channels = []
        for rule_id, prefix in CHANNEL_RULES.items():
            queue_name = environment.get(f"{prefix}_QUEUE_URL", "").rsplit("/", 1)[-1]
            if not queue_name:
                continue
            queue = self.resources[queue_name]["Properties"]
            dead_letter_name = environment[f"{prefix}_DEAD_LETTER_QUEUE_URL"].rsplit("/", 1)[-1]
            dead_letter_url = sqs.create_queue(QueueName=dead_letter_name)["QueueUrl"]
            redrive = {
                "deadLetterTargetArn": self._arn(sqs, dead_letter_url),
                "maxReceiveCount": str(queue["RedrivePolicy"]["maxReceiveCount"]),
            }
            url = sqs.create_queue(
                QueueName=queue_name,
                Attributes={
                    "VisibilityTimeout": str(queue["VisibilityTimeout"]),
                    "RedrivePolicy": json.dumps(redrive),
                },
            )["QueueUrl"]
            arn = self._arn(sqs, url)
            rule = self.resources[rule_id]["Properties"]
            events.put_rule(
                Name=rule_id, EventBusName=self.bus_name, EventPattern=json.dumps(rule["EventPattern"])
            )
            events.put_targets(
                Rule=rule_id, EventBusName=self.bus_name, Targets=[{"Id": "queue", "Arn": arn}]
            )
            self.channels.append(ChannelQueue(prefix.lower(), rule_id, url, arn))
            resolved[f"{prefix}_QUEUE_URL"] = url
            resolved[f"{prefix}_DEAD_LETTER_QUEUE_URL"] = dead_letter_url
        return resolved

    @staticmethod
    def _arn(sqs: Any, url: str) -> str:
        return str(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )

    def verify_sender(self, sender: str) -> None:
        """The sender identity, verified as docs/delivery.md asks the owner to do in SES."""
        self.aws_client("ses").verify_email_identity(EmailAddress=sender)

    def start(self, invoke: Invoke, batch_size: int) -> Callable[[], None]:
        """One poller per channel, invoking the function as the event source mapping would;
        returns the function that stops them."""
        threads = [
            threading.Thread(
                target=self._poll, args=(c, invoke, batch_size), name=f"inbox-{c.channel}", daemon=True
            )
            for c in self.channels
        ]
        for thread in threads:
            thread.start()

        def stop() -> None:
            self._stopped.set()
            for thread in threads:
                thread.join(timeout=WAIT_SECONDS + 5)

        return stop

    def _poll(self, channel: ChannelQueue, invoke: Invoke, batch_size: int) -> None:
        sqs = self.aws_client("sqs")
        while not self._stopped.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=channel.url,
                    MaxNumberOfMessages=batch_size,
                    WaitTimeSeconds=WAIT_SECONDS,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                # The queue was deleted (a test takes the bus down) or moto is stopping.
                self._stopped.wait(0.2)
                continue
            if not messages:
                continue
            self._remember(messages)
            result = invoke(json.dumps(sqs_event(messages, channel.arn, self.region)))
            failed = failed_ids(result)
            for message in messages:
                ok = failed is not None and message["MessageId"] not in failed
                if ok:
                    # Lambda's event source deletes what the function did not report as failed.
                    sqs.delete_message(QueueUrl=channel.url, ReceiptHandle=message["ReceiptHandle"])
                self._collect_emails()
                self._announce(channel.channel, message, ok)

    def _remember(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            try:
                detail = json.loads(message["Body"])["detail"]
            except (ValueError, KeyError, TypeError):
                continue
            with self._lock:
                self._details.setdefault(str(detail.get("submission_id")), detail)

    def _collect_emails(self) -> None:
        """Every message moto's SES accepted since the last look, filed under its submission."""
        sent = ses_backends[DEFAULT_ACCOUNT_ID][self.region].sent_messages
        with self._lock:
            new, self._seen_emails = sent[self._seen_emails :], len(sent)
        for message in new:
            raw = getattr(message, "raw_data", None)
            if raw is None:
                continue
            shown = parsed_email(raw)
            headers = dict(shown["headers"])
            submission_id = headers.get(SUBMISSION_HEADER)
            kind = "email" if submission_id else "autoresponse"
            key = submission_id or self._submission_for_visitor(headers.get("To", ""))
            shown["received_at"] = time.time()
            self._file(key, kind, shown)

    def _submission_for_visitor(self, address: str) -> str:
        """The newest submission whose `email` field is this address (the autoresponse names none)."""
        with self._lock:
            matches = [sid for sid, d in self._details.items() if d.get("form", {}).get("email") == address]
        return matches[-1] if matches else ""

    def receive_webhook(self, headers: Mapping[str, str], body: bytes, query: str = "") -> SinkAnswer:
        """What the local webhook sink was posted, kept for the inbox; passed on unchanged to the
        user's own webhook (--webhook-url), whose answer the function then gets as its own."""
        text = body.decode("utf-8", errors="replace")
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        submission_id = document.get("submission_id") if isinstance(document, dict) else None
        if submission_id is None:
            found = _SUBMISSION_ID.search(text)
            submission_id = found[1] if found else ""
        kept = {name: headers[name] for name in WEBHOOK_HEADERS if name in headers}
        self._file(str(submission_id), "webhook", {"headers": kept, "body": text, "received_at": time.time()})
        if self.forward_to is None:
            return SinkAnswer(200, b"ok", None)
        return forward(self.forward_to, query, kept, body)

    def _file(self, submission_id: str, kind: str, delivery: dict[str, Any]) -> None:
        with self._lock:
            self._deliveries.setdefault(submission_id, {}).setdefault(kind, []).append(delivery)

    def _announce(self, channel: str, message: dict[str, Any], delivered: bool) -> None:
        try:
            detail = json.loads(message["Body"])["detail"]
        except (ValueError, KeyError, TypeError):
            detail = {}
        # Field names only, as in the functions' own logs: a visitor's text stays in the inbox. A
        # name is visitor text too: `announce` is the terminal's writer, which escapes it.
        fields = ", ".join(detail.get("form", {})) or "no fields"
        outcome = "delivered" if delivered else "not delivered yet (retried with backoff)"
        self.announce(f"[inbox] {channel} for submission {detail.get('submission_id')} {outcome} ({fields})")

    def snapshot(self) -> list[dict[str, Any]]:
        """One entry per submission, newest first: the event detail and what reached each channel."""
        with self._lock:
            details = dict(self._details)
            deliveries = {
                sid: {kind: list(items) for kind, items in d.items()} for sid, d in self._deliveries.items()
            }
        return [{"detail": detail, **deliveries.get(sid, {})} for sid, detail in reversed(details.items())]
