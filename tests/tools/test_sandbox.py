"""The local provider sandbox answers like the real providers described in docs/providers/."""

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import flask
import pytest
from captcha_local.sandbox import (
    PROVIDERS,
    SANDBOX_CREDENTIALS,
    Credentials,
    create_app,
    parse_args,
)
from captcha_verify.providers import REGISTRY
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

CREDS = SANDBOX_CREDENTIALS
SWETRIX_URL = "/swetrix/v1/captcha/validate"
YCAPTCHA_URL = "/ycaptcha/api/v0/captcha/siteverify"
FRIENDLY_V1_URL = "/friendlycaptcha/api/v1/siteverify"
FRIENDLY_V2_URL = "/friendlycaptcha/api/v2/captcha/siteverify"
TURNSTILE_URL = "/turnstile/turnstile/v0/siteverify"
START = 1_800_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(clock: FakeClock) -> flask.Flask:
    return create_app(clock=clock)


@pytest.fixture
def client(app: flask.Flask) -> Iterator[FlaskClient]:
    with app.test_client() as test_client:
        yield test_client


def issue(client: FlaskClient, provider: str, **fields: Any) -> str:
    response = client.post(f"/{provider}/issue", json={"sitekey": CREDS[provider].sitekey, **fields})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["token"]


def engine_verify(client: FlaskClient, brand: str, token: str, api_key: str | None = None) -> TestResponse:
    key = CREDS[brand].secret if api_key is None else api_key
    return client.post(f"/{brand}/validate_token", json={"api_key": key, "token": token})


def swetrix_verify(client: FlaskClient, token: str, secret: str | None = None) -> TestResponse:
    return client.post(SWETRIX_URL, json={"token": token, "secret": secret or CREDS["swetrix"].secret})


def ycaptcha_verify(client: FlaskClient, token: str, secret: str | None = None) -> TestResponse:
    return client.post(YCAPTCHA_URL, json={"token": token, "secretKey": secret or CREDS["ycaptcha"].secret})


def friendly_v1_verify(client: FlaskClient, solution: str, **extra: str) -> TestResponse:
    return client.post(
        FRIENDLY_V1_URL, json={"solution": solution, "secret": CREDS["friendlycaptcha"].secret, **extra}
    )


def friendly_v2_verify(
    client: FlaskClient, response: Any, api_key: str | None = None, **extra: Any
) -> TestResponse:
    key = CREDS["friendlycaptcha"].secret if api_key is None else api_key
    return client.post(FRIENDLY_V2_URL, json={"response": response, **extra}, headers={"X-API-Key": key})


def turnstile_verify(
    client: FlaskClient, token: str, secret: str | None = None, **extra: Any
) -> TestResponse:
    fields = {"secret": CREDS["turnstile"].secret if secret is None else secret, "response": token, **extra}
    return client.post(TURNSTILE_URL, json=fields)


# ---------------------------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------------------------


def test_sandbox_credentials_have_the_providers_real_shapes() -> None:
    assert set(CREDS) == set(PROVIDERS)
    assert re.fullmatch(r"[0-9a-f]{20}", CREDS["captchacat"].sitekey)
    assert re.fullmatch(r"[0-9a-f]{20}", CREDS["byebot"].sitekey)
    assert CREDS["captchacat"].sitekey != CREDS["byebot"].sitekey
    assert re.fullmatch(r"[a-zA-Z0-9-]{12}", CREDS["swetrix"].sitekey)
    assert re.fullmatch(r"pk_[A-Za-z0-9]{32}", CREDS["ycaptcha"].sitekey)
    assert re.fullmatch(r"sk_[A-Za-z0-9]{32}", CREDS["ycaptcha"].secret)
    assert CREDS["friendlycaptcha"].sitekey.startswith("FC")
    assert all("sandbox" in creds.secret for creds in CREDS.values())


def test_create_app_refuses_incomplete_credentials() -> None:
    with pytest.raises(ValueError, match="ycaptcha"):
        create_app({name: creds for name, creds in CREDS.items() if name != "ycaptcha"})


def test_custom_credentials_are_enforced() -> None:
    custom = {**CREDS, "byebot": Credentials(secret="sandbox-other", sitekey="0123456789abcdef0123")}
    client = create_app(custom).test_client()
    token = client.post("/byebot/issue", json={"sitekey": "0123456789abcdef0123"}).get_json()["token"]
    assert engine_verify(client, "byebot", token).status_code == 403
    assert engine_verify(client, "byebot", token, api_key="sandbox-other").status_code == 200


# ---------------------------------------------------------------------------------------------
# Issuing
# ---------------------------------------------------------------------------------------------

