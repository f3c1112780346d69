"""Fixtures for handler tests: AWS (moto, in process), a scripted provider on loopback, a handler factory."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from captcha_local.resources import (
    create_challenge_table,
    create_idempotency_table,
    create_secret,
    load_template,
)
from captcha_verify.config import Settings
from captcha_verify.entrypoint import build_handler
from moto import mock_aws
from support import FakeContext, RawServer, ScriptedProvider

TABLE = "challenge-log-test"
IDEMPOTENCY_TABLE = "idempotency-test"
BUS = "submissions-test"
INBOX = "submissions-inbox"
NOW = datetime(2026, 11, 21, 10, 0, 5, 250_000, tzinfo=UTC)
_services = itertools.count()


@pytest.fixture
def mocked_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in this process, with test credentials (never a running `make local`'s endpoint)."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def aws(mocked_aws: None) -> None:
    """The challenge and idempotency tables (the template's definitions), the bus, and a queue
    that receives whatever the bus delivers."""
    template = load_template()
    create_challenge_table(boto3.client("dynamodb"), TABLE, template)
    create_idempotency_table(boto3.client("dynamodb"), IDEMPOTENCY_TABLE, template)
    events = boto3.client("events")
    events.create_event_bus(Name=BUS)
    queue_url = boto3.client("sqs").create_queue(QueueName=INBOX)["QueueUrl"]
    queue_arn = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    events.put_rule(Name="inbox", EventBusName=BUS, EventPattern=json.dumps({"source": ["captcha-verify"]}))
    events.put_targets(
        Rule="inbox",
        EventBusName=BUS,
        Targets=[{"Id": "inbox", "Arn": queue_arn["Attributes"]["QueueArn"]}],
    )


@pytest.fixture
def provider_server() -> Iterator[ScriptedProvider]:
    server = ScriptedProvider()
    yield server
    server.close()


def table_items() -> list[dict[str, Any]]:
    return boto3.resource("dynamodb").Table(TABLE).scan()["Items"]


def delivered() -> list[dict[str, Any]]:
    """Every event the bus delivered to the test's inbox queue since the last call."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=INBOX)["QueueUrl"]
    events = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return events


HandlerFactory = Callable[..., Callable[[dict[str, Any]], dict[str, Any]]]


@pytest.fixture
def make_handler(
    aws: None, provider_server: ScriptedProvider, monkeypatch: pytest.MonkeyPatch
) -> HandlerFactory:
    """Builds a provider's handler wired to moto and the scripted provider; returns invoke(event)."""

    def factory(
        provider: str, secret: str | None = None, remaining_ms: int = 10_000, bus: Any = None, **settings: Any
    ):
        # A fresh service name per handler gives Powertools a fresh log handler on this test's stdout.
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"captcha-verify-test-{next(_services)}")
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CaptchaVerifyTest")
        secret_id = f"test/{provider}"
        client = boto3.client("secretsmanager")
        if secret is not None and secret_id not in {s["Name"] for s in client.list_secrets()["SecretList"]}:
            create_secret(client, secret_id, secret)
        base = Settings(
            challenge_table_name=TABLE,
            provider_secret_id=secret_id,
            submission_bus_name=BUS,
            idempotency_table_name=IDEMPOTENCY_TABLE,
            provider_verify_url=provider_server.url,
        )
        handler = build_handler(provider, settings=replace(base, **settings), bus=bus, clock=lambda: NOW)
        context = FakeContext(remaining_ms=remaining_ms)
        return lambda event: handler(event, context)

    return factory


@pytest.fixture
def raw_server() -> Iterator[Callable[[Any], RawServer]]:
    """Starts loopback RawServers for a test (a peer that drips, stalls or speaks plain HTTP) and
    closes them after it."""
    servers: list[RawServer] = []

    def start(behave: Any) -> RawServer:
        servers.append(RawServer(behave))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
