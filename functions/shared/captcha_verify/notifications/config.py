"""The notifications function's configuration, parsed once from its environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from captcha_verify.config import ConfigurationError
from captcha_verify.notifications.messages import valid_address


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"
    AUTORESPONSE = "autoresponse"


class WebhookFormat(StrEnum):
    SLACK = "slack"
    DISCORD = "discord"
    JSON = "json"


@dataclass(frozen=True)
class ChannelQueues:
    """The queue a channel's rule fills and the dead-letter queue its permanent failures go to."""

    queue_url: str
    dead_letter_queue_url: str

    @property
    def queue_name(self) -> str:
        return self.queue_url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class NotifySettings:
    ledger_table_name: str
    queues: Mapping[Channel, ChannelQueues]
    notification_emails: tuple[str, ...] = ()
    sender_email: str | None = None
    webhook_secret_id: str | None = None
    webhook_format: WebhookFormat | None = None  # None: chosen from the URL's host
    autoresponse_subject: str = ""
    autoresponse_text: str = ""

    @property
    def sender(self) -> str:
        """From of every email: SenderEmail, else the first NotificationEmail."""
        sender = self.sender_email or (self.notification_emails[0] if self.notification_emails else None)
        if sender is None:
            raise ConfigurationError("SENDER_EMAIL or NOTIFICATION_EMAIL is required to send email")
        return sender

    def channel_of(self, queue_arn: str) -> Channel | None:
        name = queue_arn.rsplit(":", 1)[-1]
        return next((channel for channel, q in self.queues.items() if q.queue_name == name), None)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> NotifySettings:
        def optional(name: str) -> str | None:
            return env.get(name, "").strip() or None

        queues = {}
        for channel in Channel:
            prefix = channel.value.upper()
            queue, dead_letters = optional(f"{prefix}_QUEUE_URL"), optional(f"{prefix}_DEAD_LETTER_QUEUE_URL")
            if queue and dead_letters:
                queues[channel] = ChannelQueues(queue, dead_letters)
        emails = tuple(part.strip() for part in env.get("NOTIFICATION_EMAIL", "").split(",") if part.strip())
        sender = optional("SENDER_EMAIL")
        for address in (*emails, *([sender] if sender else [])):
            if not valid_address(address):
                raise ConfigurationError("NOTIFICATION_EMAIL and SENDER_EMAIL must be email addresses")
        ledger = optional("NOTIFICATION_LEDGER_TABLE_NAME")
        if ledger is None:
            raise ConfigurationError("NOTIFICATION_LEDGER_TABLE_NAME is required")
        raw_format = (optional("WEBHOOK_FORMAT") or "").lower()
        try:
            webhook_format = WebhookFormat(raw_format) if raw_format else None
        except ValueError:
            raise ConfigurationError("WEBHOOK_FORMAT must be slack, discord or json") from None
        return cls(
            ledger_table_name=ledger,
            queues=queues,
            notification_emails=emails,
            sender_email=sender,
            webhook_secret_id=optional("WEBHOOK_SECRET_ID"),
            webhook_format=webhook_format,
            autoresponse_subject=env.get("AUTORESPONSE_SUBJECT", "").strip(),
            autoresponse_text=env.get("AUTORESPONSE_TEXT", "").strip(),
        )


def format_for(url: str, configured: WebhookFormat | None) -> WebhookFormat:
    """WebhookFormat, or the one the URL's host speaks: Slack, Discord, else signed JSON."""
    if configured is not None:
        return configured
    host = (urlsplit(url).hostname or "").lower()
    if host == "hooks.slack.com":
        return WebhookFormat.SLACK
    if host in ("discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"):
        return WebhookFormat.DISCORD
    return WebhookFormat.JSON