FIELDS = {provider.name: provider.token_fields[0] for provider in REGISTRY}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_issue_returns_token_and_widget_field_with_cors(client: FlaskClient, provider: str) -> None:
    response = client.post(f"/{provider}/issue", json={"sitekey": CREDS[provider].sitekey})
    assert response.status_code == 200
    body = response.get_json()
    assert body["field"] == FIELDS[provider]
    assert isinstance(body["token"], str) and len(body["token"]) >= 32
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_issue_answers_cors_preflight(client: FlaskClient, provider: str) -> None:
    response = client.options(
        f"/{provider}/issue",
        headers={"Origin": "http://127.0.0.1:8000", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_issue_rejects_another_sitekey(client: FlaskClient, provider: str) -> None:
    other = CREDS["byebot" if provider == "captchacat" else "captchacat"].sitekey
    response = client.post(f"/{provider}/issue", json={"sitekey": other})
    assert response.status_code == 400
    assert "sitekey" in response.get_json()["error"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_issue_requires_a_sitekey(client: FlaskClient) -> None:
    response = client.post("/ycaptcha/issue", json={})
    assert response.status_code == 400
    assert "sitekey" in response.get_json()["error"]


def test_issue_accepts_form_fields(client: FlaskClient) -> None:
    response = client.post(
        "/byebot/issue",
        data={"sitekey": CREDS["byebot"].sitekey, "solve_time_ms": "2340", "interactive": "true"},
    )
    assert response.status_code == 200
    verified = engine_verify(client, "byebot", response.get_json()["token"]).get_json()
    assert verified["solve_time_ms"] == 2340
    assert verified["interactive_solved"] is True


@pytest.mark.parametrize(
    ("provider", "fields", "message"),
    [
        ("byebot", {"shape": "legacy"}, "shape"),
        ("swetrix", {"shape": "ancient"}, "shape"),
        ("swetrix", {"version": "v2"}, "version"),
        ("friendlycaptcha", {"version": "v3"}, "version"),
        ("byebot", {"solve_time_ms": "fast"}, "solve_time_ms"),
        ("byebot", {"solve_time_ms": True}, "solve_time_ms"),
        ("byebot", {"age_seconds": -1}, "age_seconds"),
        ("byebot", {"interactive": "maybe"}, "interactive"),
    ],
)
def test_issue_rejects_bad_options(client: FlaskClient, provider: str, fields: dict, message: str) -> None:
    response = client.post(f"/{provider}/issue", json={"sitekey": CREDS[provider].sitekey, **fields})
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_issue_unknown_provider_is_404(client: FlaskClient) -> None:
    response = client.post("/recaptcha/issue", json={"sitekey": "x"})
    assert response.status_code == 404
    assert "recaptcha" in response.get_json()["error"]


def test_issue_rejects_unparseable_json(client: FlaskClient) -> None:
    response = client.post("/swetrix/issue", data="{", content_type="application/json")
    assert response.status_code == 400


def test_issued_tokens_are_unique(client: FlaskClient) -> None:
    tokens = {issue(client, "ycaptcha") for _ in range(20)}
    assert len(tokens) == 20


# ---------------------------------------------------------------------------------------------
# Captcha Cat and ByeBot
# ---------------------------------------------------------------------------------------------


def test_byebot_success_body(client: FlaskClient) -> None:
    token = issue(client, "byebot", solve_time_ms=2340, interactive=True)
    response = engine_verify(client, "byebot", token)
    assert response.status_code == 200
    assert response.get_json() == {
        "success": True,
        "sitekey": CREDS["byebot"].sitekey,
        "challenged_at": int(START),
        "solve_time_ms": 2340,
        "interactive_solved": True,
    }


def test_byebot_defaults_to_a_non_interactive_solve(client: FlaskClient) -> None:
    body = engine_verify(client, "byebot", issue(client, "byebot")).get_json()
    assert body["interactive_solved"] is False
    assert isinstance(body["solve_time_ms"], int) and body["solve_time_ms"] > 0


def test_captchacat_success_is_an_empty_200(client: FlaskClient) -> None:
    response = engine_verify(client, "captchacat", issue(client, "captchacat"))
    assert response.status_code == 200
    assert response.data == b""


@pytest.mark.parametrize("brand", ["captchacat", "byebot"])
def test_engine_second_use_is_a_bare_400(client: FlaskClient, brand: str) -> None:
    token = issue(client, brand)
    assert engine_verify(client, brand, token).status_code == 200
    second = engine_verify(client, brand, token)
    assert second.status_code == 400
    assert second.data == b""


@pytest.mark.parametrize("brand", ["captchacat", "byebot"])
def test_engine_expired_token_is_a_bare_400(client: FlaskClient, clock: FakeClock, brand: str) -> None:
    backdated = issue(client, brand, age_seconds=301)
    assert engine_verify(client, brand, backdated).status_code == 400
    aged = issue(client, brand)
    clock.advance(301)
    response = engine_verify(client, brand, aged)
    assert response.status_code == 400
    assert response.data == b""


def test_engine_token_is_valid_until_300_seconds(client: FlaskClient, clock: FakeClock) -> None:
    token = issue(client, "byebot")
    clock.advance(300)
    assert engine_verify(client, "byebot", token).status_code == 200


@pytest.mark.parametrize("brand", ["captchacat", "byebot"])
def test_engine_wrong_api_key_is_403_and_keeps_the_token(client: FlaskClient, brand: str) -> None:
    token = issue(client, brand)
    wrong = engine_verify(client, brand, token, api_key="sandbox-wrong")
    assert wrong.status_code == 403
    assert wrong.data == b""
    assert engine_verify(client, brand, token).status_code == 200


@pytest.mark.parametrize("brand", ["captchacat", "byebot"])
def test_engine_unknown_and_missing_tokens_are_400(client: FlaskClient, brand: str) -> None:
    assert engine_verify(client, brand, "not-a-token").status_code == 400
    missing = client.post(f"/{brand}/validate_token", json={"api_key": CREDS[brand].secret})
    assert missing.status_code == 400
    assert missing.data == b""


def test_concurrent_verifications_consume_a_token_once(app: flask.Flask, client: FlaskClient) -> None:
    token = issue(client, "swetrix")

    def verify(_: int) -> int:
        return swetrix_verify(app.test_client(), token).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(verify, range(32)))
    assert statuses.count(200) == 1
    assert statuses.count(400) == 31


def test_engine_brands_do_not_share_tokens(client: FlaskClient) -> None:
    token = issue(client, "captchacat")
    assert engine_verify(client, "byebot", token, api_key=CREDS["byebot"].secret).status_code == 400
    assert engine_verify(client, "captchacat", token).status_code == 200


def test_engine_requires_json(client: FlaskClient) -> None:
    token = issue(client, "byebot")
    form = client.post("/byebot/validate_token", data={"api_key": CREDS["byebot"].secret, "token": token})
    assert form.status_code == 400
    assert engine_verify(client, "byebot", token).status_code == 200


def test_byebot_reports_the_tokens_sitekey(client: FlaskClient) -> None:
    # The sitekey the adapter binds against comes only from this body.
    body = engine_verify(client, "byebot", issue(client, "byebot")).get_json()
    assert body["sitekey"] == CREDS["byebot"].sitekey
    assert body["sitekey"] != CREDS["captchacat"].sitekey


# ---------------------------------------------------------------------------------------------
# Swetrix
# ---------------------------------------------------------------------------------------------


def swetrix_error(message: Any, status: int = 400, error: str = "Bad Request") -> dict:
    return {"statusCode": status, "message": message, "error": error}


def test_swetrix_success_current_shape(client: FlaskClient) -> None:
    response = swetrix_verify(client, issue(client, "swetrix"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True
    assert set(body["data"]) == {"challenge", "timestamp", "pid"}
    assert re.fullmatch(r"[0-9a-f]{64}", body["data"]["challenge"])
    assert body["data"]["timestamp"] == int(START * 1000)
    assert body["data"]["pid"] == CREDS["swetrix"].sitekey


def test_swetrix_success_legacy_shape(client: FlaskClient) -> None:
    token = issue(client, "swetrix", shape="legacy", interactive=True, age_seconds=10)
    body = swetrix_verify(client, token).get_json()
    assert body["success"] is True
    assert set(body["data"]) == {"hash", "timestamp", "autoVerified", "pid"}
    assert re.fullmatch(r"[0-9a-f]{64}", body["data"]["hash"])
    assert body["data"]["timestamp"] == int((START - 10) * 1000)
    assert body["data"]["autoVerified"] is False
    assert body["data"]["pid"] == CREDS["swetrix"].sitekey


def test_swetrix_accepts_form_encoding(client: FlaskClient) -> None:
    token = issue(client, "swetrix")
    response = client.post(SWETRIX_URL, data={"token": token, "secret": CREDS["swetrix"].secret})
    assert response.status_code == 200
    assert response.get_json()["success"] is True


def test_swetrix_second_use(client: FlaskClient) -> None:
    token = issue(client, "swetrix")
    assert swetrix_verify(client, token).status_code == 200
    second = swetrix_verify(client, token)
    assert second.status_code == 400
    assert second.get_json() == swetrix_error("Token already used")


def test_swetrix_expired(client: FlaskClient, clock: FakeClock) -> None:
    backdated = swetrix_verify(client, issue(client, "swetrix", age_seconds=301))
    assert backdated.status_code == 400
    assert backdated.get_json() == swetrix_error("Token expired")
    token = issue(client, "swetrix")
    clock.advance(301)
    assert swetrix_verify(client, token).get_json() == swetrix_error("Token expired")


def test_swetrix_wrong_secret_looks_like_a_bad_token_and_keeps_it(client: FlaskClient) -> None:
    token = issue(client, "swetrix")
    wrong = swetrix_verify(client, token, secret="sandbox-wrong-secret")
    assert wrong.status_code == 400
    assert wrong.get_json() == swetrix_error("Could not decrypt token")
    assert swetrix_verify(client, token).status_code == 200


def test_swetrix_bogus_token(client: FlaskClient) -> None:
    response = swetrix_verify(client, "bogus")
    assert response.status_code == 400
    assert response.get_json() == swetrix_error("Could not decrypt token")


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"secret": CREDS["swetrix"].secret}, "token"),
        ({"token": "", "secret": CREDS["swetrix"].secret}, "token"),
        ({"token": "abc"}, "secret"),
        ({"token": 12, "secret": CREDS["swetrix"].secret}, "token"),
    ],
)
def test_swetrix_missing_field_message_is_an_array(client: FlaskClient, body: dict, missing: str) -> None:
    response = client.post(SWETRIX_URL, json=body)
    assert response.status_code == 400
    payload = response.get_json()
    assert payload["statusCode"] == 400 and payload["error"] == "Bad Request"
    assert isinstance(payload["message"], list)
    assert payload["message"] and all(missing in message for message in payload["message"])


