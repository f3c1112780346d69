"""Every verify route end to end over real HTTP: SAM CLI's local API Gateway, one worker
process per function with its template environment, the provider sandbox, and the challenge
log table in moto. Each test obtains its own fresh tokens from the sandbox.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import requests
from captcha_local.sandbox import SANDBOX_CREDENTIALS
from captcha_verify.providers import PROVIDERS, REGISTRY
from support import REPO, REUSED_TOKEN_CODES, SITEVERIFY_KEYS
from support.local_harness import HTTP_TIMEOUT, Harness, sha256_hex

pytestmark = pytest.mark.slow


# An expired token: the same distinctions (Swetrix "Token expired", Friendly
# solution_timeout_or_duplicate; the engine and yCAPTCHA cannot tell).
EXPIRED = dict(REUSED_TOKEN_CODES)

# The provider's HTTP status on a token rejection (Friendly v1, yCAPTCHA and Turnstile reject with a 200).
REJECTION_STATUS = {
    "captchacat": 400,
    "byebot": 400,
    "swetrix": 400,
    "ycaptcha": 200,
    "friendlycaptcha": 200,
    "turnstile": 200,
}

# The metadata each sandbox provider reports on success (docs/providers/): ByeBot the full JSON
# body, Swetrix {challenge, timestamp, pid}, Turnstile its challenge_ts (and the page's hostname,
# none for a token issued without a page); Captcha Cat an empty 200, yCAPTCHA and Friendly v1
# nothing at all.
REPORTS_SITEKEY = {"byebot", "swetrix"}
REPORTS_CHALLENGE_TIME = {"byebot", "swetrix", "turnstile"}
REPORTS_SOLVE_TIME = {"byebot"}
REPORTS_INTERACTIVE = {"byebot"}

# Providers whose adapter retries a 503 once (Turnstile: its idempotency key makes a retry safe),
# so a 503 must answer both calls before the function gives up.
RETRIES_A_503 = {entry.name for entry in REGISTRY if 503 in entry.adapter.retry_statuses}

ISO_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
ISO_MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
RECORD_TTL_DAYS = 30  # the template's default RecordTtlDays

each_provider = pytest.mark.parametrize("provider", PROVIDERS)


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_siteverify(response: requests.Response, provider: str, status: int, codes: list[str]) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers.get("Cache-Control") == "no-store"
    body = response.json()
    assert set(body) == SITEVERIFY_KEYS
    assert body["provider"] == provider
    assert body["success"] is (status == 200)
    assert body["error-codes"] == codes
    assert body["degraded"] is False
    return body


def only_record(h: Harness, provider: str, token_sha256: str, count: int = 1) -> list[dict[str, Any]]:
    records = h.records(provider, token_sha256)
    assert len(records) == count, records
    return records


def calls_for(h: Harness, provider: str, token_sha256: str) -> list[dict[str, Any]]:
    return [call for call in h.verify_calls(provider) if call["token_sha256"] == token_sha256]


# --------------------------------------------------------------------------------------
# Success, reuse, expiry
# --------------------------------------------------------------------------------------


@each_provider
def test_fresh_token_verifies_with_a_siteverify_answer(h: Harness, provider: str) -> None:
    token = h.issue(provider)

    body = assert_siteverify(h.verify(token), provider, 200, [])

    creds = SANDBOX_CREDENTIALS[provider]
    assert body["sitekey"] == (creds.sitekey if provider in REPORTS_SITEKEY else None)
    assert body["hostname"] is None  # none reports one for a token solved on no page
    if provider in REPORTS_CHALLENGE_TIME:
        assert ISO_SECONDS.fullmatch(body["challenge_ts"])
        age = datetime.now(UTC) - parse_iso(body["challenge_ts"])
        assert timedelta(0) <= age < timedelta(seconds=30)
    else:
        assert body["challenge_ts"] is None
    assert body["solve_time_ms"] == (1500 if provider in REPORTS_SOLVE_TIME else None)
    assert body["interactive"] is (False if provider in REPORTS_INTERACTIVE else None)
    # Exactly one provider call, carrying this token.
    calls = calls_for(h, provider, token.sha256)
    assert [(call["status"], call["fault"]) for call in calls] == [(200, False)]


@each_provider
def test_same_token_twice_gets_the_first_answer_from_one_provider_call(h: Harness, provider: str) -> None:
    token = h.issue(provider)
    first = assert_siteverify(h.verify(token), provider, 200, [])

    # A double submit or a fetch retry: the idempotency record answers, the token is not spent twice.
    assert assert_siteverify(h.verify(token), provider, 200, []) == first

    (record,) = only_record(h, provider, token.sha256)
    assert (record["success"], record["error_codes"]) == (True, [])
    assert len(calls_for(h, provider, token.sha256)) == 1


@each_provider
def test_expired_token_is_rejected(h: Harness, provider: str) -> None:
    token = h.issue(provider, age_seconds=301)

    assert_siteverify(h.verify(token), provider, 400, [EXPIRED[provider]])

    (record,) = only_record(h, provider, token.sha256)
    assert record["success"] is False
    assert record["error_codes"] == [EXPIRED[provider]]
    assert record["provider_status"] == REJECTION_STATUS[provider]
    assert [call["status"] for call in calls_for(h, provider, token.sha256)] == [REJECTION_STATUS[provider]]


@pytest.mark.parametrize("provider", sorted(REPORTS_CHALLENGE_TIME))
def test_token_age_is_measured_from_the_providers_challenge_time(h: Harness, provider: str) -> None:
    token = h.issue(provider, age_seconds=60)

    body = assert_siteverify(h.verify(token), provider, 200, [])

    (record,) = only_record(h, provider, token.sha256)
    assert record["challenge_ts"] == body["challenge_ts"]
    # ByeBot reports whole seconds, so the age may read up to a second more; loopback is fast.
    assert 60_000 <= record["token_age_ms"] <= 75_000
    challenge = parse_iso(record["challenge_ts"])
    created = parse_iso(record["created_at"])
    assert abs((created - challenge).total_seconds() * 1000 - float(record["token_age_ms"])) < 1000


# --------------------------------------------------------------------------------------
# Cheap checks: no outbound call
# --------------------------------------------------------------------------------------


@each_provider
@pytest.mark.parametrize(
    "body", [{"name": "Ada"}, {"token": ""}, {"token": "   "}], ids=["absent", "empty", "blank"]
)
def test_missing_token_is_rejected_without_calling_the_provider(
    h: Harness, provider: str, body: dict[str, str]
) -> None:
    before = len(h.verify_calls(provider))

    assert_siteverify(h.post_json(provider, body), provider, 400, ["missing-input-response"])

    assert len(h.verify_calls(provider)) == before


@each_provider
def test_empty_widget_field_counts_as_missing(h: Harness, provider: str) -> None:
    token = h.issue(provider)  # only for the field name the widget fills
    before = len(h.verify_calls(provider))

    assert_siteverify(h.post_json(provider, {token.field: ""}), provider, 400, ["missing-input-response"])

    assert len(h.verify_calls(provider)) == before


@each_provider
def test_disallowed_origin_is_refused_before_the_provider_sees_the_token(h: Harness, provider: str) -> None:
    token = h.issue(provider)

    response = h.verify(token, origin="https://evil.example")

    assert_siteverify(response, provider, 403, ["origin-not-allowed"])
    assert calls_for(h, provider, token.sha256) == []
    assert h.records(provider, token.sha256) == []  # refused before the secret/provider stage
    # The token was never spent: the real site can still use it.
    assert_siteverify(h.verify(token), provider, 200, [])


# --------------------------------------------------------------------------------------
# Plain HTML form posts (no JavaScript): 303 to the site's pages
# --------------------------------------------------------------------------------------


@each_provider
def test_form_post_success_redirects_to_thanks_page(h: Harness, provider: str) -> None:
    token = h.issue(provider)

    response = h.post_form(provider, {"name": "Ada Lovelace", "message": "Hello", token.field: token.value})

    assert response.status_code == 303, response.text
    assert response.headers["Location"] == f"{h.site}/thanks.html"
    assert response.headers.get("Cache-Control") == "no-store"
    (record,) = only_record(h, provider, token.sha256)
    assert record["success"] is True


@each_provider
def test_form_post_failure_redirects_to_error_page_with_the_code(h: Harness, provider: str) -> None:
    token = h.issue(provider, age_seconds=301)
    fields = {"name": "Ada Lovelace", token.field: token.value}

    expired = h.post_form(provider, fields)
    missing = h.post_form(provider, {"name": "Ada Lovelace", token.field: ""})

    assert expired.status_code == 303
    assert expired.headers["Location"] == f"{h.site}/error.html?error={EXPIRED[provider]}"
    assert missing.status_code == 303
    assert missing.headers["Location"] == f"{h.site}/error.html?error=missing-input-response"
    # The redirect target page exists on the demo site.
    page = requests.get(expired.headers["Location"], timeout=HTTP_TIMEOUT)
    assert page.status_code == 200 and 'id="error-code"' in page.text


def test_fetch_style_accept_gets_json_even_for_a_form_body(h: Harness) -> None:
    token = h.issue("byebot")

    response = requests.post(
        h.verify_url("byebot"),
        data={token.field: token.value},
        headers={"Accept": "*/*", "Origin": h.site},
        allow_redirects=False,
        timeout=HTTP_TIMEOUT,
    )

    assert_siteverify(response, "byebot", 200, [])


# --------------------------------------------------------------------------------------
# The challenge log record
# --------------------------------------------------------------------------------------


@each_provider
def test_record_has_the_design_attributes(h: Harness, provider: str) -> None:
    token = h.issue(provider)
    started = datetime.now(UTC)
    assert_siteverify(h.verify(token), provider, 200, [])
    finished = datetime.now(UTC)

    (record,) = only_record(h, provider, token.sha256)

    assert record["provider"] == provider
    assert record["success"] is True
    assert record["error_codes"] == []
    assert record["degraded"] is False
    assert record["provider_status"] == 200
    assert isinstance(record["provider_latency_ms"], Decimal) and 0 <= record["provider_latency_ms"] < 5000
    assert SHA256_HEX.fullmatch(record["token_sha256"])
    assert record["token_sha256"] == sha256_hex(token.value)
    assert record["origin"] == h.site
    assert isinstance(record["request_id"], str) and record["request_id"]
    assert ISO_MILLIS.fullmatch(record["created_at"])
    created = parse_iso(record["created_at"])
    assert started - timedelta(seconds=1) <= created <= finished + timedelta(seconds=1)
    expected_expiry = (created + timedelta(days=RECORD_TTL_DAYS)).timestamp()
    assert (
        isinstance(record["expires_at"], Decimal) and abs(float(record["expires_at"]) - expected_expiry) <= 1
    )

    # Metadata: present where the provider reports it, absent (never empty) otherwise.
    if provider in REPORTS_CHALLENGE_TIME:
        assert ISO_SECONDS.fullmatch(record["challenge_ts"])
        assert 0 <= record["token_age_ms"] < 30_000
    else:
        assert "challenge_ts" not in record and "token_age_ms" not in record
    if provider in REPORTS_SOLVE_TIME:
        assert record["solve_time_ms"] == 1500
    else:
        assert "solve_time_ms" not in record
    if provider in REPORTS_SITEKEY:
        assert record["sitekey"] == SANDBOX_CREDENTIALS[provider].sitekey
    else:
        assert "sitekey" not in record
    if provider in REPORTS_INTERACTIVE:
        assert record["interactive"] is False
    else:
        assert "interactive" not in record

    # Nothing raw, nothing empty.
    assert all(value != "" for value in record.values())
    assert not any(token.value in str(value) for value in record.values())
    assert not any(SANDBOX_CREDENTIALS[provider].secret in str(value) for value in record.values())


@each_provider
def test_log_line_and_record_describe_the_same_attempt(h: Harness, provider: str) -> None:
    token = h.issue(provider)
    assert_siteverify(h.verify(token), provider, 200, [])

    (record,) = only_record(h, provider, token.sha256)
    (line,) = h.log.verification_lines(token.sha256)

    assert line["provider"] == provider
    assert line["outcome"] == "verified"
    assert line["level"] == "INFO"
    assert line["request_id"] == record["request_id"]
    assert line["provider_status"] == record["provider_status"]
    assert line.get("solve_time_ms") == record.get("solve_time_ms")


def test_each_request_gets_its_own_request_id(h: Harness) -> None:
    first, second = h.issue("byebot"), h.issue("byebot")
    assert_siteverify(h.verify(first), "byebot", 200, [])
    assert_siteverify(h.verify(second), "byebot", 200, [])

    (record_1,) = only_record(h, "byebot", first.sha256)
    (record_2,) = only_record(h, "byebot", second.sha256)

    assert record_1["request_id"] != record_2["request_id"]


def test_a_second_local_stack_starts_in_the_same_process_after_the_first_stopped() -> None:
    # In a child process: this module's own stack shares this process's moto state.
    script = (
        "from captcha_local.stack import LocalDeployment, Ports\n"
        "for _ in range(2):\n"
        "    stack = LocalDeployment(ports=Ports.free(), log=lambda function, line: None)\n"
        "    stack.start()\n"
        "    stack.stop()\n"
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")} | {
        "PYTHONPATH": os.pathsep.join(str(REPO / part) for part in ("tools", "functions/shared"))
    }

    child = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )

    assert child.returncode == 0, child.stderr[-600:]


# --------------------------------------------------------------------------------------
# Provider faults: "could not verify" is a 502 under the closed policy
# --------------------------------------------------------------------------------------


@each_provider
def test_provider_5xx_answers_internal_error(h: Harness, provider: str) -> None:
    token = h.issue(provider)
    attempts = 2 if provider in RETRIES_A_503 else 1
    h.inject_fault(provider, 503, "", count=attempts)

    assert_siteverify(h.verify(token), provider, 502, ["internal-error"])

    (record,) = only_record(h, provider, token.sha256)
    assert (record["success"], record["error_codes"], record["degraded"]) == (
        False,
        ["internal-error"],
        False,
    )
    assert record["provider_status"] == 503
    (line,) = h.log.verification_lines(token.sha256)
    assert (line["level"], line["outcome"]) == ("ERROR", "failed")
    calls = calls_for(h, provider, token.sha256)
    assert [(call["status"], call["fault"]) for call in calls] == [(503, True)] * attempts
    # The provider never judged the token, so it is still good.
    assert_siteverify(h.verify(token), provider, 200, [])


@each_provider
def test_provider_slower_than_the_timeout_answers_internal_error(h: Harness, provider: str) -> None:
    token = h.issue(provider)
    # VERIFY_TIMEOUT_SECONDS is 3, and the whole call ends at that deadline (a 2.5 s answer would
    # now be in time: the provider gets all of its budget).
    h.inject_fault(provider, 200, '{"success": true}', delay_ms=4000)

    assert_siteverify(h.verify(token), provider, 502, ["internal-error"])

    (record,) = only_record(h, provider, token.sha256)
    assert record["error_codes"] == ["internal-error"]
    assert "provider_status" not in record  # no answer arrived in time
    assert 2500 <= record["provider_latency_ms"] < 3800
    assert_siteverify(h.verify(token), provider, 200, [])


def test_ycaptcha_500_is_retried_once_since_the_token_is_restored(h: Harness) -> None:
    token = h.issue("ycaptcha")
    h.inject_fault("ycaptcha", 500, '{"success": false, "error": "Internal error, please retry"}')

    assert_siteverify(h.verify(token), "ycaptcha", 200, [])

    assert [(c["status"], c["fault"]) for c in calls_for(h, "ycaptcha", token.sha256)] == [
        (500, True),
        (200, False),
    ]


def test_turnstile_503_is_retried_once_and_the_retry_verifies_the_same_token(h: Harness) -> None:
    token = h.issue("turnstile")
    h.inject_fault("turnstile", 503, '{"success": false, "error-codes": ["internal-error"]}')

    assert_siteverify(h.verify(token), "turnstile", 200, [])

    assert [(c["status"], c["fault"]) for c in calls_for(h, "turnstile", token.sha256)] == [
        (503, True),
        (200, False),
    ]


# --------------------------------------------------------------------------------------
# CORS
# --------------------------------------------------------------------------------------


@each_provider
def test_cors_preflight_allows_the_site_origin(h: Harness, provider: str) -> None:
    response = requests.options(
        h.verify_url(provider),
        headers={
            "Origin": h.site,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=HTTP_TIMEOUT,
    )

    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == h.site
    assert "POST" in response.headers["Access-Control-Allow-Methods"].upper()
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()


def test_cors_preflight_does_not_allow_another_origin(h: Harness) -> None:
    response = requests.options(
        h.verify_url("byebot"),
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=HTTP_TIMEOUT,
    )

    assert response.headers.get("Access-Control-Allow-Origin") not in ("https://evil.example", "*")


def test_actual_response_carries_cors_header_for_the_site(h: Harness) -> None:
    token = h.issue("swetrix")

    response = h.verify(token)

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == h.site


# --------------------------------------------------------------------------------------
# No secret, no raw token in any log line or record (keep last: it also checks every
# token the tests above used)
# --------------------------------------------------------------------------------------


def test_no_secret_or_raw_token_in_function_logs_or_records(h: Harness) -> None:
    for provider in PROVIDERS:
        good = h.issue(provider)
        assert h.verify(good).status_code == 200
        assert h.verify(good).status_code == 200  # answered from the idempotency record
        faulty = h.issue(provider)
        h.inject_fault(provider, 503, '{"error": "unavailable"}', count=2 if provider in RETRIES_A_503 else 1)
        assert h.verify(faulty).status_code == 502
        assert h.verify(h.issue(provider), origin="https://evil.example").status_code == 403
        posted = h.issue(provider)
        assert h.post_form(provider, {posted.field: posted.value}).status_code == 303
        assert len(h.log.verification_lines(good.sha256)) == 1

    lines = [line for _, line in h.log.snapshot()]
    assert len(lines) > 5 * 5
    secrets = [creds.secret for creds in SANDBOX_CREDENTIALS.values()]
    tokens = {token.value for token in h.tokens}
    assert len(tokens) >= 5 * 5
    # As sent (JSON), and as a form encoder writes them (Friendly v1 tokens hold '+' and '/').
    needles = {*secrets, *tokens, *(quote_plus(t) for t in tokens), *(quote(t, safe="") for t in tokens)}
    leaks = [(needle[:12] + "…", line[:120]) for line in lines for needle in needles if needle in line]
    assert leaks == []

    records = [record for provider in PROVIDERS for record in h.records(provider)]
    assert len(records) >= 5 * 3
    stored = [str(value) for record in records for value in record.values()]
    assert not [needle for needle in needles if any(needle in value for value in stored)]
    # Every record names its token by digest only.
    assert all(SHA256_HEX.fullmatch(record["token_sha256"]) for record in records)


def test_the_client_rate_limit_is_counted_not_skipped(h: Harness) -> None:
    token = h.issue("byebot")
    assert h.verify(token).status_code == 200
    assert len(h.log.verification_lines(token.sha256)) == 1

    lines = [line for _, line in h.log.snapshot()]
    assert lines and [line for line in lines if "rate limit not checked" in line] == []
    # Counted in the template's table, under a keyed hash of the address, never the address itself.
    counters = h.stack.aws_client("dynamodb").scan(TableName=h.stack.rate_limit_table_name)["Items"]
    assert counters and int(counters[0]["hits"]["N"]) >= 1
    assert "127.0.0.1" not in str(counters)
