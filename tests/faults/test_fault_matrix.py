"""The fault matrix: each failing dependency, and what the visitor gets, within the budget.

AWS faults use botocore's Stubber (throttled) or a loopback socket that accepts and never answers
(silent), behind the project's own time-bounded clients; provider faults use loopback servers
started here. A verified token is never lost to our own failure: the record write failing never
changes the answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.stub import Stubber
from captcha_verify.aws_clients import bounded_config
from captcha_verify.config import FailurePolicy, Settings
from captcha_verify.entrypoint import build_handler
from captcha_verify.records import ChallengeLog
from captcha_verify.secret_store import SecretStore
from support import FakeContext, RawServer, ScriptedProvider, emf_metrics, load_event, read_request
from support.answers import SECRETS, body_of, success_body
from support.aws import BUS, IDEMPOTENCY_TABLE, NOW, TABLE, HandlerFactory
from support.faults import silent, silent_client, timed

LAMBDA_REMAINING_MS = 10_000
BUDGET = 1.0


def drip(connection: Any, closed: threading.Event) -> None:
    read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")
    while not closed.wait(0.2):
        connection.sendall(b" ")


def huge(connection: Any, closed: threading.Event) -> None:
    read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n")
    while not closed.is_set():
        connection.sendall(b"{" * 65536)


def plain_http(connection: Any, closed: threading.Event) -> None:
    connection.recv(4096)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


# ------------------------------------------------------------------ provider faults
PROVIDER_FAULTS = {
    # name: (how the provider behaves, under closed, under open)
    "slow": ("slow", (502, ["internal-error"]), (200, [])),
    "dripping": ("drip", (502, ["internal-error"]), (200, [])),
    "huge body": ("huge", (502, ["internal-error"]), (200, [])),
    "redirecting": ("redirect", (502, ["internal-error"]), (200, [])),
    "TLS error": ("tls", (502, ["internal-error"]), (200, [])),
    "429": ("429", (502, ["internal-error"]), (502, ["internal-error"])),
}


@pytest.mark.parametrize("policy", list(FailurePolicy))
@pytest.mark.parametrize("fault", PROVIDER_FAULTS)
def test_provider_fault(
    fault: str,
    policy: FailurePolicy,
    make_handler: HandlerFactory,
    provider_server: ScriptedProvider,
    raw_server: Callable[[Any], RawServer],
) -> None:
    behaviour, closed_answer, open_answer = PROVIDER_FAULTS[fault]
    url = provider_server.url
    if behaviour == "slow":
        provider_server.answer(200, success_body("byebot"), delay=BUDGET + 1.0)
    elif behaviour == "redirect":
        provider_server.answer(302, b"", headers={"Location": provider_server.url + "/elsewhere"})
    elif behaviour == "429":
        provider_server.answer(429, {"success": True})
    else:
        server = raw_server({"drip": drip, "huge": huge, "tls": plain_http}[behaviour])
        url = server.url.replace("http://", "https://") if behaviour == "tls" else server.url
    invoke = make_handler(
        "byebot",
        SECRETS["byebot"],
        provider_verify_url=url,
        verify_timeout_seconds=BUDGET,
        failure_policy=policy,
    )
    response, elapsed = timed(invoke, load_event("byebot", "fetch-json"))
    expected = closed_answer if policy is FailurePolicy.CLOSED else open_answer
    assert (response["statusCode"], body_of(response)["error-codes"]) == expected
    assert body_of(response)["degraded"] is (expected == (200, []))
    # The budget plus the connect retry's slack, far inside the Lambda's 10 s.
    assert elapsed < BUDGET + 1.5
    assert len(provider_server.received) <= 1  # a redirect is never followed


# ------------------------------------------------------------------ AWS faults
def stubbed(service: str, operation: str, code: str) -> Any:
    client = boto3.client(service, config=bounded_config())
    stubber = Stubber(client)
    for _ in range(2):  # the bounded client makes two attempts
        stubber.add_client_error(operation, service_error_code=code, http_status_code=400)
    stubber.activate()
    return client


@pytest.fixture
def handler_with(
    aws: None, provider_server: ScriptedProvider, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Callable[[dict[str, Any]], dict[str, Any]]]:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"captcha-verify-faults-{time.monotonic_ns()}")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CaptchaVerifyFaults")

    def build(
        *, secrets_client: Any = None, dynamodb: Any = None
    ) -> Callable[[dict[str, Any]], dict[str, Any]]:
        if secrets_client is None:
            secrets_client = boto3.client("secretsmanager")
            secrets_client.create_secret(Name="test/byebot", SecretString=SECRETS["byebot"])
        settings = Settings(
            challenge_table_name=TABLE,
            provider_secret_id="test/byebot",
            submission_bus_name=BUS,
            idempotency_table_name=IDEMPOTENCY_TABLE,
            provider_verify_url=provider_server.url,
        )
        handler = build_handler(
            "byebot",
            settings=replace(settings, verify_timeout_seconds=3.0),
            secrets=SecretStore("test/byebot", provider=SecretsProvider(boto3_client=secrets_client)),
            challenge_log=ChallengeLog(TABLE, dynamodb=dynamodb or boto3.client("dynamodb")),
            clock=lambda: NOW,
        )
        return lambda event: handler(event, FakeContext(remaining_ms=LAMBDA_REMAINING_MS))

    return build


@pytest.mark.parametrize("mode", ["throttled", "silent"])
def test_dynamodb_fault_never_changes_a_verified_answer(
    mode: str,
    handler_with: Any,
    provider_server: ScriptedProvider,
    raw_server: Callable[[Any], RawServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    dynamodb = (
        stubbed("dynamodb", "put_item", "ThrottlingException")
        if mode == "throttled"
        else silent_client("dynamodb", raw_server(silent))
    )
    invoke = handler_with(dynamodb=dynamodb)
    provider_server.answer(200, success_body("byebot"))
    response, elapsed = timed(invoke, load_event("byebot", "fetch-json"))
    assert response["statusCode"] == 200 and body_of(response)["success"] is True
    assert elapsed < LAMBDA_REMAINING_MS / 1000 - 5  # the record write waits 2 s at most
    assert emf_metrics(capsys.readouterr().out)["RecordWriteFailed"] == [1.0]


@pytest.mark.parametrize("mode", ["throttled", "silent"])
def test_secrets_manager_fault_answers_missing_secret_without_spending_the_token(
    mode: str, handler_with: Any, provider_server: ScriptedProvider, raw_server: Callable[[Any], RawServer]
) -> None:
    secrets_client = (
        stubbed("secretsmanager", "get_secret_value", "ThrottlingException")
        if mode == "throttled"
        else silent_client("secretsmanager", raw_server(silent))
    )
    invoke = handler_with(secrets_client=secrets_client)
    response, elapsed = timed(invoke, load_event("byebot", "fetch-json"))
    assert (response["statusCode"], body_of(response)["error-codes"]) == (500, ["missing-input-secret"])
    assert provider_server.received == []
    # Two attempts of (1 s connect + 2 s read) at most, well inside the Lambda's 10 s.
    assert elapsed < LAMBDA_REMAINING_MS / 1000 - 3