def test_swetrix_test_secrets(client: FlaskClient) -> None:
    passed = swetrix_verify(client, "anything", secret="PASS000000000000000000")
    assert passed.status_code == 200
    assert passed.get_json()["success"] is True
    assert re.fullmatch(r"[0-9a-f]{64}", passed.get_json()["data"]["challenge"])
    failed = swetrix_verify(client, "anything", secret="FAIL000000000000000000")
    assert failed.get_json() == swetrix_error("Could not decrypt token")
    used = swetrix_verify(client, "anything", secret="USED000000000000000000")
    assert used.get_json() == swetrix_error("Token already used")


def test_swetrix_pass_secret_does_not_consume_a_real_token(client: FlaskClient) -> None:
    token = issue(client, "swetrix")
    assert swetrix_verify(client, token, secret="PASS000000000000000000").status_code == 200
    assert swetrix_verify(client, token).status_code == 200


def test_swetrix_rate_limit(client: FlaskClient, clock: FakeClock) -> None:
    for _ in range(120):
        assert swetrix_verify(client, "bogus").status_code == 400
    limited = swetrix_verify(client, "bogus")
    assert limited.status_code == 429
    assert limited.get_json() == swetrix_error(
        "Too many requests, please try again later", 429, "Too Many Requests"
    )
    clock.advance(60)
    assert swetrix_verify(client, "bogus").status_code == 400


# ---------------------------------------------------------------------------------------------
# yCAPTCHA
# ---------------------------------------------------------------------------------------------


def test_ycaptcha_token_shape(client: FlaskClient) -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{64}", issue(client, "ycaptcha"))


def test_ycaptcha_success_has_no_metadata(client: FlaskClient) -> None:
    response = ycaptcha_verify(client, issue(client, "ycaptcha"))
    assert response.status_code == 200
    assert response.get_json() == {"success": True}


def test_ycaptcha_second_use(client: FlaskClient) -> None:
    token = issue(client, "ycaptcha")
    assert ycaptcha_verify(client, token).get_json() == {"success": True}
    second = ycaptcha_verify(client, token)
    assert second.status_code == 200
    assert second.get_json() == {"success": False, "error": "Invalid token"}


def test_ycaptcha_expired(client: FlaskClient, clock: FakeClock) -> None:
    backdated = ycaptcha_verify(client, issue(client, "ycaptcha", age_seconds=301))
    assert backdated.get_json() == {"success": False, "error": "Invalid token"}
    token = issue(client, "ycaptcha")
    clock.advance(301)
    assert ycaptcha_verify(client, token).get_json() == {"success": False, "error": "Invalid token"}


def test_ycaptcha_wrong_secret_burns_the_token(client: FlaskClient) -> None:
    token = issue(client, "ycaptcha")
    wrong = ycaptcha_verify(client, token, secret="sk_" + "x" * 32)
    assert wrong.status_code == 200
    assert wrong.get_json() == {"success": False, "error": "Invalid secretKey"}
    assert ycaptcha_verify(client, token).get_json() == {"success": False, "error": "Invalid token"}


