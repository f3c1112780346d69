"""The handler end to end through events/: moto for AWS, a scripted provider on loopback."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from captcha_verify.config import FailurePolicy, Settings
from captcha_verify.entrypoint import build_handler
from captcha_verify.providers import PROVIDERS
from captcha_verify.secret_store import SecretStore
from support import (
    SITEVERIFY_KEYS,
    FakeContext,
    ScriptedProvider,
    emf_metrics,
    event_body,
    event_token,
    load_event,
    log_records,
    with_body,
    with_token,
)
from support.answers import SECRETS, SITEKEY, SOURCE_IP, body_of, success_body
from support.aws import BUS, IDEMPOTENCY_TABLE, NOW, TABLE, HandlerFactory, table_items


@pytest.mark.parametrize("provider", PROVIDERS)
def test_verified_token_answers_200_and_is_recorded(
    provider: str,
    make_handler: HandlerFactory,
    provider_server: ScriptedProvider,
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoke = make_handler(provider, SECRETS[provider])
    provider_server.answer(200, success_body(provider))

    response = invoke(load_event(provider, "fetch-json"))

    assert response["statusCode"] == 200
    assert response["headers"]["Cache-Control"] == "no-store"
    body = body_of(response)
    assert body["success"] is True and body["error-codes"] == [] and body["degraded"] is False
    assert body["provider"] == provider
    assert set(body) == SITEVERIFY_KEYS
    [item] = table_items()
    assert item["provider"] == provider and item["success"] is True and item["error_codes"] == []
    assert item["provider_status"] == 200 and item["provider_latency_ms"] >= 0
    assert item["request_id"] == f"evt-{provider}-0001"
    assert item["sk"] == f"2026-11-21T10:00:05.250Z#evt-{provider}-0001"
    assert item["created_at"] == "2026-11-21T10:00:05.250Z"
    assert item["expires_at"] == int(NOW.timestamp()) + 30 * 86400
    assert item["origin"] == "https://www.example.com"
    assert len(item["token_sha256"]) == 64
    [line] = [r for r in log_records(capsys.readouterr().out) if r.get("message") == "verification"]
    assert line["outcome"] == "verified" and line["provider"] == provider and line["correlation_id"]


def test_byebot_metadata_flows_to_answer_record_and_metrics(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"], expected_sitekey=SITEKEY)
    provider_server.answer(200, success_body("byebot"))

    body = body_of(invoke(load_event("byebot", "form-post", accept="application/json")))

    assert body["challenge_ts"] == "2026-11-21T10:00:02Z"
    assert (body["sitekey"], body["solve_time_ms"], body["interactive"]) == (SITEKEY, 2340, False)
    [item] = table_items()
    assert item["solve_time_ms"] == 2340 and item["token_age_ms"] == 3250 and item["interactive"] is False
    assert item["challenge_ts"] == "2026-11-21T10:00:02Z" and item["sitekey"] == SITEKEY
    metrics = emf_metrics(capsys.readouterr().out)
    assert (
        metrics["Verified"] == [1.0] and metrics["SolveTime"] == [2340.0] and metrics["TokenAge"] == [3250.0]
    )
    assert "ProviderLatency" in metrics


def test_swetrix_timestamp_in_milliseconds_gives_token_age(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("swetrix", SECRETS["swetrix"])
    provider_server.answer(200, success_body("swetrix"))
    invoke(load_event("swetrix", "fetch-json"))
    [item] = table_items()
    assert item["token_age_ms"] == 3250 and item["sitekey"] == "proj-1234567"
    assert "solve_time_ms" not in item  # Swetrix reports none: absent, not empty


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("captchacat", {"api_key": SECRETS["captchacat"]}),
        ("byebot", {"api_key": SECRETS["byebot"]}),
        ("swetrix", {"secret": SECRETS["swetrix"]}),
        ("ycaptcha", {"secretKey": SECRETS["ycaptcha"]}),
        ("friendlycaptcha", {"secret": SECRETS["friendlycaptcha"]}),
        ("turnstile", {"secret": SECRETS["turnstile"]}),
    ],
)
def test_provider_receives_its_protocol_on_the_wire(
    provider: str, expected: dict[str, str], make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler(provider, SECRETS[provider])
    provider_server.answer(200, success_body(provider))
    event = load_event(provider, "form-post")
    invoke(event)
    [call] = provider_server.received
    sent = json.loads(call["body"])
    assert call["headers"]["Content-Type"] == "application/json"
    assert sent.items() >= expected.items()
    assert event_token(event, provider) in sent.values()


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("scenario", "status", "code"),
    [
        ("missing-token", 400, "missing-input-response"),
        ("malformed-json", 400, "bad-request"),
        ("text-plain", 415, "unsupported-media-type"),
    ],
)
def test_cheap_checks_answer_without_any_outbound_call(
    provider: str,
    scenario: str,
    status: int,
    code: str,
    make_handler: HandlerFactory,
    provider_server: ScriptedProvider,
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoke = make_handler(provider, SECRETS[provider])
    response = invoke(load_event(provider, scenario))
    assert response["statusCode"] == status
    assert body_of(response)["error-codes"] == [code] and body_of(response)["success"] is False
    assert provider_server.received == [] and table_items() == []
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics["Rejected"] == [1.0]


def test_disallowed_origin_is_403(make_handler: HandlerFactory, provider_server: ScriptedProvider) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"], allowed_origins=frozenset({"https://www.example.com"}))
    response = invoke(load_event("byebot", "disallowed-origin"))
    assert response["statusCode"] == 403 and body_of(response)["error-codes"] == ["origin-not-allowed"]
    provider_server.answer(200, success_body("byebot"))
    assert invoke(load_event("byebot", "fetch-json", origin="https://WWW.example.com/"))["statusCode"] == 200
    assert len(provider_server.received) == 1


def test_oversized_body_is_413(make_handler: HandlerFactory, provider_server: ScriptedProvider) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    event = with_body(load_event("byebot", "fetch-json"), json.dumps({"byebot-token": "x" * 70_000}))
    response = invoke(event)
    assert response["statusCode"] == 413 and body_of(response)["error-codes"] == ["payload-too-large"]
    assert provider_server.received == []


def test_base64_multipart_post_is_read(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("swetrix", SECRETS["swetrix"])
    provider_server.answer(200, success_body("swetrix"))
    event = load_event("swetrix", "multipart")
    assert event["isBase64Encoded"] is True
    assert invoke(event)["statusCode"] == 200
    assert json.loads(provider_server.received[0]["body"])["token"] == event_token(
        load_event("swetrix", "fetch-json"), "swetrix"
    )


def test_generic_token_field_is_accepted(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("ycaptcha", SECRETS["ycaptcha"])
    provider_server.answer(200, {"success": True})
    assert invoke(load_event("ycaptcha", "fetch-generic-token"))["statusCode"] == 200


@pytest.mark.parametrize(
    ("provider", "status", "answer", "code", "http"),
    [
        ("byebot", 400, "", "invalid-input-response", 400),
        ("captchacat", 400, "", "invalid-input-response", 400),
        (
            "swetrix",
            400,
            {"statusCode": 400, "message": "Token already used", "error": "Bad Request"},
            "timeout-or-duplicate",
            400,
        ),
        ("ycaptcha", 200, {"success": False, "error": "Invalid token"}, "invalid-input-response", 400),
        ("ycaptcha", 200, {"success": False, "error": "Invalid secretKey"}, "invalid-input-secret", 500),
        (
            "friendlycaptcha",
            200,
            {"success": False, "errors": ["solution_timeout_or_duplicate"]},
            "timeout-or-duplicate",
            400,
        ),
        (
            "friendlycaptcha",
            401,
            {"success": False, "errors": ["secret_invalid"]},
            "invalid-input-secret",
            500,
        ),
        ("byebot", 503, "busy", "internal-error", 502),
        (
            "swetrix",
            429,
            {"statusCode": 429, "message": "Too many requests, please try again later"},
            "internal-error",
            502,
        ),
    ],
)
def test_provider_answers_map_to_the_contract(
    provider: str,
    status: int,
    answer: Any,
    code: str,
    http: int,
    make_handler: HandlerFactory,
    provider_server: ScriptedProvider,
) -> None:
    invoke = make_handler(provider, SECRETS[provider])
    provider_server.answer(status, answer)
    response = invoke(load_event(provider, "fetch-json"))
    assert response["statusCode"] == http
    assert body_of(response)["error-codes"] == [code] and body_of(response)["success"] is False
    [item] = table_items()
    assert item["error_codes"] == [code] and item["provider_status"] == status and item["success"] is False


def test_sitekey_mismatch_is_rejected(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"], expected_sitekey="ffffffffffffffffffff")
    provider_server.answer(200, success_body("byebot"))
    response = invoke(load_event("byebot", "fetch-json"))
    assert response["statusCode"] == 400 and body_of(response)["error-codes"] == ["sitekey-mismatch"]


def test_friendly_sends_expected_sitekey_to_the_provider(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("friendlycaptcha", SECRETS["friendlycaptcha"], expected_sitekey="FCMSITEKEY123")
    provider_server.answer(200, {"success": True})
    invoke(load_event("friendlycaptcha", "fetch-json"))
    assert json.loads(provider_server.received[0]["body"])["sitekey"] == "FCMSITEKEY123"


@pytest.mark.parametrize(
    ("provider", "secret", "code"),
    [
        pytest.param("byebot", None, "missing-input-secret", id="no-secret-in-secrets-manager"),
        pytest.param("swetrix", "", "missing-input-secret", id="empty-placeholder-from-the-stack"),
        # yCAPTCHA deletes the token before checking the secret: a misshapen one is never sent.
        pytest.param("ycaptcha", "REPLACE_ME", "invalid-input-secret", id="ycaptcha-misshapen-secret"),
    ],
)
def test_unusable_secret_answers_500_and_spends_no_token(
    provider: str,
    secret: str | None,
    code: str,
    make_handler: HandlerFactory,
    provider_server: ScriptedProvider,
) -> None:
    invoke = make_handler(provider, secret=secret)
    response = invoke(load_event(provider, "fetch-json"))
    assert response["statusCode"] == 500 and body_of(response)["error-codes"] == [code]
    assert provider_server.received == []
    [item] = table_items()
    assert "provider_status" not in item and item["error_codes"] == [code]


def test_provider_timeout_is_internal_error(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"], verify_timeout_seconds=0.5)
    provider_server.answer(200, success_body("byebot"), delay=1.0)
    response = invoke(load_event("byebot", "fetch-json"))
    assert response["statusCode"] == 502 and body_of(response)["error-codes"] == ["internal-error"]
    [item] = table_items()
    assert "provider_status" not in item and item["provider_latency_ms"] < 1000


def test_no_call_when_the_lambda_has_no_time_left(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"], remaining_ms=1_100)
    response = invoke(load_event("byebot", "fetch-json"))
    assert body_of(response)["error-codes"] == ["internal-error"] and provider_server.received == []


def test_open_policy_accepts_degraded_and_says_so(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = make_handler("friendlycaptcha", SECRETS["friendlycaptcha"], failure_policy=FailurePolicy.OPEN)
    provider_server.answer(500, "<html>upstream error</html>")
    response = invoke(load_event("friendlycaptcha", "fetch-json"))
    assert response["statusCode"] == 200
    body = body_of(response)
    assert body["success"] is True and body["degraded"] is True and body["error-codes"] == []
    [item] = table_items()
    assert item["degraded"] is True and item["success"] is True
    out = capsys.readouterr().out
    [line] = [r for r in log_records(out) if r.get("message") == "verification"]
    assert line["level"] == "WARNING" and line["outcome"] == "degraded"
    metrics = emf_metrics(out)
    assert metrics["DegradedAcceptance"] == [1.0] and metrics["ProviderError"] == [1.0]


def test_open_policy_still_rejects_token_errors(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("friendlycaptcha", SECRETS["friendlycaptcha"], failure_policy=FailurePolicy.OPEN)
    provider_server.answer(200, {"success": False, "errors": ["solution_invalid"]})
    response = invoke(load_event("friendlycaptcha", "fetch-json"))
    assert response["statusCode"] == 400 and body_of(response)["degraded"] is False


def test_plain_form_post_without_targets_gets_an_html_page(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(200, success_body("byebot"))
    ok = invoke(load_event("byebot", "form-post"))
    assert ok["statusCode"] == 200 and ok["headers"]["Content-Type"].startswith("text/html")
    assert "Thank you" in ok["body"]
    failed = invoke(load_event("byebot", "form-post-missing-token"))
    assert failed["statusCode"] == 400 and "missing-input-response" in failed["body"]
    assert failed["headers"]["Cache-Control"] == "no-store"


def test_plain_form_post_redirects_303(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler(
        "byebot",
        SECRETS["byebot"],
        success_redirect_url="https://www.example.com/thanks",
        failure_redirect_url="https://www.example.com/form?lang=en",
    )
    provider_server.answer(200, success_body("byebot"))
    ok = invoke(load_event("byebot", "form-post"))
    assert ok["statusCode"] == 303 and ok["headers"]["Location"] == "https://www.example.com/thanks"
    failed = invoke(load_event("byebot", "form-post-missing-token"))
    location = urlsplit(failed["headers"]["Location"])
    assert failed["statusCode"] == 303 and location.path == "/form"
    assert parse_qs(location.query) == {"lang": ["en"], "error": ["missing-input-response"]}


def form_with_targets(success: str, failure: str) -> dict[str, Any]:
    event = load_event("byebot", "form-post")
    extra = f"&success_url={success}&failure_url={failure}"
    return with_body(event, event_body(event) + extra, base64_encoded=True)


def test_form_named_targets_need_an_allowed_origin(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    event = form_with_targets("https://www.example.com/merci", "https://www.example.com/oops")
    anywhere = make_handler("byebot", SECRETS["byebot"], success_redirect_url="https://cfg.example.org/ok")
    provider_server.answer(200, success_body("byebot"))
    assert anywhere(event)["headers"]["Location"] == "https://cfg.example.org/ok"

    listed = make_handler("byebot", SECRETS["byebot"], allowed_origins=frozenset({"https://www.example.com"}))
    provider_server.answer(200, success_body("byebot"))
    assert listed(event)["headers"]["Location"] == "https://www.example.com/merci"
    evil = form_with_targets("https://evil.example.net/phish", "https://evil.example.net/phish")
    provider_server.answer(200, success_body("byebot"))
    assert listed(evil)["statusCode"] == 200  # not a redirect anywhere: the page itself


def test_failed_record_write_changes_nothing_for_the_user(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"], challenge_table_name="no-such-table")
    provider_server.answer(200, success_body("byebot"))
    response = invoke(load_event("byebot", "fetch-json"))
    assert response["statusCode"] == 200 and body_of(response)["success"] is True
    out = capsys.readouterr().out
    assert any(r.get("message") == "challenge record not written" for r in log_records(out))
    assert emf_metrics(out)["RecordWriteFailed"] == [1.0]


def test_secret_is_cached_across_invocations(
    aws: None, provider_server: ScriptedProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CaptchaVerifyTest")
    client = boto3.client("secretsmanager")
    client.create_secret(Name="cached", SecretString=json.dumps({"secret": SECRETS["byebot"]}))
    calls: list[str] = []
    client.meta.events.register("before-call.secrets-manager.GetSecretValue", lambda **_: calls.append("get"))
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    settings = Settings(
        challenge_table_name=TABLE,
        provider_secret_id="cached",
        submission_bus_name=BUS,
        idempotency_table_name=IDEMPOTENCY_TABLE,
        provider_verify_url=provider_server.url,
    )
    handler = build_handler(
        "byebot", settings=settings, secrets=SecretStore("cached", SecretsProvider(boto3_client=client))
    )
    event = load_event("byebot", "fetch-json")
    for n in range(3):
        provider_server.answer(200, success_body("byebot"))
        assert handler(with_token(event, "byebot", f"a{n}"), FakeContext())["statusCode"] == 200
    assert calls == ["get"]
    # A rejected secret is read afresh on the next request (rotation), not after the cache expires.
    provider_server.answer(403, "")
    handler(with_token(event, "byebot", "b0"), FakeContext())
    provider_server.answer(200, success_body("byebot"))
    handler(with_token(event, "byebot", "b1"), FakeContext())
    assert calls == ["get", "get"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_secret_raw_token_or_ip_anywhere(
    provider: str,
    make_handler: HandlerFactory,
    provider_server: ScriptedProvider,
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoke = make_handler(provider, SECRETS[provider])
    tokens = []
    responses = []
    answers = (
        (200, success_body(provider)),
        (500, "oops"),
        (400, {"message": "bad"}),
        (200, success_body(provider)),
    )
    for number, (status, answer) in enumerate(answers):
        provider_server.answer(status, answer)
        event = load_event(provider, "form-post" if number == 3 else "fetch-json")
        event = with_token(event, provider, f"t{number}")
        tokens.append(event_token(event, provider))
        event["requestContext"]["requestId"] = f"req-{number}"
        responses.append(invoke(event))
    seen = capsys.readouterr()
    idempotency = boto3.resource("dynamodb").Table(IDEMPOTENCY_TABLE).scan()["Items"]
    everything = "\n".join(
        [seen.out, seen.err, json.dumps([*table_items(), *idempotency], default=str), json.dumps(responses)]
    )
    assert len(table_items()) == 4
    for forbidden in (SECRETS[provider], *tokens, SOURCE_IP):
        assert forbidden not in everything


def test_unexpected_bug_answers_contract_shape_without_trace(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])

    def explode(*_: object) -> None:
        raise RuntimeError("boom at /var/task/secret/path")

    monkeypatch.setattr("captcha_verify.verification.decide", explode)
    provider_server.answer(200, success_body("byebot"))
    response = invoke(load_event("byebot", "fetch-json"))
    assert response["statusCode"] == 500 and body_of(response)["error-codes"] == ["internal-error"]
    assert "boom" not in response["body"] and "Traceback" not in response["body"]
