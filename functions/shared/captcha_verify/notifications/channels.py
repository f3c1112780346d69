"""Sending a rendered message: SES for email, one bounded HTTP POST for a webhook.

Each failure is classified for the consumer: Transient (retried with backoff for hours) or
Permanent (to the channel's dead-letter queue at once). A reason names a status or an error
class, never the webhook URL (a credential) or anything the visitor typed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError

from captcha_verify.aws_clients import client
from captcha_verify.deadline import SocketDeadline
from captcha_verify.notifications.config import WebhookFormat
from captcha_verify.transport import attempt_timeouts, make_session

# A webhook answers in well under a second; past this the receiver is treated as down.
WEBHOOK_TIMEOUT_SECONDS = 10.0
# Only the status matters; a receiver's answer is never worth more memory than this.
MAX_RESPONSE_BYTES = 16 * 1024
MAX_RETRY_AFTER_SECONDS = 3_600
_CHUNK_BYTES = 4 * 1024
# SESv2 errors that clear by themselves (throttling, a paused or suspended account being fixed);
# every other 4xx (MessageRejected, MailFromDomainNotVerified, NotFound, BadRequest) will not.
_SES_TRANSIENT = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "SendingPausedException",
        "AccountSuspendedException",
    }
)
SECRET_MAX_AGE_SECONDS = 300


class Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Permanent(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class SesSender:
    sesv2: Any = None

    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> str:
        """The SES message id; raises Transient or Permanent."""
        if self.sesv2 is None:
            self.sesv2 = client("sesv2")
        try:
            answer = self.sesv2.send_email(
                FromEmailAddress=sender,
                Destination={"ToAddresses": recipients},
                Content={"Raw": {"Data": message.as_bytes()}},
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "ClientError")
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in _SES_TRANSIENT or status >= 500 or code.startswith("Throttl"):
                raise Transient(f"SES {code}") from None
            raise Permanent(f"SES {code}") from None
        except BotoCoreError as error:
            raise Transient(f"SES {type(error).__name__}") from None
        return str(answer.get("MessageId", ""))


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    signing_secret: str


@dataclass
class WebhookSecret:
    """{"url": ..., "signing_secret": ...} from Secrets Manager, cached for five minutes."""

    secret_id: str
    provider: SecretsProvider | None = None

    def get(self) -> WebhookTarget:
        if self.provider is None:
            self.provider = SecretsProvider(boto3_client=client("secretsmanager"))
        try:
            raw = self.provider.get(self.secret_id, max_age=SECRET_MAX_AGE_SECONDS)
        except GetParameterError as error:
            cause = type(error.__cause__ or error).__name__
            raise Transient(f"webhook secret unavailable ({cause})") from None
        try:
            document = json.loads(raw if isinstance(raw, str | bytes) else "")
            url, secret = document["url"], document.get("signing_secret", "")
        except (ValueError, KeyError, TypeError):
            raise Permanent('webhook secret is not {"url": ..., "signing_secret": ...}') from None
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise Permanent("webhook URL in the secret is not an http(s) URL")
        return WebhookTarget(url, secret if isinstance(secret, str) else "")


def post_url(url: str, webhook_format: WebhookFormat) -> str:
    """Discord answers errors only with ?wait=true (else 204 before the message is checked)."""
    if webhook_format is not WebhookFormat.DISCORD:
        return url
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode({"wait": "true"})]))
    return urlunsplit(parts._replace(query=query))


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After as seconds or an HTTP date, capped at an hour; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))


def classify(status: int, retry_after: str | None, now: float) -> None:
    """Returns for a 2xx; raises Transient (408, 429, 5xx) or Permanent (anything else)."""
    if 200 <= status < 300:
        return
    if status in (408, 429) or status >= 500:
        raise Transient(f"webhook answered {status}", retry_after_seconds(retry_after, now))
    raise Permanent(f"webhook answered {status}")


@dataclass
class WebhookPoster:
    session: requests.Session | None = field(default=None)
    timeout_seconds: float = WEBHOOK_TIMEOUT_SECONDS

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """The 2xx status; raises Transient or Permanent. Bounded in wall-clock time and size."""
        if self.session is None:
            self.session = make_session(frozenset())
        deadline = SocketDeadline(self.timeout_seconds)
        try:
            with deadline.running():
                status, retry_after = self._exchange(url, body, headers)
        except requests.RequestException as error:
            # The exception's text quotes the URL, a credential: only its class is reported.
            timed_out = deadline.expired or isinstance(error, requests.Timeout)
            reason = "webhook timed out" if timed_out else f"webhook unreachable ({type(error).__name__})"
            raise Transient(reason) from None
        classify(status, retry_after, time.time())
        return status

    def _exchange(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str | None]:
        assert self.session is not None
        with self.session.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", "User-Agent": "captcha-verify", **headers},
            timeout=attempt_timeouts(self.timeout_seconds),
            allow_redirects=False,
            stream=True,
        ) as response:
            read = 0
            for chunk in response.iter_content(_CHUNK_BYTES):
                read += len(chunk)
                if read > MAX_RESPONSE_BYTES:
                    break
            return response.status_code, response.headers.get("Retry-After")