def test_ycaptcha_unknown_token_with_wrong_secret_is_invalid_token(client: FlaskClient) -> None:
    response = ycaptcha_verify(client, "x" * 64, secret="sk_" + "x" * 32)
    assert response.get_json() == {"success": False, "error": "Invalid token"}


@pytest.mark.parametrize(
    "body",
    [{"token": "abc"}, {"secretKey": CREDS["ycaptcha"].secret}, {"token": "", "secretKey": "sk_x"}, {}],
)
def test_ycaptcha_missing_fields(client: FlaskClient, body: dict) -> None:
    response = client.post(YCAPTCHA_URL, json=body)
    assert response.status_code == 400
    assert response.get_json() == {"success": False, "error": "Missing token or secretKey"}


def test_ycaptcha_form_encoding_reads_as_missing_and_keeps_the_token(client: FlaskClient) -> None:
    token = issue(client, "ycaptcha")
    form = client.post(YCAPTCHA_URL, data={"token": token, "secretKey": CREDS["ycaptcha"].secret})
    assert form.status_code == 400
    assert form.get_json() == {"success": False, "error": "Missing token or secretKey"}
    assert ycaptcha_verify(client, token).get_json() == {"success": True}


def test_ycaptcha_legacy_failures_are_bare(client: FlaskClient) -> None:
    burned = issue(client, "ycaptcha", shape="legacy")
    assert ycaptcha_verify(client, burned, secret="sk_" + "x" * 32).get_json() == {"success": False}
    expired = issue(client, "ycaptcha", shape="legacy", age_seconds=301)
    assert ycaptcha_verify(client, expired).get_json() == {"success": False}
    fresh = issue(client, "ycaptcha", shape="legacy")
    assert ycaptcha_verify(client, fresh).get_json() == {"success": True}


def test_ycaptcha_rate_limit(client: FlaskClient, clock: FakeClock) -> None:
    for _ in range(100):
        assert ycaptcha_verify(client, "bogus").status_code == 200
    clock.advance(15)
    limited = ycaptcha_verify(client, "bogus")
    assert limited.status_code == 429
    assert limited.get_json() == {"error": "Too many requests", "retryAfter": 45}
    assert limited.headers["Retry-After"] == "45"
    clock.advance(45)
    assert ycaptcha_verify(client, "bogus").status_code == 200


# ---------------------------------------------------------------------------------------------
# Friendly Captcha v1
# ---------------------------------------------------------------------------------------------


def test_friendly_v1_solution_has_four_parts(client: FlaskClient) -> None:
    assert len(issue(client, "friendlycaptcha").split(".")) == 4


def test_friendly_v1_success_json_and_form(client: FlaskClient) -> None:
    response = friendly_v1_verify(client, issue(client, "friendlycaptcha"))
    assert response.status_code == 200
    assert response.get_json() == {"success": True}
    form = client.post(
        FRIENDLY_V1_URL,
        data={"solution": issue(client, "friendlycaptcha"), "secret": CREDS["friendlycaptcha"].secret},
    )
    assert form.status_code == 200
    assert form.get_json() == {"success": True}


def test_friendly_v1_duplicate(client: FlaskClient) -> None:
    solution = issue(client, "friendlycaptcha")
    assert friendly_v1_verify(client, solution).get_json()["success"] is True
    second = friendly_v1_verify(client, solution)
    assert second.status_code == 200
    assert second.get_json()["success"] is False
    assert second.get_json()["errors"] == ["solution_timeout_or_duplicate"]


def test_friendly_v1_expired(client: FlaskClient, clock: FakeClock) -> None:
    backdated = friendly_v1_verify(client, issue(client, "friendlycaptcha", age_seconds=301))
    assert backdated.status_code == 200
    assert backdated.get_json()["errors"] == ["solution_timeout_or_duplicate"]
    solution = issue(client, "friendlycaptcha")
    clock.advance(301)
    assert friendly_v1_verify(client, solution).get_json()["errors"] == ["solution_timeout_or_duplicate"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"solution": "a.b.c.d"}, 400, "secret_missing"),
        ({"solution": "a.b.c.d", "secret": "sandbox-wrong"}, 401, "secret_invalid"),
        ({"secret": CREDS["friendlycaptcha"].secret}, 400, "solution_missing"),
        ({"solution": ["a"], "secret": CREDS["friendlycaptcha"].secret}, 400, "bad_request"),
        ({"solution": ".UNSTARTED", "secret": CREDS["friendlycaptcha"].secret}, 200, "solution_invalid"),
        ({"solution": "a.b.c.d", "secret": CREDS["friendlycaptcha"].secret}, 200, "solution_invalid"),
    ],
)
def test_friendly_v1_error_codes(client: FlaskClient, body: dict, status: int, code: str) -> None:
    response = client.post(FRIENDLY_V1_URL, json=body)
    assert response.status_code == status
    payload = response.get_json()
    assert payload["success"] is False
    assert payload["errors"] == [code]
    assert isinstance(payload["details"], str)


