"""The per-client rate limit, through the real handler (moto in process)."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from captcha_local.resources import create_table, load_template
from captcha_verify.aws_clients import bounded_config
from captcha_verify.rate_limit import UNAVAILABLE_METRIC, RateLimiter, client_key, client_of, window_start
from support import ScriptedProvider, emf_metrics, load_event, log_records, with_token
from support.answers import SOURCE_IP, body_of, success_body
from support.aws import KEY, KEY_SECRET, RATE_TABLE, HandlerFactory

_tokens = itertools.count()


def from_ip(ip: str) -> dict[str, Any]:
    """A request from `ip` with a token of its own: a repeated token would be answered from the
    idempotency record without a provider call."""
    event = with_token(load_event("byebot", "fetch-json"), "byebot", f"{next(_tokens):04d}")
    event["requestContext"]["http"]["sourceIp"] = ip
    return event


def test_a_client_over_its_limit_gets_429_with_retry_after_and_no_provider_call(
    rate_limited: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = rate_limited("byebot", 2)
    for _ in range(2):
        provider_server.answer(200, success_body("byebot"))
        assert invoke(from_ip(SOURCE_IP))["statusCode"] == 200
    limited = invoke(from_ip(SOURCE_IP))
    assert limited["statusCode"] == 429 and body_of(limited)["error-codes"] == ["rate-limited"]
    assert limited["headers"]["Retry-After"] == "60"  # at most one window away
    assert len(provider_server.received) == 2  # the third request cost no provider call
    provider_server.answer(200, success_body("byebot"))
    assert invoke(from_ip("203.0.113.9"))["statusCode"] == 200  # another client is not affected
    out = capsys.readouterr().out
    assert emf_metrics(out)["RateLimited"] == [1.0]


def test_the_counter_stores_only_a_keyed_hash_of_the_ip(
    rate_limited: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = rate_limited("byebot", 5)
    provider_server.answer(200, success_body("byebot"))
    invoke(from_ip(SOURCE_IP))
    [item] = boto3.client("dynamodb").scan(TableName=RATE_TABLE)["Items"]
    assert SOURCE_IP not in json.dumps(item)
    digest, start = item["pk"]["S"].split("#")
    assert digest == client_key(SOURCE_IP, KEY.encode()) and int(start) % 60 == 0
    assert item["hits"] == {"N": "1"} and int(item["expires_at"]["N"]) > int(start) + 60


def test_zero_turns_the_limit_off(rate_limited: HandlerFactory, provider_server: ScriptedProvider) -> None:
    invoke = rate_limited("byebot", 0)
    for _ in range(3):
        provider_server.answer(200, success_body("byebot"))
        assert invoke(from_ip(SOURCE_IP))["statusCode"] == 200
    assert boto3.client("dynamodb").scan(TableName=RATE_TABLE)["Items"] == []


def test_a_cheap_check_failure_is_answered_before_the_counter(
    rate_limited: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = rate_limited("byebot", 1)
    for _ in range(3):
        event = load_event("byebot", "missing-token")
        assert body_of(invoke(event))["error-codes"] == ["missing-input-response"]
    assert boto3.client("dynamodb").scan(TableName=RATE_TABLE)["Items"] == []


@pytest.mark.parametrize("fault", ["ThrottlingException", "ProvisionedThroughputExceededException"])
def test_the_limiter_fails_open_when_dynamodb_fails(
    fault: str, aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from aws_lambda_powertools import Logger, Metrics
    from captcha_verify.secret_store import SecretStore

    boto3.client("secretsmanager").create_secret(Name=KEY_SECRET, SecretString=KEY)
    dynamodb = boto3.client("dynamodb", config=bounded_config())
    stubber = Stubber(dynamodb)
    for _ in range(2):  # two attempts: the bounded client retries once
        stubber.add_client_error("update_item", service_error_code=fault, http_status_code=400)
    stubber.activate()
    metrics = Metrics(namespace="CaptchaVerifyTest", service=f"rate-limit-{fault}")
    limiter = RateLimiter(
        1, RATE_TABLE, SecretStore(KEY_SECRET), Logger(service=f"rate-limit-{fault}"), metrics, dynamodb
    )
    limiter.check(SOURCE_IP)  # no exception: the visitor goes on
    metrics.flush_metrics()
    out = capsys.readouterr()
    text = out.out + out.err
    assert emf_metrics(text)["RateLimitUnavailable"] == [1.0]
    assert any(r.get("message") == "rate limit not checked" for r in log_records(text))
    assert SOURCE_IP not in text


def test_the_limiter_fails_open_when_the_key_is_missing(
    rate_limited: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = rate_limited("byebot", 1, rate_limit_key_secret_id="test/no-such-key")
    for _ in range(3):
        provider_server.answer(200, success_body("byebot"))
        assert invoke(from_ip(SOURCE_IP))["statusCode"] == 200


@pytest.mark.parametrize(("now", "start"), [(120.0, 120), (179.5, 120), (180.0, 180)])
def test_fixed_minute_windows(now: float, start: int) -> None:
    assert window_start(now) == start


def test_local_key_is_generated_as_the_template_asks(aws: None) -> None:
    from captcha_local.resources import create_generated_secret

    client = boto3.client("secretsmanager")
    create_generated_secret(client, "local/rate-limit-key", load_template(), "RateLimitKeySecret")
    key = client.get_secret_value(SecretId="local/rate-limit-key")["SecretString"]
    assert len(key) == 64 and key.isalnum()


def test_make_local_keeps_the_template_limit_unless_asked() -> None:
    from captcha_local.stack import LocalDeployment, parse_args

    assert parse_args([]).rate_limit is None
    assert "ClientRateLimitPerMinute" not in LocalDeployment().parameter_overrides()
    assert parse_args(["--rate-limit", "3"]).rate_limit == 3
    assert LocalDeployment(client_rate_limit=3).parameter_overrides()["ClientRateLimitPerMinute"] == "3"


def test_25_addresses_from_one_ipv6_64_are_one_client(
    rate_limited: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    """One IPv6 client rotating through its /64 is one client: without the /64 key, 25 provider calls
    got through a limit of 2."""
    invoke = rate_limited("byebot", 2)
    statuses = []
    for host in range(25):
        provider_server.answer(200, success_body("byebot"))
        statuses.append(invoke(from_ip(f"2001:db8:4:7:{host:x}:9a2:{host * 7:x}:1"))["statusCode"])
    assert statuses == [200, 200] + [429] * 23
    assert len(provider_server.received) == 2
    provider_server.answer(200, success_body("byebot"))
    assert invoke(from_ip("2001:db8:4:8::1"))["statusCode"] == 200  # the next /64 is another client


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("2001:db8:1:2:aaaa::1", "2001:0DB8:0001:0002:ffff:ffff:ffff:ffff", True),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("::ffff:203.0.113.9", "203.0.113.9", True),  # an IPv4 client reached over a mapped address
        ("203.0.113.9", "203.0.113.10", False),  # IPv4: each address is a client
    ],
)
def test_the_client_is_an_ipv4_address_or_an_ipv6_64(one: str, other: str, same: bool) -> None:
    key = KEY.encode()
    assert (client_key(one, key) == client_key(other, key)) is same
    assert client_of("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert client_of("not an address") == "not an address"


def test_a_slow_first_key_read_still_decides_the_first_request(aws: None) -> None:
    """A 1.2 s first key read must not let that request through uncounted (a check bounded as a
    whole by one second would)."""
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.metrics import EphemeralMetrics
    from captcha_verify.outcome import ErrorCode, RequestRejected
    from captcha_verify.secret_store import SecretStore

    create_table(boto3.client("dynamodb"), RATE_TABLE, load_template(), "RateLimitTable")
    boto3.client("secretsmanager").create_secret(Name=KEY_SECRET, SecretString=KEY)

    class SlowFirstRead(SecretStore):
        reads = 0

        def get(self) -> str:
            self.reads += 1
            if self.reads == 1:
                time.sleep(1.2)
            return super().get()

    def limiter(store: SecretStore, metrics: EphemeralMetrics) -> RateLimiter:
        return RateLimiter(
            1, RATE_TABLE, store, Logger(service="slow-key"), metrics, boto3.client("dynamodb")
        )

    limiter(SecretStore(KEY_SECRET), EphemeralMetrics()).check(SOURCE_IP)  # the client's first request
    metrics = EphemeralMetrics()
    cold = limiter(SlowFirstRead(KEY_SECRET), metrics)  # a new container, its key read slow
    with pytest.raises(RequestRejected) as limited:
        cold.check(SOURCE_IP)
    assert limited.value.code is ErrorCode.RATE_LIMITED
    assert UNAVAILABLE_METRIC not in metrics.metric_set
