"""The submission store on the visitor's path: two sequential AWS round trips, the committed item,
its indexes, twins that wait by reading, and forms bounded before the token is spent."""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from captcha_verify import submission
from captcha_verify.aws_clients import client
from captcha_verify.form_rules import check_controls
from captcha_verify.submission import MAX_FORM_BYTES, check_size, serialise, submission_id
from captcha_verify.submission_store import FIRST_POLL_SECONDS, IN_PROGRESS, MAX_POLL_SECONDS
from hypothesis import given
from hypothesis import strategies as st
from support import (
    PUT_EVENTS_BYTES,
    CallRounds,
    ScriptedProvider,
    emf_metrics,
    event_token,
    load_event,
    with_body,
    with_token,
)
from support.answers import SECRETS, SOURCE_IP, body_of, digest, json_event, success_body
from support.aws import IDEMPOTENCY_TABLE, HandlerFactory, delivered

_tokens = itertools.count(100)


def fresh(provider: str = "byebot") -> dict[str, Any]:
    event = with_token(load_event(provider, "fetch-json"), provider, f"{next(_tokens):04d}")
    event["requestContext"]["http"]["sourceIp"] = SOURCE_IP
    return event


def stored(provider: str, event: dict[str, Any]) -> dict[str, Any]:
    key = {"submission_id": submission_id(provider, digest(event_token(event, provider)))}
    return boto3.resource("dynamodb").Table(IDEMPOTENCY_TABLE).get_item(Key=key, ConsistentRead=True)["Item"]


def test_a_warm_verified_submission_makes_two_sequential_aws_round_trips(
    rate_limited: HandlerFactory,
    provider_server: ScriptedProvider,
) -> None:
    invoke = rate_limited("byebot", 20)
    provider_server.answer(200, success_body("byebot"))
    assert invoke(fresh())["statusCode"] == 200  # cold: the secret and the rate-limit key are read
    rounds = CallRounds()
    for service in ("dynamodb", "events", "secretsmanager"):
        rounds.watch(client(service))
    provider_server.answer(200, success_body("byebot"))

    rounds.reset()
    try:
        assert invoke(fresh())["statusCode"] == 200
    finally:
        rounds.stop()

    # Before the provider: the rate-limit count with the claim; after it: the commit with the record.
    assert [sorted(group) for group in rounds.rounds()] == [["PutItem", "UpdateItem"], ["PutItem", "PutItem"]]