def test_friendly_v1_unparseable_json_is_bad_request(client: FlaskClient) -> None:
    response = client.post(FRIENDLY_V1_URL, data="{oops", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["errors"] == ["bad_request"]


def test_friendly_v1_wrong_secret_keeps_the_solution(client: FlaskClient) -> None:
    solution = issue(client, "friendlycaptcha")
    wrong = client.post(FRIENDLY_V1_URL, json={"solution": solution, "secret": "sandbox-wrong"})
    assert wrong.status_code == 401
    assert friendly_v1_verify(client, solution).get_json() == {"success": True}


def test_friendly_v1_sitekey_binding(client: FlaskClient) -> None:
    solution = issue(client, "friendlycaptcha")
    mismatch = friendly_v1_verify(client, solution, sitekey="FCMOTHERSITE00000")
    assert mismatch.status_code == 200
    assert mismatch.get_json()["errors"] == ["solution_invalid"]
    match = friendly_v1_verify(client, solution, sitekey=CREDS["friendlycaptcha"].sitekey)
    assert match.get_json() == {"success": True}


def test_friendly_v1_rejects_a_v2_response(client: FlaskClient) -> None:
    response = friendly_v1_verify(client, issue(client, "friendlycaptcha", version="v2"))
    assert response.get_json()["errors"] == ["solution_invalid"]


# ---------------------------------------------------------------------------------------------
# Friendly Captcha v2
# ---------------------------------------------------------------------------------------------


def test_friendly_v2_issue_names_the_v2_field(client: FlaskClient) -> None:
    response = client.post(
        "/friendlycaptcha/issue", json={"sitekey": CREDS["friendlycaptcha"].sitekey, "version": "v2"}
    )
    assert response.get_json()["field"] == "frc-captcha-response"


def test_friendly_v2_success_body(client: FlaskClient) -> None:
    token = issue(client, "friendlycaptcha", version="v2", origin="http://127.0.0.1:8000")
    response = friendly_v2_verify(client, token, sitekey=CREDS["friendlycaptcha"].sitekey)
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True
    assert re.fullmatch(r"ev_\w+", body["data"]["event_id"])
    assert body["data"]["risk_intelligence"] is None
    challenge = body["data"]["challenge"]
    assert challenge["origin"] == "http://127.0.0.1:8000"
    assert datetime.fromisoformat(challenge["timestamp"]).timestamp() == START


def test_friendly_v2_origin_defaults_to_the_issue_requests_origin(client: FlaskClient) -> None:
    response = client.post(
        "/friendlycaptcha/issue",
        json={"sitekey": CREDS["friendlycaptcha"].sitekey, "version": "v2"},
        headers={"Origin": "http://localhost:8080"},
    )
    body = friendly_v2_verify(client, response.get_json()["token"]).get_json()
    assert body["data"]["challenge"]["origin"] == "http://localhost:8080"


def test_friendly_v2_origin_is_null_when_unknown(client: FlaskClient) -> None:
    body = friendly_v2_verify(client, issue(client, "friendlycaptcha", version="v2")).get_json()
    assert body["data"]["challenge"]["origin"] is None


def v2_error(response: TestResponse) -> str:
    body = response.get_json()
    assert body["success"] is False
    assert isinstance(body["error"]["detail"], str)
    return body["error"]["error_code"]


def test_friendly_v2_duplicate_and_timeout(client: FlaskClient, clock: FakeClock) -> None:
    token = issue(client, "friendlycaptcha", version="v2")
    assert friendly_v2_verify(client, token).get_json()["success"] is True
    duplicate = friendly_v2_verify(client, token)
    assert duplicate.status_code == 200
    assert v2_error(duplicate) == "response_duplicate"
    backdated = friendly_v2_verify(client, issue(client, "friendlycaptcha", version="v2", age_seconds=301))
    assert backdated.status_code == 200
    assert v2_error(backdated) == "response_timeout"
    aged = issue(client, "friendlycaptcha", version="v2")
    clock.advance(301)
    assert v2_error(friendly_v2_verify(client, aged)) == "response_timeout"


def test_friendly_v2_auth(client: FlaskClient) -> None:
    token = issue(client, "friendlycaptcha", version="v2")
    missing = client.post(FRIENDLY_V2_URL, json={"response": token})
    assert missing.status_code == 401
    assert v2_error(missing) == "auth_required"
    wrong = friendly_v2_verify(client, token, api_key="sandbox-wrong")
    assert wrong.status_code == 401
    assert v2_error(wrong) == "auth_invalid"
    assert friendly_v2_verify(client, token).get_json()["success"] is True


@pytest.mark.parametrize(
    ("response_value", "code"),
    [
        (None, "response_missing"),
        ("", "response_missing"),
        (123, "bad_request"),
        ("x" * 16385, "bad_request"),
    ],
)
def test_friendly_v2_request_errors(client: FlaskClient, response_value: Any, code: str) -> None:
    response = friendly_v2_verify(client, response_value)
    assert response.status_code == 400
    assert v2_error(response) == code


def test_friendly_v2_requires_a_json_body(client: FlaskClient) -> None:
    token = issue(client, "friendlycaptcha", version="v2")
    response = client.post(
        FRIENDLY_V2_URL, data={"response": token}, headers={"X-API-Key": CREDS["friendlycaptcha"].secret}
    )
    assert response.status_code == 400
    assert v2_error(response) == "bad_request"


def test_friendly_v2_malformed_sitekey(client: FlaskClient) -> None:
    response = friendly_v2_verify(client, issue(client, "friendlycaptcha", version="v2"), sitekey=7)
    assert response.status_code == 400
    assert v2_error(response) == "sitekey_invalid"


def test_friendly_v2_sitekey_mismatch_and_foreign_tokens_are_invalid(client: FlaskClient) -> None:
    token = issue(client, "friendlycaptcha", version="v2")
    mismatch = friendly_v2_verify(client, token, sitekey="FCMOTHERSITE00000")
    assert mismatch.status_code == 200
    assert v2_error(mismatch) == "response_invalid"
    assert v2_error(friendly_v2_verify(client, issue(client, "friendlycaptcha"))) == "response_invalid"
    assert v2_error(friendly_v2_verify(client, "bogus")) == "response_invalid"
    assert friendly_v2_verify(client, token).get_json()["success"] is True


# ---------------------------------------------------------------------------------------------
# Fault injection and call log
# ---------------------------------------------------------------------------------------------

VERIFY_CALLS: dict[str, Callable[[FlaskClient, str], TestResponse]] = {
    "captchacat": lambda client, token: engine_verify(client, "captchacat", token),
    "byebot": lambda client, token: engine_verify(client, "byebot", token),
    "swetrix": swetrix_verify,
    "ycaptcha": ycaptcha_verify,
    "friendlycaptcha": friendly_v1_verify,
    "turnstile": turnstile_verify,
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_fault_replaces_the_answer_without_touching_the_token(client: FlaskClient, provider: str) -> None:
    added = client.post(
        "/_sandbox/faults",
        json={
            "provider": provider,
            "status": 503,
            "body": "<html>upstream down</html>",
            "headers": {"Content-Type": "text/html", "X-Fault": "yes"},
            "count": 2,
        },
    )
    assert added.status_code == 201
    token = issue(client, provider)
    for _ in range(2):
        faulted = VERIFY_CALLS[provider](client, token)
        assert faulted.status_code == 503
        assert faulted.data == b"<html>upstream down</html>"
        assert faulted.headers["Content-Type"] == "text/html"
        assert faulted.headers["X-Fault"] == "yes"
    assert VERIFY_CALLS[provider](client, token).status_code == 200


def test_fault_with_empty_body_and_default_json_type(client: FlaskClient) -> None:
    client.post("/_sandbox/faults", json={"provider": "byebot", "status": 200, "body": ""})
    client.post("/_sandbox/faults", json={"provider": "byebot", "status": 200, "body": '{"success": tru'})
    empty = engine_verify(client, "byebot", "whatever")
    assert (empty.status_code, empty.data) == (200, b"")
    broken = engine_verify(client, "byebot", "whatever")
    assert broken.data == b'{"success": tru'
    assert broken.headers["Content-Type"] == "application/json"
    assert engine_verify(client, "byebot", "whatever").status_code == 400


def test_fault_delay(client: FlaskClient) -> None:
    client.post("/_sandbox/faults", json={"provider": "swetrix", "status": 500, "body": "", "delay_ms": 150})
    started = time.monotonic()
    response = swetrix_verify(client, "whatever")
    assert response.status_code == 500
    assert time.monotonic() - started >= 0.15


def test_fault_applies_to_friendly_v2_too(client: FlaskClient) -> None:
    client.post("/_sandbox/faults", json={"provider": "friendlycaptcha", "status": 429, "body": "{}"})
    assert friendly_v2_verify(client, "whatever").status_code == 429


def test_faults_are_per_provider_and_can_be_cleared(client: FlaskClient) -> None:
    client.post("/_sandbox/faults", json={"provider": "ycaptcha", "status": 500, "body": "", "count": 5})
    assert swetrix_verify(client, "bogus").status_code == 400
    assert ycaptcha_verify(client, "bogus").status_code == 500
    assert client.delete("/_sandbox/faults").status_code == 204
    assert ycaptcha_verify(client, "bogus").get_json() == {"success": False, "error": "Invalid token"}


@pytest.mark.parametrize(
    "fault",
    [
        {"provider": "recaptcha", "status": 500},
        {"provider": "byebot", "status": 42},
        {"provider": "byebot", "status": "500"},
        {"provider": "byebot", "status": 500, "body": {"not": "raw"}},
        {"provider": "byebot", "status": 500, "headers": {"X": 1}},
        {"provider": "byebot", "status": 500, "count": 0},
    ],
)
def test_invalid_faults_are_refused(client: FlaskClient, fault: dict) -> None:
    response = client.post("/_sandbox/faults", json=fault)
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert engine_verify(client, "byebot", "bogus").status_code == 400


def test_call_log_records_calls_without_secrets_or_tokens(client: FlaskClient) -> None:
    assert client.get("/_sandbox/calls").get_json() == []
    token = issue(client, "swetrix")
    swetrix_verify(client, token)
    client.post("/_sandbox/faults", json={"provider": "ycaptcha", "status": 502, "body": ""})
    ycaptcha_verify(client, "y" * 64)
    friendly_v2_verify(client, "z" * 40)
    calls = client.get("/_sandbox/calls").get_json()
    assert [(c["provider"], c["path"], c["status"], c["fault"]) for c in calls] == [
        ("swetrix", SWETRIX_URL, 200, False),
        ("ycaptcha", YCAPTCHA_URL, 502, True),
        ("friendlycaptcha", FRIENDLY_V2_URL, 200, False),
    ]
    assert calls[0]["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert calls[2]["token_sha256"] == hashlib.sha256(b"z" * 40).hexdigest()
    dumped = json.dumps(calls)
    for secret in (CREDS["swetrix"].secret, CREDS["ycaptcha"].secret, CREDS["friendlycaptcha"].secret):
        assert secret not in dumped
    assert token not in dumped and "y" * 64 not in dumped


def test_issue_and_widget_requests_are_not_verify_calls(client: FlaskClient) -> None:
    issue(client, "byebot")
    client.get("/byebot/widget.js")
    assert client.get("/_sandbox/calls").get_json() == []


def test_call_log_can_be_cleared(client: FlaskClient) -> None:
    engine_verify(client, "captchacat", "bogus")
    assert len(client.get("/_sandbox/calls").get_json()) == 1
    assert client.delete("/_sandbox/calls").status_code == 204
    assert client.get("/_sandbox/calls").get_json() == []


# ---------------------------------------------------------------------------------------------
# Stand-in widget
# ---------------------------------------------------------------------------------------------

MARKUP = {p.name: ("." + p.widget.css_class, p.widget.sitekey_attribute) for p in REGISTRY}


def widget_config(source: str) -> dict:
    match = re.search(r"\}\)\((\{.*\})\);\s*$", source, re.DOTALL)
    assert match, "the widget script ends by calling itself with its config"
    return json.loads(match.group(1))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_widget_script_is_javascript_configured_for_its_provider(client: FlaskClient, provider: str) -> None:
    response = client.get(f"/{provider}/widget.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    source = response.get_data(as_text=True)
    assert "__SANDBOX_CONFIG__" not in source
    assert "Sandbox: I'm not a robot" in source
    assert "verified (sandbox)" in source
    assert 'setAttribute("data-state", "solved")' in source
    assert "document.currentScript" in source
    config = widget_config(source)
    assert config["provider"] == provider
    assert (config["selector"], config["sitekeyAttribute"]) == MARKUP[provider]


def test_widget_brands_sharing_markup_skip_each_others_divs(client: FlaskClient) -> None:
    captchacat = widget_config(client.get("/captchacat/widget.js").get_data(as_text=True))
    byebot = widget_config(client.get("/byebot/widget.js").get_data(as_text=True))
    assert captchacat["skipSitekeys"] == [CREDS["byebot"].sitekey]
    assert byebot["skipSitekeys"] == [CREDS["captchacat"].sitekey]
    swetrix = widget_config(client.get("/swetrix/widget.js").get_data(as_text=True))
    assert swetrix["skipSitekeys"] == []


def test_friendly_widget_reads_the_api_version(client: FlaskClient) -> None:
    config = widget_config(client.get("/friendlycaptcha/widget.js").get_data(as_text=True))
    assert config["versionAttribute"] == "data-api-version"


def test_widget_unknown_provider_is_404(client: FlaskClient) -> None:
    assert client.get("/hcaptcha/widget.js").status_code == 404


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def test_command_line_defaults_and_overrides() -> None:
    defaults = parse_args([])
    assert (defaults.host, defaults.port) == ("127.0.0.1", 3001)
    custom = parse_args(["--host", "0.0.0.0", "--port", "0"])
    assert (custom.host, custom.port) == ("0.0.0.0", 0)


# ---------------------------------------------------------------------------------------------
# Cloudflare Turnstile
# ---------------------------------------------------------------------------------------------

TURNSTILE_KEY = "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"


def test_sandbox_serves_every_provider_of_the_layer() -> None:
    assert tuple(provider.name for provider in REGISTRY) == PROVIDERS
    assert set(CREDS) == set(PROVIDERS)


def test_turnstile_token_is_opaque_and_within_the_documented_length(client: FlaskClient) -> None:
    token = issue(client, "turnstile")
    assert 32 <= len(token) <= 2048
    assert re.fullmatch(r"[A-Za-z0-9._-]+", token)


def test_turnstile_success_has_the_documented_fields(client: FlaskClient, clock: FakeClock) -> None:
    token = issue(client, "turnstile", origin="https://www.example.com:8443", age_seconds=12)
    response = turnstile_verify(client, token, idempotency_key=TURNSTILE_KEY)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body == {
        "success": True,
        "challenge_ts": body["challenge_ts"],
        "hostname": "www.example.com",
        "error-codes": [],
        "action": "",
        "cdata": "",
    }
    assert datetime.fromisoformat(body["challenge_ts"]).timestamp() == pytest.approx(
        clock.now - 12, abs=0.001
    )
    assert body["challenge_ts"].endswith("Z")


def test_turnstile_token_without_an_origin_has_no_hostname(client: FlaskClient) -> None:
    assert turnstile_verify(client, issue(client, "turnstile")).get_json()["hostname"] is None


def test_turnstile_form_encoded_request_is_accepted(client: FlaskClient) -> None:
    token = issue(client, "turnstile")
    response = client.post(TURNSTILE_URL, data={"secret": CREDS["turnstile"].secret, "response": token})
    assert response.get_json()["success"] is True


def test_turnstile_token_is_single_use(client: FlaskClient) -> None:
    token = issue(client, "turnstile")
    assert turnstile_verify(client, token).get_json()["success"] is True
    again = turnstile_verify(client, token)
    assert again.status_code == 200
    assert again.get_json() == {"success": False, "error-codes": ["timeout-or-duplicate"]}


def test_turnstile_retry_with_the_same_idempotency_key_gets_the_first_answer(client: FlaskClient) -> None:
    token = issue(client, "turnstile", origin="https://www.example.com")
    first = turnstile_verify(client, token, idempotency_key=TURNSTILE_KEY).get_json()
    retry = turnstile_verify(client, token, idempotency_key=TURNSTILE_KEY).get_json()
    assert first["success"] is True
    assert retry == first
    other_key = turnstile_verify(client, token, idempotency_key=str(uuid.uuid4())).get_json()
    no_key = turnstile_verify(client, token).get_json()
    assert other_key["error-codes"] == no_key["error-codes"] == ["timeout-or-duplicate"]


def test_turnstile_key_given_only_on_the_retry_does_not_unlock_a_spent_token(client: FlaskClient) -> None:
    token = issue(client, "turnstile")
    assert turnstile_verify(client, token).get_json()["success"] is True
    retry = turnstile_verify(client, token, idempotency_key=TURNSTILE_KEY).get_json()
    assert retry["error-codes"] == ["timeout-or-duplicate"]


def test_turnstile_token_expires_after_300_seconds(client: FlaskClient, clock: FakeClock) -> None:
    fresh, stale = issue(client, "turnstile"), issue(client, "turnstile")
    clock.advance(300)
    assert turnstile_verify(client, fresh).get_json()["success"] is True
    clock.advance(1)
    assert turnstile_verify(client, stale).get_json()["error-codes"] == ["timeout-or-duplicate"]


def test_turnstile_expired_token_stays_expired_with_a_key(client: FlaskClient, clock: FakeClock) -> None:
    token = issue(client, "turnstile")
    clock.advance(301)
    answer = turnstile_verify(client, token, idempotency_key=TURNSTILE_KEY).get_json()
    assert answer["error-codes"] == ["timeout-or-duplicate"]


@pytest.mark.parametrize(
    "token",
    ["never-issued", "0." + "a" * 2047, "XXXX.DUMMY.TOKEN.XXXX"],
    ids=["unknown", "over-2048", "dummy-with-real-secret"],
)
def test_turnstile_unknown_token_is_invalid(client: FlaskClient, token: str) -> None:
    answer = turnstile_verify(client, token)
    assert answer.status_code == 200
    assert answer.get_json() == {"success": False, "error-codes": ["invalid-input-response"]}


def test_turnstile_another_providers_token_is_invalid(client: FlaskClient) -> None:
    token = issue(client, "ycaptcha")
    assert turnstile_verify(client, token).get_json()["error-codes"] == ["invalid-input-response"]


def test_turnstile_wrong_secret_leaves_the_token_usable(client: FlaskClient) -> None:
    token = issue(client, "turnstile")
    wrong = turnstile_verify(client, token, secret="0x4AAAAAAAsomeone-elses-secret")
    assert wrong.get_json() == {"success": False, "error-codes": ["invalid-input-secret"]}
    assert turnstile_verify(client, token).get_json()["success"] is True


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"response": "t"}, "missing-input-secret"),
        ({"secret": "", "response": "t"}, "missing-input-secret"),
        ({"secret": CREDS["turnstile"].secret}, "missing-input-response"),
        ({"secret": CREDS["turnstile"].secret, "response": ""}, "missing-input-response"),
        ({"secret": CREDS["turnstile"].secret, "response": ["t"]}, "bad-request"),
        ({"secret": 7, "response": "t"}, "bad-request"),
        (
            {"secret": CREDS["turnstile"].secret, "response": "t", "idempotency_key": "not-a-uuid"},
            "bad-request",
        ),
        ({"secret": CREDS["turnstile"].secret, "response": "t", "remoteip": 127}, "bad-request"),
    ],
    ids=[
        "no-secret",
        "empty-secret",
        "no-response",
        "empty-response",
        "response-list",
        "secret-number",
        "key-not-uuid",
        "remoteip-number",
    ],
)
def test_turnstile_malformed_requests(client: FlaskClient, fields: dict[str, Any], code: str) -> None:
    answer = client.post(TURNSTILE_URL, json=fields)
    assert answer.status_code == 200
    assert answer.get_json() == {"success": False, "error-codes": [code]}


