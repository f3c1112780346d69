"""Submissions delivered exactly once: the event, the spam controls, idempotency, delivery failures."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from captcha_verify.aws_clients import client
from captcha_verify.providers import PROVIDERS
from captcha_verify.submission import submission_id
from support import (
    ScriptedProvider,
    committing,
    emf_metrics,
    event_token,
    load_event,
    log_records,
    refusing,
    with_body,
)
from support.answers import SECRETS, SITEKEY, body_of, digest, json_event, success_body
from support.aws import HandlerFactory, delivered, table_items

BYEBOT_TOKEN = "bb_tok_4e1f9a7c2d6b8e03f5a1c9d7e2b4f6a8"
BOUNDARY = "----FormBoundaryQ1w2E3r4"


def byebot_detail(form: dict[str, Any], request_id: str = "evt-byebot-0001") -> dict[str, Any]:
    """The exact detail a verified ByeBot token of BYEBOT_TOKEN delivers (metadata of success_body)."""
    return {
        "submission_id": submission_id("byebot", digest(BYEBOT_TOKEN)),
        "provider": "byebot",
        "received_at": "2026-11-21T10:00:05.250Z",
        "origin": "https://www.example.com",
        "request_id": request_id,
        "form": form,
        "verification": {
            "degraded": False,
            "challenge_ts": "2026-11-21T10:00:02Z",
            "sitekey": SITEKEY,
            "solve_time_ms": 2340,
            "interactive": False,
            "token_sha256": digest(BYEBOT_TOKEN),
        },
    }


def form_event(fields: list[tuple[str, str]], **headers: str) -> dict[str, Any]:
    event = load_event("byebot", "form-post", **headers)
    return with_body(event, urlencode(fields))


def multipart_event(parts: list[tuple[str, ...]]) -> dict[str, Any]:
    """Text parts (name, value) and file parts (name, content, filename)."""
    lines = []
    for name, value, *filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename[0]}"' if filename else "")
        lines += [f"--{BOUNDARY}", f"Content-Disposition: {disposition}", "", value]
    body = "\r\n".join([*lines, f"--{BOUNDARY}--", ""])
    event = load_event("byebot", "fetch-json", content_type=f"multipart/form-data; boundary={BOUNDARY}")
    return with_body(event, body, base64_encoded=True)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_provider_delivers_one_event_with_the_exact_detail(
    provider: str,
    make_handler: HandlerFactory,
    provider_server: ScriptedProvider,
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoke = make_handler(provider, SECRETS[provider])
    provider_server.answer(200, success_body(provider))
    event = load_event(provider, "fetch-json")

    response = invoke(event)

    assert response["statusCode"] == 200
    answer = body_of(response)
    [event_out] = delivered()
    assert event_out["source"] == "captcha-verify" and event_out["detail-type"] == "Form Submission"
    token = event_token(event, provider)
    assert event_out["detail"] == {
        "submission_id": submission_id(provider, digest(token)),
        "provider": provider,
        "received_at": "2026-11-21T10:00:05.250Z",
        "origin": "https://www.example.com",
        "request_id": event["requestContext"]["requestId"],
        "form": {"email": "ada@example.com"},
        "verification": {
            "degraded": False,
            "challenge_ts": answer["challenge_ts"],
            "sitekey": answer["sitekey"],
            "solve_time_ms": answer["solve_time_ms"],
            "interactive": answer["interactive"],
            "token_sha256": digest(token),
        },
    }
    assert emf_metrics(capsys.readouterr().out)["SubmissionDelivered"] == [1]


def test_byebot_detail_carries_the_provider_metadata(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(200, success_body("byebot"))
    invoke(load_event("byebot", "fetch-json"))
    assert [e["detail"] for e in delivered()] == [byebot_detail({"email": "ada@example.com"})]


@pytest.mark.parametrize(
    ("event", "form"),
    [
        pytest.param(
            form_event(
                [
                    ("email", "ann@example.org"),
                    ("topics", "a"),
                    ("message", "Hello"),
                    ("topics", "b"),
                    ("byebot-token", BYEBOT_TOKEN),
                    ("success_url", "https://www.example.com/thanks"),
                    ("failure_url", "https://www.example.com/oops"),
                    ("_gotcha", ""),
                    ("blank", ""),
                ],
                accept="application/json",
            ),
            {"email": "ann@example.org", "topics": ["a", "b"], "message": "Hello", "blank": ""},
            id="form",
        ),
        pytest.param(
            multipart_event(
                [
                    ("email", "ann@example.org"),
                    ("topics", "a"),
                    ("message", "Hello\r\nsecond line"),
                    ("topics", "b"),
                    ("byebot-token", BYEBOT_TOKEN),
                    ("attachment", "file bytes", "notes.txt"),
                    ("topics", "not a topic", "topics.txt"),
                    ("topics", "c"),
                    ("_gotcha", ""),
                ]
            ),
            {"email": "ann@example.org", "topics": ["a", "b", "c"], "message": "Hello\r\nsecond line"},
            id="multipart",
        ),
        pytest.param(
            json_event(
                {
                    "email": "ann@example.org",
                    "topics": ["a", "b"],
                    "count": 3,
                    "subscribe": True,
                    "nested": {"ignored": "object"},
                    "token": BYEBOT_TOKEN,
                    "byebot-token": "",
                }
            ),
            {"email": "ann@example.org", "topics": ["a", "b"], "count": 3, "subscribe": True},
            id="json",
        ),
    ],
)
def test_form_content_for_each_body_kind(
    event: dict[str, Any],
    form: dict[str, Any],
    make_handler: HandlerFactory,
    provider_server: ScriptedProvider,
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(200, success_body("byebot"))
    assert invoke(event)["statusCode"] == 200
    assert [e["detail"] for e in delivered()] == [byebot_detail(form)]


@pytest.mark.parametrize(
    "event",
    [
        form_event([("byebot-token", BYEBOT_TOKEN), ("email", "a@b.c"), ("byebot-token", "bb_tok_second")]),
        multipart_event(
            [("byebot-token", BYEBOT_TOKEN), ("email", "a@b.c"), ("byebot-token", "bb_tok_second")]
        ),
    ],
    ids=["form", "multipart"],
)
def test_a_repeated_token_field_verifies_its_first_value(
    event: dict[str, Any], make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(200, success_body("byebot"))
    assert invoke(event)["statusCode"] == 200
    [sent] = provider_server.received
    assert BYEBOT_TOKEN.encode() in sent["body"] and b"bb_tok_second" not in sent["body"]
    # The token field is never part of the delivered form, whichever of its values was verified.
    assert [e["detail"] for e in delivered()] == [byebot_detail({"email": "a@b.c"})]


def test_a_json_list_token_is_rejected_without_spending_anything(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    response = invoke(json_event({"byebot-token": [BYEBOT_TOKEN, "bb_tok_second"], "email": "a@b.c"}))
    assert body_of(response)["error-codes"] == ["invalid-input-response"]
    assert provider_server.received == [] and delivered() == []


def test_a_repeated_multipart_honeypot_trips_on_any_filled_value(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    event = multipart_event(
        [("_gotcha", ""), ("_gotcha", "http://spam.example"), ("byebot-token", BYEBOT_TOKEN)]
    )
    assert invoke(event)["statusCode"] == 200
    assert provider_server.received == [] and delivered() == []


def test_rejected_token_delivers_nothing(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(400, "")
    assert invoke(load_event("byebot", "fetch-json"))["statusCode"] == 400
    assert delivered() == []


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (load_event("byebot", "missing-token"), "missing-input-response"),
        (load_event("byebot", "disallowed-origin"), "origin-not-allowed"),
        (json_event({"byebot-token": BYEBOT_TOKEN, "message": "no email"}), "invalid-form"),
        (json_event({"byebot-token": BYEBOT_TOKEN, "email": "  "}), "invalid-form"),
        (json_event({"byebot-token": BYEBOT_TOKEN, "email": "a@b.c", "topics": ["x"] * 51}), "invalid-form"),
        (json_event({"byebot-token": BYEBOT_TOKEN, "email": "a@b.c", "n" * 101: "x"}), "invalid-form"),
    ],
    ids=["no-token", "origin", "required-missing", "required-blank", "repeated-too-often", "long-name"],
)
def test_cheap_check_failures_spend_no_token_and_deliver_nothing(
    event: dict[str, Any],
    code: str,
    make_handler: HandlerFactory,
    provider_server: ScriptedProvider,
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoke = make_handler(
        "byebot",
        SECRETS["byebot"],
        required_fields=("email",),
        allowed_origins=frozenset({"https://www.example.com"}),
    )
    response = invoke(event)
    assert body_of(response)["error-codes"] == [code]
    assert provider_server.received == [] and delivered() == [] and table_items() == []
    assert "no email" not in capsys.readouterr().out


def test_honeypot_is_answered_as_a_success_without_provider_or_delivery(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"], success_redirect_url="https://www.example.com/thanks")
    fields = [
        ("email", "bot@spam.example"),
        ("_gotcha", "http://spam.example"),
        ("byebot-token", BYEBOT_TOKEN),
    ]

    json_answer = invoke(form_event(fields, accept="application/json"))
    html_answer = invoke(form_event(fields, accept="text/html"))

    assert json_answer["statusCode"] == 200
    assert body_of(json_answer)["success"] is True and body_of(json_answer)["error-codes"] == []
    assert (
        html_answer["statusCode"] == 303
        and html_answer["headers"]["Location"] == "https://www.example.com/thanks"
    )
    assert provider_server.received == [] and delivered() == [] and table_items() == []
    out = capsys.readouterr().out
    assert emf_metrics(out)["HoneypotTripped"] == [1, 1]
    assert [r["message"] for r in log_records(out)].count("honeypot tripped") == 2
    assert "spam.example" not in out


def test_double_submit_gets_the_first_answer_and_delivers_once(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"], success_redirect_url="https://www.example.com/thanks")
    provider_server.answer(200, success_body("byebot"))
    fields = [("email", "ann@example.org"), ("byebot-token", BYEBOT_TOKEN)]

    first, second = (
        invoke(form_event(fields, accept="text/html")),
        invoke(form_event(fields, accept="text/html")),
    )
    # The same form sent by fetch (JSON) is the same submission: its content is what counts.
    fetch_first, fetch_retry = (
        invoke(json_event({"email": "ann@example.org", "byebot-token": BYEBOT_TOKEN})),
        invoke(json_event({"email": "ann@example.org", "byebot-token": BYEBOT_TOKEN})),
    )

    assert first == second and first["statusCode"] == 303
    assert fetch_first == fetch_retry and body_of(fetch_first)["success"] is True
    assert body_of(fetch_first)["sitekey"] == SITEKEY  # the first verification's metadata, replayed
    assert len(provider_server.received) == 1 and len(delivered()) == 1
    assert emf_metrics(capsys.readouterr().out)["DuplicateRequest"] == [1] * 3


def test_a_repeat_with_an_edited_form_is_not_a_repeat_and_sends_nothing(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(200, success_body("byebot"))
    sent = form_event([("message", "Hello"), ("byebot-token", BYEBOT_TOKEN)], accept="text/html")
    edited = form_event([("message", "Hello, again"), ("byebot-token", BYEBOT_TOKEN)], accept="text/html")

    assert invoke(sent)["statusCode"] == 200
    answer = invoke(edited)
    as_json = invoke(json_event({"message": "Hello, again", "byebot-token": BYEBOT_TOKEN}))

    assert answer["statusCode"] == 400 and "timeout-or-duplicate" in answer["body"]
    assert "already sent with this CAPTCHA" in answer["body"] and "changes were not" in answer["body"]
    assert body_of(as_json)["error-codes"] == ["timeout-or-duplicate"]
    assert len(provider_server.received) == 1
    assert [e["detail"]["form"] for e in delivered()] == [{"message": "Hello"}]
    out = capsys.readouterr().out
    assert emf_metrics(out)["ChangedRepeat"] == [1, 1]
    assert "Hello, again" not in out


def wait_until_in_flight(provider_server: ScriptedProvider, seconds: float = 10) -> None:
    """Until the first request is waiting for the provider (bounded)."""
    deadline = time.monotonic() + seconds
    while not provider_server.received:
        assert time.monotonic() < deadline, "the first request never reached the provider"
        time.sleep(0.02)


def test_in_flight_duplicate_waits_for_the_first_answer_and_delivers_once(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    # Two Lambda execution environments (one request at a time each, as in Lambda), one table.
    first, second = make_handler("byebot", SECRETS["byebot"]), make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(200, success_body("byebot"), delay=1.0)
    responses: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: responses.append(first(load_event("byebot", "fetch-json"))))
    thread.start()
    wait_until_in_flight(provider_server)

    responses.append(second(load_event("byebot", "fetch-json")))
    thread.join(timeout=15)

    assert len(responses) == 2 and responses[0] == responses[1]
    assert responses[0]["statusCode"] == 200 and body_of(responses[0])["success"] is True
    assert len(provider_server.received) == 1 and len(delivered()) == 1


def test_in_flight_duplicate_at_the_bound_answers_a_retryable_error_then_the_first_answer(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    patient = make_handler("byebot", SECRETS["byebot"])
    hurried = make_handler("byebot", SECRETS["byebot"], remaining_ms=1_300)  # waits 0.3 s at most
    provider_server.answer(200, success_body("byebot"), delay=1.2)
    first: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: first.append(patient(load_event("byebot", "fetch-json"))))
    thread.start()
    wait_until_in_flight(provider_server)

    impatient = hurried(load_event("byebot", "fetch-json"))
    thread.join(timeout=15)

    # Not a false timeout-or-duplicate: "could not be checked right now, try again", which a retry honours.
    assert impatient["statusCode"] == 502 and body_of(impatient)["error-codes"] == ["internal-error"]
    assert first[0]["statusCode"] == 200
    assert patient(load_event("byebot", "fetch-json")) == first[0]
    assert len(provider_server.received) == 1 and len(delivered()) == 1
    assert "DuplicateInFlight" in emf_metrics(capsys.readouterr().out)


def test_could_not_verify_is_not_kept_so_a_retry_asks_again(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(503, "down")
    provider_server.answer(200, success_body("byebot"))

    assert body_of(invoke(load_event("byebot", "fetch-json")))["error-codes"] == ["internal-error"]
    assert delivered() == []
    assert invoke(load_event("byebot", "fetch-json"))["statusCode"] == 200
    assert len(provider_server.received) == 2 and len(delivered()) == 1


def test_a_bus_outage_never_fails_the_visitor_and_the_submission_arrives_after_it(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(200, success_body("byebot"))
    event = form_event([("email", "ann@example.org"), ("byebot-token", BYEBOT_TOKEN)], accept="text/html")

    with refusing(client("events"), "events.PutEvents") as refused:
        answer = invoke(event)
        assert delivered() == [] and delivered() == []  # the relay tried, and keeps the record
    assert answer["statusCode"] == 200 and "Your form was sent." in answer["body"]
    assert len(refused) >= 2  # each relay attempt, retried by the client
    out = capsys.readouterr().out
    assert emf_metrics(out)["SubmissionRelayFailed"] == [1, 1]
    assert "ann@example.org" not in out

    assert [e["detail"]["form"] for e in delivered()] == [{"email": "ann@example.org"}]
    assert invoke(event) == answer and delivered() == []
    assert len(provider_server.received) == 1


def test_a_failed_commit_puts_the_submission_on_the_bus_directly(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(200, success_body("byebot"))
    event = json_event({"email": "ann@example.org", "byebot-token": BYEBOT_TOKEN})

    with refusing(
        client("dynamodb"), "dynamodb.PutItem", "ProvisionedThroughputExceededException", when=committing
    ):
        answer = invoke(event)

    assert answer["statusCode"] == 200 and body_of(answer)["success"] is True
    assert [e["detail"]["form"] for e in delivered()] == [{"email": "ann@example.org"}]
    out = capsys.readouterr().out
    assert emf_metrics(out)["SubmissionCommitFailed"] == [1]
    assert "SubmissionDeliveryFailed" not in emf_metrics(out)


def test_when_both_store_and_bus_fail_the_visitor_is_asked_to_send_again_and_it_is_alarmed(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(200, success_body("byebot"))
    event = form_event([("email", "ann@example.org"), ("byebot-token", BYEBOT_TOKEN)], accept="text/html")

    with (
        refusing(client("dynamodb"), "dynamodb.PutItem", when=committing),
        refusing(client("events"), "events.PutEvents"),
    ):
        failed = invoke(event)

    assert failed["statusCode"] == 503 and "Please send it again" in failed["body"]
    assert delivered() == []
    out = capsys.readouterr().out
    assert emf_metrics(out)["SubmissionDeliveryFailed"] == [1]
    assert "submission lost: neither committed nor put on the bus" in {r["message"] for r in log_records(out)}
    assert "ann@example.org" not in out


def test_logs_carry_no_form_value_secret_or_raw_token(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(200, success_body("byebot"))
    event = json_event(
        {"email": "private@example.org", "message": "my secret plan", "byebot-token": BYEBOT_TOKEN}
    )
    with refusing(client("events"), "events.PutEvents"):
        invoke(event)
        delivered()
    invoke(event)
    delivered()
    invoke(json_event({"message": "my secret plan, edited", "byebot-token": BYEBOT_TOKEN}))
    out = capsys.readouterr()
    records = log_records(out.out)
    assert {
        "submission committed",
        "submission not relayed",
        "submission relayed",
        "repeat answered from the submission store",
        "repeat with a changed form not sent",
    } <= {r["message"] for r in records}
    for forbidden in ("private@example.org", "my secret plan", BYEBOT_TOKEN, SECRETS["byebot"]):
        assert forbidden not in out.out + out.err


def test_idempotency_store_unavailable_spends_no_token_and_answers_retryable(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"], idempotency_table_name="no-such-table")
    provider_server.answer(200, success_body("byebot"))

    response = invoke(load_event("byebot", "fetch-json"))

    # Without the record a repeat could be delivered twice, so the token is not spent: the
    # visitor's retry (once the store is back) verifies and delivers.
    assert response["statusCode"] == 502 and body_of(response)["error-codes"] == ["internal-error"]
    assert provider_server.received == [] and delivered() == []
    assert emf_metrics(capsys.readouterr().out)["IdempotencyStoreError"] == [1]
