"""Pure pieces around the I/O edges: configuration, body parsing, negotiation, redirects, timeouts."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime

import pytest
from aws_lambda_powertools import Logger
from captcha_verify.aws_clients import bounded_config
from captcha_verify.checks import check_origin, extract_token
from captcha_verify.config import ConfigurationError, FailurePolicy, FriendlyApiVersion, Settings
from captcha_verify.outcome import ErrorCode, ProviderAnswer, RequestRejected
from captcha_verify.parsing import MAX_BODY_BYTES, decode_body, parse_fields, parse_media_type
from captcha_verify.policy import Decision, Outcome
from captcha_verify.providers import OutboundCall
from captcha_verify.records import Attempt, build_record
from captcha_verify.responses import html_response, prefers_html, redirect_target
from captcha_verify.telemetry import log_fields, report
from captcha_verify.transport import Transport, attempt_timeouts, call_budget
from support import ScriptedProvider

REQUIRED = {
    "CHALLENGE_TABLE_NAME": "table",
    "PROVIDER_SECRET_ID": "arn:secret",
    "SUBMISSION_BUS_NAME": "bus",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
}


def test_settings_from_env_defaults() -> None:
    settings = Settings.from_env(REQUIRED)
    assert settings.failure_policy is FailurePolicy.CLOSED
    assert settings.verify_timeout_seconds == 3.0 and settings.record_ttl_days == 30
    assert settings.allowed_origins == frozenset() and settings.provider_verify_url is None
    assert settings.friendly_api_version is FriendlyApiVersion.V1
    assert settings.idempotency_window_seconds == 600 and settings.honeypot_field == "_gotcha"
    assert settings.required_fields == () and settings.client_rate_limit_per_minute == 20


def test_settings_read_the_submission_and_abuse_names() -> None:
    settings = Settings.from_env(
        {
            **REQUIRED,
            "SUBMISSION_BUS_NAME": "forms",
            "IDEMPOTENCY_TABLE_NAME": "idem",
            "IDEMPOTENCY_WINDOW_SECONDS": "120",
            "HONEYPOT_FIELD": "website",
            "REQUIRED_FIELDS": " email, message,,email ",
            "CLIENT_RATE_LIMIT_PER_MINUTE": "0",
        }
    )
    assert (settings.submission_bus_name, settings.idempotency_table_name) == ("forms", "idem")
    assert settings.idempotency_window_seconds == 120 and settings.honeypot_field == "website"
    assert settings.required_fields == ("email", "message")
    assert settings.client_rate_limit_per_minute == 0


def test_aws_clients_are_time_bounded() -> None:
    config = bounded_config()
    assert config.connect_timeout <= 1 and config.read_timeout <= 2
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}


def test_settings_from_env_reads_every_name() -> None:
    settings = Settings.from_env(
        {
            **REQUIRED,
            "PROVIDER_VERIFY_URL": "https://swetrix.example.org/backend/v1/captcha/validate",
            "EXPECTED_SITEKEY": "proj-1234567",
            "ALLOWED_ORIGINS": " https://A.example.com/ , https://b.example.com",
            "FAILURE_POLICY": "OPEN",
            "VERIFY_TIMEOUT_SECONDS": "2.5",
            "RECORD_TTL_DAYS": "7",
            "SUCCESS_REDIRECT_URL": "https://a.example.com/thanks",
            "FAILURE_REDIRECT_URL": "https://a.example.com/oops",
            "FRIENDLY_API_VERSION": "v2",
        }
    )
    assert settings.allowed_origins == {"https://a.example.com", "https://b.example.com"}
    assert settings.failure_policy is FailurePolicy.OPEN and settings.verify_timeout_seconds == 2.5
    assert settings.record_ttl_days == 7 and settings.friendly_api_version is FriendlyApiVersion.V2
    assert settings.expected_sitekey == "proj-1234567"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"CHALLENGE_TABLE_NAME": ""}, "CHALLENGE_TABLE_NAME is required"),
        ({"SUBMISSION_BUS_NAME": " "}, "SUBMISSION_BUS_NAME is required"),
        ({"IDEMPOTENCY_TABLE_NAME": ""}, "IDEMPOTENCY_TABLE_NAME is required"),
        ({"FAILURE_POLICY": "sometimes"}, "FAILURE_POLICY must be one of: closed, open"),
        ({"VERIFY_TIMEOUT_SECONDS": "soon"}, "VERIFY_TIMEOUT_SECONDS must be a number"),
        ({"RECORD_TTL_DAYS": "0"}, "RECORD_TTL_DAYS must be at least 1"),
        ({"PROVIDER_VERIFY_URL": "ftp://x"}, "PROVIDER_VERIFY_URL must be an absolute http(s) URL"),
        ({"FRIENDLY_API_VERSION": "v3"}, "FRIENDLY_API_VERSION must be one of: v1, v2"),
        ({"CLIENT_RATE_LIMIT_PER_MINUTE": "-1"}, "CLIENT_RATE_LIMIT_PER_MINUTE must be at least 0"),
        ({"IDEMPOTENCY_WINDOW_SECONDS": "0"}, "IDEMPOTENCY_WINDOW_SECONDS must be at least 1"),
    ],
)
def test_bad_configuration_fails_loudly(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env({**REQUIRED, **overrides})


def rejected_code(call: object, *args: object) -> ErrorCode:
    with pytest.raises(RequestRejected) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.code


@pytest.mark.parametrize(
    ("content_type", "code"),
    [
        (None, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
        ("text/plain", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
        ("application/xml; charset=utf-8", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    ],
)
def test_unsupported_media_types(content_type: str | None, code: ErrorCode) -> None:
    assert rejected_code(parse_media_type, content_type) is code


def test_media_type_parameters_and_case() -> None:
    media = parse_media_type('Multipart/Form-Data; boundary="abc"')
    assert media.kind.value == "multipart/form-data" and media.params["boundary"] == "abc"


def test_base64_bodies_are_decoded_and_size_checked() -> None:
    assert decode_body(base64.b64encode(b"a=1").decode(), True) == b"a=1"
    assert rejected_code(decode_body, "not base64!!", True) is ErrorCode.BAD_REQUEST
    assert rejected_code(decode_body, "x" * (MAX_BODY_BYTES + 1), False) is ErrorCode.PAYLOAD_TOO_LARGE
    oversized = base64.b64encode(b"x" * (MAX_BODY_BYTES + 1)).decode()
    assert rejected_code(decode_body, oversized, True) is ErrorCode.PAYLOAD_TOO_LARGE
    assert decode_body(None, False) == b""


def test_form_fields_first_value_wins_and_blank_kept() -> None:
    fields = parse_fields(
        b"token=first&token=second&empty=", parse_media_type("application/x-www-form-urlencoded")
    )
    assert fields == {"token": "first", "empty": ""}


def test_form_body_must_be_utf8() -> None:
    media = parse_media_type("application/x-www-form-urlencoded")
    assert rejected_code(parse_fields, b"token=%ff%fe", media) is ErrorCode.BAD_REQUEST


@pytest.mark.parametrize("body", [b"[1, 2]", b'"token"', b"{broken", b""])
def test_json_body_must_be_an_object(body: bytes) -> None:
    assert rejected_code(parse_fields, body, parse_media_type("application/json")) is ErrorCode.BAD_REQUEST


def test_multipart_text_fields_with_charset_and_files_ignored() -> None:
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="byebot-token"\r\n\r\ntok-123\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="name"\r\n'
        b"Content-Type: text/plain; charset=latin-1\r\n\r\n"
        b"Ren\xe9\r\n"
        b'--XyZ\r\nContent-Disposition: form-data; name="cv"; filename="cv.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n%PDF-1.7\r\n--XyZ--\r\n"
    )
    fields = parse_fields(body, parse_media_type("multipart/form-data; boundary=XyZ"))
    assert fields == {"byebot-token": "tok-123", "name": "René"}


def test_multipart_without_boundary_is_bad_request() -> None:
    media = parse_media_type("multipart/form-data")
    assert rejected_code(parse_fields, b"--x\r\n", media) is ErrorCode.BAD_REQUEST


def test_token_extraction_prefers_widget_field_then_generic() -> None:
    assert extract_token({"byebot-token": " abc ", "token": "zzz"}, ("byebot-token",)) == "abc"
    assert extract_token({"byebot-token": "", "token": "zzz"}, ("byebot-token",)) == "zzz"
    assert (
        rejected_code(extract_token, {"token": "  "}, ("byebot-token",)) is ErrorCode.MISSING_INPUT_RESPONSE
    )
    assert rejected_code(extract_token, {"token": 42}, ()) is ErrorCode.INVALID_INPUT_RESPONSE


def test_origin_check() -> None:
    allowed = frozenset({"https://www.example.com"})
    check_origin(None, allowed)  # no Origin header: not a browser cross-site post, nothing to check
    check_origin("https://evil.example", frozenset())  # no list configured: any origin
    check_origin("HTTPS://WWW.EXAMPLE.COM/", allowed)
    assert rejected_code(check_origin, "null", allowed) is ErrorCode.ORIGIN_NOT_ALLOWED
    assert (
        rejected_code(check_origin, "https://www.example.com.evil.io", allowed)
        is ErrorCode.ORIGIN_NOT_ALLOWED
    )


@pytest.mark.parametrize(
    ("content_type", "accept", "html"),
    [
        ("application/x-www-form-urlencoded", "text/html,application/xhtml+xml,*/*;q=0.8", True),
        ("multipart/form-data; boundary=x", "text/html", True),
        ("application/x-www-form-urlencoded", "*/*", False),  # fetch's default
        ("application/x-www-form-urlencoded", None, False),
        ("application/x-www-form-urlencoded", "application/json, text/html;q=0.5", False),
        ("application/json", "text/html", False),  # JSON clients always get JSON
        ("application/x-www-form-urlencoded", "text/*;q=0.9, application/json;q=0.1", True),
    ],
)
def test_content_negotiation(content_type: str, accept: str | None, html: bool) -> None:
    assert prefers_html(content_type, accept) is html


def attempt(outcome: Outcome, code: ErrorCode | None = None, **answer: object) -> Attempt:
    return Attempt(
        provider="byebot",
        decision=Decision(outcome, code),
        answer=ProviderAnswer(**({"verdict": None, "reason": "r"} | answer)),  # type: ignore[arg-type]
        created_at=datetime(2026, 11, 21, 10, 0, 0, 7_000, tzinfo=UTC),
        request_id="req-1",
    )


def test_failure_redirect_keeps_the_page_query() -> None:
    settings = Settings(
        "t", "s", "b", "i", failure_redirect_url="https://example.com/form?lang=en&error=old#top"
    )
    target = redirect_target(attempt(Outcome.REJECTED, ErrorCode.TIMEOUT_OR_DUPLICATE), {}, settings)
    assert target == "https://example.com/form?lang=en&error=timeout-or-duplicate#top"


def test_no_redirect_configured_gives_escaped_page() -> None:
    response = html_response(attempt(Outcome.REJECTED, ErrorCode.BAD_REQUEST), None)
    assert response.status_code == 400 and "bad-request" in response.body and "<script" not in response.body


@pytest.mark.parametrize("target", ["javascript:alert(1)", "//evil.example/x", "https://evil.example/x"])
def test_form_targets_outside_allowed_origins_are_ignored(target: str) -> None:
    settings = Settings("t", "s", "b", "i", allowed_origins=frozenset({"https://www.example.com"}))
    assert redirect_target(attempt(Outcome.VERIFIED), {"success_url": target}, settings) is None


def test_record_leaves_absent_values_out_and_keys_sort_by_time() -> None:
    item = build_record(attempt(Outcome.VERIFIED), ttl_days=1)
    assert item["sk"] == "2026-11-21T10:00:00.007Z#req-1"
    assert item["expires_at"] == int(datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC).timestamp())
    assert {"solve_time_ms", "sitekey", "challenge_ts", "origin", "token_sha256"}.isdisjoint(item)


def test_log_line_field_by_field(capsys: pytest.CaptureFixture[str]) -> None:
    full = Attempt(
        provider="byebot",
        decision=Decision(Outcome.DEGRADED),
        answer=ProviderAnswer.unverifiable("provider timed out"),
        created_at=datetime(2026, 11, 21, tzinfo=UTC),
        request_id="req-9",
        reached_provider=True,
        token_sha256="ab" * 32,
        origin="https://www.example.com",
        provider_latency_ms=3001,
    )
    assert log_fields(full) == {
        "provider": "byebot",
        "outcome": "degraded",
        "success": True,
        "error_codes": [],
        "degraded": True,
        "reason": "provider timed out",
        "reached_provider": True,
        "provider_latency_ms": 3001,
        "token_sha256": "ab" * 32,
        "origin": "https://www.example.com",
        "request_id": "req-9",
    }
    logger = Logger(service="log-line-test", logger_handler=logging.StreamHandler())
    metrics_sink: list[tuple[str, float]] = []

    class Recorder:
        def add_metric(self, name: str, unit: object, value: float) -> None:
            metrics_sink.append((name, value))

    report(full, logger, Recorder())  # type: ignore[arg-type]
    [line] = [json.loads(text) for text in capsys.readouterr().err.splitlines() if text.startswith("{")]
    assert line["level"] == "WARNING" and line["message"] == "verification" and line["request_id"] == "req-9"
    assert metrics_sink == [("DegradedAcceptance", 1), ("ProviderError", 1), ("ProviderLatency", 3001)]


@pytest.mark.parametrize(("timeout", "remaining", "budget"), [(3, None, 3), (3, 10_000, 3), (3, 6_000, 1.5)])
def test_call_budget_never_passes_the_lambda_deadline(
    timeout: float, remaining: int | None, budget: float
) -> None:
    assert call_budget(timeout, remaining) == pytest.approx(budget)


@pytest.mark.parametrize("budget", [0.4, 3.0, 9.0])
def test_a_provider_may_answer_at_any_point_of_its_budget(budget: float) -> None:
    # The call as a whole is bounded by its deadline, so no single read timeout cuts the budget.
    connect, read = attempt_timeouts(budget)
    assert read == budget and 0 < connect <= min(1.0, budget)


def test_ycaptcha_500_is_retried_once_over_a_real_socket() -> None:
    server = ScriptedProvider()
    try:
        server.answer(500, {"success": False, "error": "Internal error, please retry"})
        server.answer(200, {"success": True})
        reply = Transport(frozenset({500})).send(OutboundCall(server.url, {"token": "t"}), budget=3.0)
        assert reply.status == 200 and len(server.received) == 2
        server.answer(503, "busy")
        server.answer(200, "never sent")
        once = Transport().send(OutboundCall(server.url, {"token": "t"}), budget=3.0)
        assert once.status == 503 and len(server.received) == 3  # other providers: a 5xx is final
    finally:
        server.close()
