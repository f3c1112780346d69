"""The AWS side of handler tests, shared by the fixtures in tests/conftest.py and the tests: the
names of the tables, the bus and its inbox queue, the clock, and readers of what the handler left."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
from captcha_local.stream_relay import StreamRelay

TABLE = "challenge-log-test"
IDEMPOTENCY_TABLE = "idempotency-test"
BUS = "submissions-test"
INBOX = "submissions-inbox"
NOW = datetime(2026, 11, 21, 10, 0, 5, 250_000, tzinfo=UTC)
# The rate limit's table and its key's secret (the rate_limited fixture makes them).
RATE_TABLE = "rate-limit-test"
KEY_SECRET = "test/rate-limit-key"
KEY = "k" * 64
# The stream stand-in of the running test: delivered() pumps it, as Lambda polls the stream.
relays: list[StreamRelay] = []

HandlerFactory = Callable[..., Callable[[dict[str, Any]], dict[str, Any]]]


def table_items() -> list[dict[str, Any]]:
    return boto3.resource("dynamodb").Table(TABLE).scan()["Items"]


def pump_relay() -> None:
    """The relay takes what the store's stream holds now (as Lambda polls the stream)."""
    for relay in relays:
        relay.pump()


def replace_relay(invoke: Callable[[dict[str, Any]], Any]) -> StreamRelay:
    """The test's relay invoked through `invoke` instead, from where the stream stands now."""
    standing = relays[-1]
    relays[-1] = StreamRelay(
        standing.dynamodb, standing.streams, standing.table_name, invoke, standing.patterns
    )
    return relays[-1]


def delivered() -> list[dict[str, Any]]:
    """Every event the bus delivered to the test's inbox queue since the last call, once the relay
    has taken what the store's stream holds."""
    pump_relay()
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=INBOX)["QueueUrl"]
    events = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return events