def test_turnstile_body_that_is_not_an_object_is_a_bad_request(client: FlaskClient) -> None:
    for raw in ("[1, 2]", "{broken"):
        answer = client.post(TURNSTILE_URL, data=raw, content_type="application/json")
        assert answer.get_json() == {"success": False, "error-codes": ["bad-request"]}


def test_turnstile_malformed_request_does_not_spend_the_token(client: FlaskClient) -> None:
    token = issue(client, "turnstile")
    bad_key = turnstile_verify(client, token, idempotency_key="nope").get_json()
    assert bad_key["error-codes"] == ["bad-request"]
    assert turnstile_verify(client, token).get_json()["success"] is True


# Cloudflare's documented test keys, mirrored.
PASS_SECRET = "1x0000000000000000000000000000000AA"
FAIL_SECRET = "2x0000000000000000000000000000000AA"
SPENT_SECRET = "3x0000000000000000000000000000000AA"
DUMMY = "XXXX.DUMMY.TOKEN.XXXX"


@pytest.mark.parametrize(
    "sitekey", ["1x00000000000000000000AA", "1x00000000000000000000BB", "3x00000000000000000000FF"]
)
def test_turnstile_passing_test_sitekeys_issue_the_dummy_token(client: FlaskClient, sitekey: str) -> None:
    response = client.post("/turnstile/issue", json={"sitekey": sitekey})
    assert response.status_code == 200
    assert response.get_json() == {"token": DUMMY, "field": "cf-turnstile-response"}
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("sitekey", ["2x00000000000000000000AB", "2x00000000000000000000BB"])
def test_turnstile_failing_test_sitekeys_issue_no_token(client: FlaskClient, sitekey: str) -> None:
    response = client.post("/turnstile/issue", json={"sitekey": sitekey})
    assert response.status_code == 400
    assert "always fails" in response.get_json()["error"]
    assert "token" not in response.get_json()


