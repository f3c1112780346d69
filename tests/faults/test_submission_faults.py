"""Faults on the submission's way: the store at the claim and at the commit, the bus, the relay.

A verified submission is never lost to our own failure: the store refusing the claim is answered
before the token is spent; the store refusing the commit sends the event to the bus directly; only
when both refuse is the visitor asked to send again. A relay that dies mid-batch loses nothing and
never puts a submission under a new id.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from captcha_verify.aws_clients import client
from captcha_verify.delivery import SubmissionBus
from captcha_verify.relay import build_relay_handler
from captcha_verify.submission_store import COMMIT_SECONDS, SubmissionStore
from captcha_verify.verification import DIRECT_PUT_SECONDS
from support import (
    FakeContext,
    RawServer,
    ScriptedProvider,
    committing,
    emf_metrics,
    load_event,
    refusing,
    with_token,
)
from support.answers import SECRETS, SOURCE_IP, body_of, success_body
from support.aws import BUS, IDEMPOTENCY_TABLE, HandlerFactory, delivered, replace_relay
from support.faults import silent, silent_client, timed

_tokens = itertools.count(500)


def fresh() -> dict[str, Any]:
    event = with_token(load_event("byebot", "fetch-json"), "byebot", f"{next(_tokens):04d}")
    event["requestContext"]["http"]["sourceIp"] = SOURCE_IP
    return event


@pytest.mark.parametrize("mode", ["throttled", "silent"])
def test_the_store_failing_at_the_claim_is_answered_before_the_token_is_spent(
    mode: str,
    make_handler: HandlerFactory,
    provider_server: ScriptedProvider,
    raw_server: Callable[[Any], RawServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    if mode == "throttled":
        store = None
        refusal = refusing(client("dynamodb"), "dynamodb.PutItem", "ProvisionedThroughputExceededException")
    else:
        server = raw_server(silent)
        store = SubmissionStore(IDEMPOTENCY_TABLE, 600, 90, dynamodb=silent_client("dynamodb", server))
        refusal = contextlib.nullcontext([])
    invoke = make_handler("byebot", SECRETS["byebot"], store=store)
    provider_server.answer(200, success_body("byebot"))

    with refusal:
        answer, elapsed = timed(invoke, fresh())

    assert (answer["statusCode"], body_of(answer)["error-codes"]) == (502, ["internal-error"])
    assert provider_server.received == [] and delivered() == []
    assert elapsed < 3  # the claim waits one second at most
    assert emf_metrics(capsys.readouterr().out)["IdempotencyStoreError"] == [1]


class SlowCommits:
    """DynamoDB whose commits arrive after the function stopped waiting for them."""

    def __init__(self, real: Any, delay: float) -> None:
        self.real, self.delay = real, delay

    def put_item(self, **request: Any) -> Any:
        if committing(request):
            time.sleep(self.delay)
        return self.real.put_item(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize("mode", ["refused", "late"])
def test_the_store_failing_at_the_commit_puts_the_event_on_the_bus_directly(
    mode: str,
    make_handler: HandlerFactory,
    provider_server: ScriptedProvider,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real = boto3.client("dynamodb")
    store = SubmissionStore(
        IDEMPOTENCY_TABLE,
        600,
        90,
        dynamodb=SlowCommits(real, COMMIT_SECONDS + 0.5) if mode == "late" else real,
    )
    invoke = make_handler("byebot", SECRETS["byebot"], store=store)
    provider_server.answer(200, success_body("byebot"))
    event = fresh()

    with (
        refusing(real, "dynamodb.PutItem", when=committing)
        if mode == "refused"
        else contextlib.nullcontext([])
    ):
        answer, elapsed = timed(invoke, event)

    assert answer["statusCode"] == 200 and body_of(answer)["success"] is True
    assert elapsed < COMMIT_SECONDS + 2
    assert emf_metrics(capsys.readouterr().out)["SubmissionCommitFailed"] == [1]
    time.sleep(0.7 if mode == "late" else 0)  # the late commit lands, and the relay puts it too
    events = delivered()
    # At least once: the direct put, and for a late commit the relay's put as well, same id.
    assert len(events) == (2 if mode == "late" else 1)
    assert len({e["detail"]["submission_id"] for e in events}) == 1
    assert len(provider_server.received) == 1


class Died(BaseException):
    """The relay's execution environment going away mid-invocation (not an error it can catch)."""


class DyingBus(SubmissionBus):
    """Puts `survives` events, then the invocation dies; after that it works."""

    def __init__(self, survives: int) -> None:
        super().__init__(BUS, events=client("events"))
        self.survives = survives

    def put_serialised(self, detail: str) -> str:
        if self.survives == 0:
            self.survives = -1
            raise Died()
        self.survives -= 1
        return super().put_serialised(detail)


def test_a_relay_dying_mid_batch_loses_nothing_and_never_invents_an_id(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    events = [fresh() for _ in range(4)]
    for event in events:
        provider_server.answer(200, success_body("byebot"))
        assert invoke(event)["statusCode"] == 200
    handler = build_relay_handler(DyingBus(survives=2))

    def invocation(batch: dict[str, Any]) -> Any:
        try:
            return handler(batch, FakeContext(function_name="submission-relay"))
        except Died:
            raise RuntimeError("Runtime exited") from None  # what Lambda reports to the mapping

    relay = replace_relay(invocation)
    assert relay.pump() == 0  # the batch died after two puts: nothing checkpointed
    assert relay.pump() == 4  # retried whole

    arrived = [e["detail"]["submission_id"] for e in delivered()]
    committed = {
        item["submission_id"]
        for item in boto3.resource("dynamodb").Table(IDEMPOTENCY_TABLE).scan()["Items"]
        if item["state"] == "committed"
    }
    assert set(arrived) == committed and len(committed) == 4
    assert len(arrived) == 6  # the two put before the death, put again with the same ids


def test_store_refusing_the_commit_and_a_silent_bus_answer_503_within_their_bounds(
    make_handler: HandlerFactory,
    provider_server: ScriptedProvider,
    raw_server: Callable[[Any], RawServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    bus = SubmissionBus(BUS, events=silent_client("events", raw_server(silent)))
    invoke = make_handler("byebot", SECRETS["byebot"], bus=bus)
    provider_server.answer(200, success_body("byebot"))

    with refusing(client("dynamodb"), "dynamodb.PutItem", when=committing):
        answer, elapsed = timed(invoke, fresh())

    assert (answer["statusCode"], body_of(answer)["error-codes"]) == (503, ["delivery-failed"])
    # The direct put waits DIRECT_PUT_SECONDS, where the bus client alone would take 2 x (1 + 2) s.
    assert elapsed < DIRECT_PUT_SECONDS + 2
    assert emf_metrics(capsys.readouterr().out)["SubmissionDeliveryFailed"] == [1]