def test_the_committed_item_is_the_event_detail_kept_for_the_retention_and_indexed(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"], submission_retention_days=7)
    provider_server.answer(200, success_body("byebot"))
    event = with_body(
        fresh(), json.dumps({"email": "Ann@Example.org", "byebot-token": event_token(fresh(), "byebot")})
    )

    before = int(time.time())
    assert invoke(event)["statusCode"] == 200

    item = stored("byebot", event)
    [bus_event] = delivered()
    assert json.loads(item["detail"]) == bus_event["detail"]
    assert item["state"] == "committed" and "claim_id" not in item
    assert before + 7 * 86_400 <= int(item["expires_at"]) <= int(time.time()) + 7 * 86_400
    table = boto3.resource("dynamodb").Table(IDEMPOTENCY_TABLE)
    by_email = table.query(IndexName="ByEmail", KeyConditionExpression=Key("email").eq("ann@example.org"))
    assert [i["submission_id"] for i in by_email["Items"]] == [item["submission_id"]]
    month = bus_event["detail"]["received_at"][:7]
    by_month = table.query(
        IndexName="ByMonth", KeyConditionExpression=Key("received_month").eq(month), ScanIndexForward=False
    )
    assert [i["submission_id"] for i in by_month["Items"]] == [item["submission_id"]]


def test_a_rejected_token_is_kept_without_form_content_and_never_listed(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(400, "")
    event = json_event({"email": "ann@example.org", "message": "Hello", "byebot-token": "bb_tok_" + "5" * 32})

    assert invoke(event)["statusCode"] == 400
    assert invoke(event)["statusCode"] == 400  # the kept rejection, no second provider call

    item = stored("byebot", event)
    assert item["state"] == "answered" and "detail" not in item and "email" not in item
    assert "Hello" not in json.dumps(item, default=str) and "ann@example.org" not in json.dumps(
        item, default=str
    )
    assert len(provider_server.received) == 1 and delivered() == []


class Reads:
    def __init__(self) -> None:
        self.consistent: list[bool] = []

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        self.consistent.append(bool(params.get("ConsistentRead")))


def test_a_twin_waits_with_few_consistent_reads_and_gets_the_first_answer(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    first, second = make_handler("byebot", SECRETS["byebot"]), make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(200, success_body("byebot"), delay=1.5)
    event = fresh()
    reads = Reads()
    client("dynamodb").meta.events.register(
        "provide-client-params.dynamodb.GetItem", reads, unique_id="reads"
    )
    try:
        answers: list[dict[str, Any]] = []
        thread = threading.Thread(target=lambda: answers.append(first(event)))
        thread.start()
        while not provider_server.received:
            time.sleep(0.02)
        twin = second(event)
        thread.join(timeout=15)
    finally:
        client("dynamodb").meta.events.unregister("provide-client-params.dynamodb.GetItem", unique_id="reads")

    assert twin == answers[0] and twin["statusCode"] == 200
    # Doubling from 50 ms up to 500 ms: about 1.5 s of waiting is at most eight reads, not a write
    # every 100 ms; every one strongly consistent.
    assert FIRST_POLL_SECONDS == 0.05 and MAX_POLL_SECONDS == 0.5
    assert 1 <= len(reads.consistent) <= 8 and all(reads.consistent)
    assert len(provider_server.received) == 1 and len(delivered()) == 1


def test_a_claim_left_by_a_dead_invocation_is_taken_over_once_its_hold_ends(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    event = fresh()
    sid = submission_id("byebot", digest(event_token(event, "byebot")))
    table = boto3.resource("dynamodb").Table(IDEMPOTENCY_TABLE)
    now_ms = int(time.time() * 1000)
    # The first invocation claimed the token and died; its hold ends in 0.3 s.
    table.put_item(
        Item={
            "submission_id": sid,
            "state": IN_PROGRESS,
            "claim_id": "dead",
            "in_progress_until": now_ms + 300,
            "expires_at": now_ms // 1000 + 600,
        }
    )
    provider_server.answer(200, success_body("byebot"))

    answer = invoke(event)

    assert answer["statusCode"] == 200 and len(provider_server.received) == 1
    assert [e["detail"]["submission_id"] for e in delivered()] == [sid]


def test_a_twin_that_outlasts_its_wait_answers_retryable_before_the_provider_budget_ends(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"], verify_timeout_seconds=0.5)
    event = fresh()
    sid = submission_id("byebot", digest(event_token(event, "byebot")))
    now_ms = int(time.time() * 1000)
    boto3.resource("dynamodb").Table(IDEMPOTENCY_TABLE).put_item(
        Item={
            "submission_id": sid,
            "state": IN_PROGRESS,
            "claim_id": "slow",
            "in_progress_until": now_ms + 60_000,
        }
    )

    started = time.monotonic()
    answer = invoke(event)
    waited = time.monotonic() - started

    # The wait is about the provider budget (0.5 s) plus the commit margin, not the Lambda's 10 s.
    assert answer["statusCode"] == 502 and body_of(answer)["error-codes"] == ["internal-error"]
    assert waited < 3 and provider_server.received == []
    assert emf_metrics(capsys.readouterr().out)["DuplicateInFlight"] == [1]


# ------------------------------------------------------------------ bounded before the token is spent
def test_control_characters_are_an_invalid_form_and_spend_no_token(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    token = event_token(fresh(), "byebot")
    for body in (
        {"message": "\x00" * 10_000, "byebot-token": token},
        {"message": "ring \x07 the bell", "byebot-token": token},
        {"na\x1bme": "x", "byebot-token": token},
    ):
        answer = invoke(with_body(fresh(), json.dumps(body)))
        assert answer["statusCode"] == 400 and body_of(answer)["error-codes"] == ["invalid-form"]
    allowed = invoke(with_body(fresh(), json.dumps({"message": "a\tb\r\nc", "byebot-token": token})))
    assert body_of(allowed)["error-codes"] != ["invalid-form"]
    assert len(provider_server.received) == 1  # only the allowed one reached the provider


def test_a_form_past_the_bus_entry_limit_is_413_before_any_provider_call(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The body limit keeps every real form under the entry limit (the next test): a lower limit
    # shows the check at work, measured on the form as serialised (escaping counts).
    monkeypatch.setattr(submission, "MAX_FORM_BYTES", 1_000)
    invoke = make_handler("byebot", SECRETS["byebot"])
    token = event_token(fresh(), "byebot")
    fits = {"message": "a" * 900, "byebot-token": token}
    escaped = {"message": '"' * 600, "byebot-token": token}  # 600 characters, 1,200 bytes serialised

    refused = invoke(with_body(fresh(), json.dumps(escaped)))

    assert refused["statusCode"] == 413 and body_of(refused)["error-codes"] == ["payload-too-large"]
    assert provider_server.received == []
    provider_server.answer(200, success_body("byebot"))
    assert invoke(with_body(fresh(), json.dumps(fits)))["statusCode"] == 200


def test_the_largest_body_of_the_costliest_characters_fits_the_bus_and_the_store(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    """The body limit (64 KiB) filled with what escaping inflates most (astral characters, 4 bytes
    in the body, 12 once escaped) stays under MAX_FORM_BYTES, so the AWS-limited fakes take it."""
    invoke = make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(200, success_body("byebot"))
    token = event_token(fresh(), "byebot")
    prefix = json.dumps({"byebot-token": token, "message": ""})[:-3]
    room = 64 * 1024 - len(prefix.encode()) - 2
    body = prefix + '"' + "\U0001f600" * (room // 4) + '"}'
    assert len(body.encode()) <= 64 * 1024

    answer = invoke(with_body(fresh(), body))

    assert answer["statusCode"] == 200
    [event] = delivered()
    assert MAX_FORM_BYTES > len(serialise(event["detail"]["form"])) > 190_000
    assert len(serialise(event["detail"])) < PUT_EVENTS_BYTES


def test_check_size_measures_the_serialised_form() -> None:
    check_size({"message": "a" * (MAX_FORM_BYTES - 20)})
    with pytest.raises(submission.RequestRejected):
        check_size({"message": "\u00e9" * (MAX_FORM_BYTES // 6 + 1)})  # 2 bytes in UTF-8, 6 escaped


_texts = st.text(st.characters(codec="utf-8"), max_size=40)
_forms = st.dictionaries(_texts, st.one_of(_texts, st.lists(_texts, max_size=3)), max_size=5)
_C0 = {chr(c) for c in range(0x20)} - {"\t", "\r", "\n"}


@given(_forms)
def test_control_characters_are_refused_exactly_where_they_appear(form: dict[str, Any]) -> None:
    values = [v for value in form.values() for v in (value if isinstance(value, list) else [value])]
    has_control = any(set(text) & _C0 for text in [*form, *values])
    try:
        check_controls(form)
    except submission.RequestRejected as rejection:
        assert has_control and rejection.code.value == "invalid-form"
    else:
        assert not has_control


@given(_forms, st.integers(min_value=2, max_value=400))
def test_the_size_check_refuses_exactly_what_serialises_past_the_limit(
    form: dict[str, Any], limit: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(submission, "MAX_FORM_BYTES", limit)
        try:
            check_size(form)
        except submission.RequestRejected:
            assert len(serialise(form).encode("utf-8")) > limit
        else:
            assert len(serialise(form).encode("utf-8")) <= limit