def test_turnstile_test_sitekeys_belong_to_turnstile_only(client: FlaskClient) -> None:
    response = client.post("/ycaptcha/issue", json={"sitekey": "1x00000000000000000000AA"})
    assert response.status_code == 400


def test_turnstile_passing_test_secret_always_passes_the_dummy_token(client: FlaskClient) -> None:
    for _ in range(3):
        body = turnstile_verify(client, DUMMY, secret=PASS_SECRET).get_json()
        assert body["success"] is True
        assert (body["hostname"], body["action"], body["cdata"], body["error-codes"]) == (
            "localhost",
            "test",
            "test-data",
            [],
        )


@pytest.mark.parametrize(
    ("secret", "code"),
    [(FAIL_SECRET, "invalid-input-response"), (SPENT_SECRET, "timeout-or-duplicate")],
    ids=["always-fails", "already-spent"],
)
def test_turnstile_failing_test_secrets(client: FlaskClient, secret: str, code: str) -> None:
    for _ in range(2):
        assert turnstile_verify(client, DUMMY, secret=secret).get_json() == {
            "success": False,
            "error-codes": [code],
        }


@pytest.mark.parametrize("secret", [PASS_SECRET, FAIL_SECRET, SPENT_SECRET])
def test_turnstile_test_secret_refuses_a_real_token_and_leaves_it_usable(
    client: FlaskClient, secret: str
) -> None:
    token = issue(client, "turnstile")
    answer = turnstile_verify(client, token, secret=secret).get_json()
    assert answer == {"success": False, "error-codes": ["invalid-input-secret"]}
    assert turnstile_verify(client, token).get_json()["success"] is True


