"""Fixtures for handler tests: AWS (moto, in process), a scripted provider on loopback, a handler factory."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import boto3
import pytest
from captcha_local.resources import (
    create_challenge_table,
    create_secret,
    create_submission_table,
    create_table,
    load_template,
)
from captcha_local.stream_relay import StreamRelay
from captcha_verify.aws_clients import client
from captcha_verify.config import Settings
from captcha_verify.delivery import SubmissionBus
from captcha_verify.entrypoint import build_handler
from captcha_verify.relay import build_relay_handler
from moto import mock_aws
from support import FakeContext, RawServer, ScriptedProvider, enforce_aws_limits
from support.answers import SECRETS
from support.aws import (
    BUS,
    IDEMPOTENCY_TABLE,
    INBOX,
    KEY,
    KEY_SECRET,
    NOW,
    RATE_TABLE,
    TABLE,
    HandlerFactory,
    relays,
)

_services = itertools.count()


@pytest.fixture
def mocked_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in this process, with test credentials (never a running `make local`'s endpoint)."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_METRICS_NAMESPACE": "CaptchaVerifyTest",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def aws(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The challenge table and the submission store (the template's definitions), the bus, a queue
    that receives whatever the bus delivers, and the relay from the store's stream to the bus."""
    template = load_template()
    # The layer's own (shared, cached) clients refuse what AWS refuses and moto takes.
    enforce_aws_limits(client("dynamodb"))
    enforce_aws_limits(client("events"))
    create_challenge_table(boto3.client("dynamodb"), TABLE, template)
    create_submission_table(boto3.client("dynamodb"), IDEMPOTENCY_TABLE, template)
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
    relay: list[Any] = []

    def invoke_relay(event: dict[str, Any]) -> Any:
        # Built on first use, so its log handler writes to the test's (captured) stdout.
        if not relay:
            monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"submission-relay-{next(_services)}")
            relay.append(build_relay_handler(SubmissionBus(BUS, events=client("events"))))
        return relay[0](event, FakeContext(function_name="submission-relay"))

    relays.append(
        StreamRelay.from_template(
            template,
            boto3.client("dynamodb"),
            boto3.client("dynamodbstreams"),
            IDEMPOTENCY_TABLE,
            invoke_relay,
        )
    )
    yield
    relays.clear()


@pytest.fixture
def provider_server() -> Iterator[ScriptedProvider]:
    server = ScriptedProvider()
    yield server
    server.close()


@pytest.fixture
def make_handler(
    aws: None, provider_server: ScriptedProvider, monkeypatch: pytest.MonkeyPatch
) -> HandlerFactory:
    """Builds a provider's handler wired to moto and the scripted provider; returns invoke(event)."""

    def factory(
        provider: str,
        secret: str | None = None,
        remaining_ms: int = 10_000,
        bus: Any = None,
        store: Any = None,
        clock: Callable[[], datetime] = lambda: NOW,
        **settings: Any,
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
        handler = build_handler(
            provider, settings=replace(base, **settings), bus=bus, store=store, clock=clock
        )
        context = FakeContext(remaining_ms=remaining_ms)
        return lambda event: handler(event, context)

    return factory


@pytest.fixture
def rate_limited(aws: None, make_handler: HandlerFactory) -> HandlerFactory:
    """A handler factory whose handlers have the per-client rate limit at `limit` a minute."""
    create_table(boto3.client("dynamodb"), RATE_TABLE, load_template(), "RateLimitTable")
    boto3.client("secretsmanager").create_secret(Name=KEY_SECRET, SecretString=KEY)

    def factory(provider: str, limit: int, **settings: Any):
        wiring = {"rate_limit_table_name": RATE_TABLE, "rate_limit_key_secret_id": KEY_SECRET, **settings}
        return make_handler(provider, SECRETS[provider], client_rate_limit_per_minute=limit, **wiring)

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