def test_turnstile_call_log_has_the_digest_not_the_token(client: FlaskClient) -> None:
    token = issue(client, "turnstile")
    turnstile_verify(client, token, idempotency_key=TURNSTILE_KEY)
    calls = client.get("/_sandbox/calls").get_json()
    assert calls[-1]["provider"] == "turnstile"
    assert calls[-1]["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    logged = json.dumps(calls)
    assert token not in logged and CREDS["turnstile"].secret not in logged


def test_turnstile_concurrent_verifications_spend_the_token_once(app: flask.Flask) -> None:
    token = (
        app.test_client().post("/turnstile/issue", json={"sitekey": CREDS["turnstile"].sitekey}).get_json()
    )
    token = token["token"]

    def verify(_: int) -> bool:
        return turnstile_verify(app.test_client(), token).get_json()["success"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(verify, range(16)))
    assert outcomes.count(True) == 1


def test_turnstile_adapter_against_the_sandbox(client: FlaskClient) -> None:
    """The layer's adapter builds a call the sandbox accepts and reads its answers, retry included."""
    from captcha_verify.outcome import ErrorCode, Verdict
    from captcha_verify.providers.turnstile import TurnstileAdapter

    adapter = TurnstileAdapter(TURNSTILE_URL)
    token = issue(client, "turnstile", origin="https://www.example.com")

    def send() -> Any:
        call = adapter.build_call(token, CREDS["turnstile"].secret, None)
        response = client.post(call.url, json=dict(call.json))
        return adapter.answer(response.status_code, response.data)

    first, retry = send(), send()
    assert first.verdict is retry.verdict is Verdict.VERIFIED
    assert first.hostname == retry.hostname == "www.example.com"
    spent = turnstile_verify(client, token).get_data()
    assert adapter.answer(200, spent).error_code is ErrorCode.TIMEOUT_OR_DUPLICATE
