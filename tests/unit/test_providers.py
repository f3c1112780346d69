"""Table-driven tests of the provider adapters and the failure policy, against the protocols that
docs/providers/ describes.

Adapters are pure (build the call, interpret status + body), so every documented response shape and
every documented trap is one row of a table here; no HTTP and no mocks.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from captcha_verify.config import FailurePolicy, FriendlyApiVersion, Settings
from captcha_verify.outcome import ErrorCode, ProviderAnswer, RequestRejected, Verdict
from captcha_verify.policy import Decision, Outcome, bind_sitekey, decide
from captcha_verify.providers import PROVIDERS, Adapter, adapter_for
from captcha_verify.providers.friendly import FriendlyV1Adapter, FriendlyV2Adapter
from captcha_verify.providers.rayengine import ByeBotAdapter, CaptchaCatAdapter
from captcha_verify.providers.swetrix import SwetrixAdapter
from captcha_verify.providers.turnstile import TurnstileAdapter
from captcha_verify.providers.ycaptcha import YCaptchaAdapter
from support.handler_fakes import minimal_settings as settings

# Distinctive values, so a leak into a reason string cannot be a coincidence.
SECRET = "sk_" + "Q7zR" * 8  # also the documented yCAPTCHA secret shape: sk_ + 32 chars
TOKEN = "tK9w" * 16  # 64 chars of [A-Za-z0-9_-]: the documented yCAPTCHA token shape
FRIENDLY_V1_TOKEN = "sig9Xq.puz7Lm.sol3Vb.diag5Np"  # a real v1 solution has four dot-separated parts
SITEKEY = "abc123def456ab7890cd"  # 20 lowercase hex, as in the Captcha Cat / ByeBot examples
SWETRIX_PID = "AbCdEf-12345"  # 12 chars [a-zA-Z0-9-]

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
T0_SECONDS = 1795255200  # == T0 as unix seconds
T0_MILLIS = T0_SECONDS * 1000 + 250  # == T0 + 250 ms as epoch milliseconds

OK, NO, UNSURE = Verdict.VERIFIED, Verdict.REJECTED, Verdict.UNVERIFIABLE
E = ErrorCode
METADATA = ("challenge_ts", "hostname", "sitekey", "solve_time_ms", "interactive")


def make(kind: str, **overrides: Any) -> Adapter:
    if kind.startswith("friendly_"):
        version = FriendlyApiVersion.V2 if kind == "friendly_v2" else FriendlyApiVersion.V1
        return adapter_for("friendlycaptcha", settings(friendly_api_version=version, **overrides))
    return adapter_for(kind, settings(**overrides))


def j(value: object) -> bytes:
    return json.dumps(value).encode()


def swetrix_error(status: int, message: object, error: str = "Bad Request") -> bytes:
    return j({"statusCode": status, "message": message, "error": error})


def fc_v1(success: bool, *errors: str) -> bytes:
    body: dict[str, object] = {"success": success}
    if errors:
        body["errors"] = list(errors)
        body["details"] = "see the docs"
    return j(body)


def fc_v2_error(code: str) -> bytes:
    return j({"success": False, "error": {"error_code": code, "detail": "see the docs"}})


BYEBOT_BODY = j(
    {
        "success": True,
        "sitekey": SITEKEY,
        "challenged_at": T0_SECONDS,
        "solve_time_ms": 2340,
        "interactive_solved": True,
    }
)
BYEBOT_META = {
    "challenge_ts": T0,
    "sitekey": SITEKEY,
    "solve_time_ms": 2340,
    "interactive": True,
}

# (kind, status, body, verdict, error code, metadata expected on the answer), one row per shape.
INTERPRET_CASES = [
    # ---- Captcha Cat: the status is the verdict --------------------------------------------------
    # Trap: Captcha Cat documents no body on 200; it may be empty, and that is still verified.
    pytest.param("captchacat", 200, b"", OK, None, {}, id="captchacat-200-empty-body-verified"),
    pytest.param("captchacat", 200, b"  \n", OK, None, {}, id="captchacat-200-blank-body-verified"),
    # Trap: the engine's own client treats any 2xx as valid, parsing the body only when non-empty.
    pytest.param("captchacat", 204, b"", OK, None, {}, id="captchacat-204-no-content-verified"),
    # Trap: Captcha Cat may also answer 200 with the ByeBot-shaped body; its metadata is read.
    pytest.param("captchacat", 200, BYEBOT_BODY, OK, None, BYEBOT_META, id="captchacat-200-byebot-shape"),
    # Trap: 400 carries no body and means invalid, expired or used, which cannot be told apart.
    pytest.param(
        "captchacat", 400, b"", NO, E.INVALID_INPUT_RESPONSE, {}, id="captchacat-400-no-body-rejected"
    ),
    # Trap: other statuses are undocumented and mean "could not verify".
    pytest.param(
        "captchacat", 401, b"", UNSURE, E.INVALID_INPUT_SECRET, {}, id="captchacat-401-unverifiable"
    ),
    pytest.param(
        "captchacat", 403, b"", UNSURE, E.INVALID_INPUT_SECRET, {}, id="captchacat-403-unverifiable"
    ),
    pytest.param("captchacat", 404, b"", UNSURE, E.INTERNAL_ERROR, {}, id="captchacat-404-unverifiable"),
    pytest.param("captchacat", 429, b"", UNSURE, E.INTERNAL_ERROR, {}, id="captchacat-429-unverifiable"),
    pytest.param("captchacat", 500, b"oops", UNSURE, E.INTERNAL_ERROR, {}, id="captchacat-500-unverifiable"),
    pytest.param("captchacat", 503, b"", UNSURE, E.INTERNAL_ERROR, {}, id="captchacat-503-unverifiable"),
    # Trap: a 2xx whose body says success is not true is not a verification.
    pytest.param(
        "captchacat",
        200,
        j({"success": False}),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="captchacat-200-success-false-unverifiable",
    ),
    # ---- ByeBot: same engine, documented JSON body on 200 ----------------------------------------
    # Trap: challenged_at is unix SECONDS; solve_time_ms, interactive_solved -> interactive, sitekey.
    pytest.param("byebot", 200, BYEBOT_BODY, OK, None, BYEBOT_META, id="byebot-200-metadata"),
    pytest.param(
        "byebot",
        200,
        j(
            {
                "success": True,
                "sitekey": SITEKEY,
                "challenged_at": T0_SECONDS + 60,
                "solve_time_ms": 15,
                "interactive_solved": False,
            }
        ),
        OK,
        None,
        {
            "challenge_ts": T0 + timedelta(seconds=60),
            "sitekey": SITEKEY,
            "solve_time_ms": 15,
            "interactive": False,
        },
        id="byebot-200-metadata-not-interactive",
    ),
    pytest.param("byebot", 200, b"", OK, None, {}, id="byebot-200-empty-body-verified"),
    # Trap: 400 with no body = invalid-input-response rejection.
    pytest.param("byebot", 400, b"", NO, E.INVALID_INPUT_RESPONSE, {}, id="byebot-400-no-body-rejected"),
    # Trap: 401/403/404/429/5xx = unverifiable.
    pytest.param("byebot", 401, b"", UNSURE, E.INVALID_INPUT_SECRET, {}, id="byebot-401-unverifiable"),
    pytest.param("byebot", 403, b"", UNSURE, E.INVALID_INPUT_SECRET, {}, id="byebot-403-unverifiable"),
    pytest.param("byebot", 404, b"", UNSURE, E.INTERNAL_ERROR, {}, id="byebot-404-unverifiable"),
    pytest.param("byebot", 429, b"", UNSURE, E.INTERNAL_ERROR, {}, id="byebot-429-unverifiable"),
    pytest.param("byebot", 500, b"", UNSURE, E.INTERNAL_ERROR, {}, id="byebot-500-unverifiable"),
    pytest.param("byebot", 502, b"<html>", UNSURE, E.INTERNAL_ERROR, {}, id="byebot-502-unverifiable"),
    # Trap: a 2xx body with success false = unverifiable (success is documented as always true).
    pytest.param(
        "byebot",
        200,
        j({"success": False, "sitekey": SITEKEY}),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="byebot-200-success-false-unverifiable",
    ),
    # ---- Swetrix ---------------------------------------------------------------------------------
    # Trap: current data shape; timestamp is epoch MILLISECONDS, pid is the site key to bind.
    pytest.param(
        "swetrix",
        200,
        j({"success": True, "data": {"challenge": "ab" * 32, "timestamp": T0_MILLIS, "pid": SWETRIX_PID}}),
        OK,
        None,
        {"challenge_ts": T0 + timedelta(milliseconds=250), "sitekey": SWETRIX_PID},
        id="swetrix-200-new-shape",
    ),
    # Trap: old data shape (hash/autoVerified); interactive = not autoVerified.
    pytest.param(
        "swetrix",
        200,
        j(
            {
                "success": True,
                "data": {"hash": "cd" * 32, "timestamp": T0_MILLIS, "autoVerified": True, "pid": SWETRIX_PID},
            }
        ),
        OK,
        None,
        {"challenge_ts": T0 + timedelta(milliseconds=250), "sitekey": SWETRIX_PID, "interactive": False},
        id="swetrix-200-old-shape-auto-verified",
    ),
    pytest.param(
        "swetrix",
        200,
        j(
            {
                "success": True,
                "data": {
                    "hash": "cd" * 32,
                    "timestamp": T0_MILLIS,
                    "autoVerified": False,
                    "pid": SWETRIX_PID,
                },
            }
        ),
        OK,
        None,
        {"challenge_ts": T0 + timedelta(milliseconds=250), "sitekey": SWETRIX_PID, "interactive": True},
        id="swetrix-200-old-shape-interactive",
    ),
    # Trap: "Token expired" / "Token already used" -> timeout-or-duplicate.
    pytest.param(
        "swetrix",
        400,
        swetrix_error(400, "Token expired"),
        NO,
        E.TIMEOUT_OR_DUPLICATE,
        {},
        id="swetrix-400-token-expired",
    ),
    pytest.param(
        "swetrix",
        400,
        swetrix_error(400, "Token already used"),
        NO,
        E.TIMEOUT_OR_DUPLICATE,
        {},
        id="swetrix-400-token-already-used",
    ),
    # Trap: "Could not decrypt token" (bad token OR wrong secret) / "Invalid token payload" -> invalid.
    pytest.param(
        "swetrix",
        400,
        swetrix_error(400, "Could not decrypt token"),
        NO,
        E.INVALID_INPUT_RESPONSE,
        {},
        id="swetrix-400-could-not-decrypt",
    ),
    pytest.param(
        "swetrix",
        400,
        swetrix_error(400, "Invalid token payload"),
        NO,
        E.INVALID_INPUT_RESPONSE,
        {},
        id="swetrix-400-invalid-payload",
    ),
    # Trap: `message` as an array of strings (a field missing or empty) -> unverifiable.
    pytest.param(
        "swetrix",
        400,
        swetrix_error(400, ["token should not be empty", "secret must be a string"]),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="swetrix-400-array-message-unverifiable",
    ),
    pytest.param(
        "swetrix",
        400,
        swetrix_error(400, "Something new"),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="swetrix-400-unknown-message-unverifiable",
    ),
    pytest.param("swetrix", 400, b"", UNSURE, E.INTERNAL_ERROR, {}, id="swetrix-400-empty-unverifiable"),
    # Trap: 429 (120 validations / min / IP) -> unverifiable.
    pytest.param(
        "swetrix",
        429,
        swetrix_error(429, "Too many requests, please try again later", "Too Many Requests"),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="swetrix-429-unverifiable",
    ),
    pytest.param(
        "swetrix",
        500,
        swetrix_error(500, "Internal server error", "Internal Server Error"),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="swetrix-500-unverifiable",
    ),
    # Trap: a 200 without the success body -> unverifiable.
    pytest.param("swetrix", 200, b"", UNSURE, E.INTERNAL_ERROR, {}, id="swetrix-200-empty-unverifiable"),
    pytest.param(
        "swetrix", 200, b"<html>ok</html>", UNSURE, E.INTERNAL_ERROR, {}, id="swetrix-200-html-unverifiable"
    ),
    pytest.param(
        "swetrix",
        200,
        j({"success": False, "data": {"pid": SWETRIX_PID}}),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="swetrix-200-success-false-unverifiable",
    ),
    pytest.param(
        "swetrix",
        200,
        j({"success": True}),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="swetrix-200-success-without-data-unverifiable",
    ),
    # ---- yCAPTCHA --------------------------------------------------------------------------------
    # Valid, and no metadata at all.
    pytest.param("ycaptcha", 200, j({"success": True}), OK, None, {}, id="ycaptcha-200-success"),
    # Trap: a 200 is not a success: {"success": false, "error": "Invalid token"} is a rejection.
    pytest.param(
        "ycaptcha",
        200,
        j({"success": False, "error": "Invalid token"}),
        NO,
        E.INVALID_INPUT_RESPONSE,
        {},
        id="ycaptcha-200-invalid-token-rejected",
    ),
    # Trap: older servers answer a bare {"success": false}: still a rejection.
    pytest.param(
        "ycaptcha",
        200,
        j({"success": False}),
        NO,
        E.INVALID_INPUT_RESPONSE,
        {},
        id="ycaptcha-200-bare-failure-old-server-rejected",
    ),
    # Trap: "Invalid secretKey" is our secret, not the user's token -> unverifiable invalid-input-secret.
    pytest.param(
        "ycaptcha",
        200,
        j({"success": False, "error": "Invalid secretKey"}),
        UNSURE,
        E.INVALID_INPUT_SECRET,
        {},
        id="ycaptcha-200-invalid-secret-unverifiable",
    ),
    # Trap: 400/429/500 are "could not verify".
    pytest.param(
        "ycaptcha",
        400,
        j({"success": False, "error": "Missing token or secretKey"}),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="ycaptcha-400-missing-fields-unverifiable",
    ),
    pytest.param(
        "ycaptcha",
        429,
        j({"error": "Too many requests", "retryAfter": 30}),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="ycaptcha-429-unverifiable",
    ),
    pytest.param(
        "ycaptcha",
        500,
        j({"success": False, "error": "Internal error, please retry"}),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="ycaptcha-500-unverifiable",
    ),
    # Trap: a 200 with a non-JSON or empty body is unverifiable, never a success.
    pytest.param("ycaptcha", 200, b"", UNSURE, E.INTERNAL_ERROR, {}, id="ycaptcha-200-empty-unverifiable"),
    pytest.param(
        "ycaptcha", 200, b"<html>OK</html>", UNSURE, E.INTERNAL_ERROR, {}, id="ycaptcha-200-html-unverifiable"
    ),
    pytest.param(
        "ycaptcha",
        200,
        j(["success"]),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="ycaptcha-200-json-array-unverifiable",
    ),
    pytest.param(
        "ycaptcha",
        200,
        j({"success": "true"}),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="ycaptcha-200-success-string-unverifiable",
    ),
    # ---- Friendly Captcha v1 ---------------------------------------------------------------------
    pytest.param("friendly_v1", 200, fc_v1(True), OK, None, {}, id="friendly-v1-200-success"),
    # Trap: 200 does not mean valid; token errors arrive with 200 and success false.
    pytest.param(
        "friendly_v1",
        200,
        fc_v1(False, "solution_invalid"),
        NO,
        E.INVALID_INPUT_RESPONSE,
        {},
        id="friendly-v1-200-solution-invalid",
    ),
    pytest.param(
        "friendly_v1",
        200,
        fc_v1(False, "solution_timeout_or_duplicate"),
        NO,
        E.TIMEOUT_OR_DUPLICATE,
        {},
        id="friendly-v1-200-solution-timeout-or-duplicate",
    ),
    # Trap: our configuration/request errors are "could not verify", never a token verdict.
    pytest.param(
        "friendly_v1",
        401,
        fc_v1(False, "secret_invalid"),
        UNSURE,
        E.INVALID_INPUT_SECRET,
        {},
        id="friendly-v1-401-secret-invalid",
    ),
    pytest.param(
        "friendly_v1",
        400,
        fc_v1(False, "secret_missing"),
        UNSURE,
        E.MISSING_INPUT_SECRET,
        {},
        id="friendly-v1-400-secret-missing",
    ),
    pytest.param(
        "friendly_v1",
        400,
        fc_v1(False, "bad_request"),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="friendly-v1-400-bad-request",
    ),
    pytest.param(
        "friendly_v1",
        400,
        fc_v1(False, "solution_missing"),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="friendly-v1-400-solution-missing",
    ),
    # Trap: non-JSON 5xx -> unverifiable.
    pytest.param(
        "friendly_v1",
        502,
        b"<html>Bad Gateway</html>",
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="friendly-v1-502-html",
    ),
    pytest.param("friendly_v1", 503, b"", UNSURE, E.INTERNAL_ERROR, {}, id="friendly-v1-503-empty"),
    pytest.param("friendly_v1", 200, b"", UNSURE, E.INTERNAL_ERROR, {}, id="friendly-v1-200-empty"),
    pytest.param(
        "friendly_v1",
        200,
        j({"success": False}),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="friendly-v1-200-failure-without-errors-unverifiable",
    ),
    # ---- Friendly Captcha v2 ---------------------------------------------------------------------
    # Success: challenge.timestamp (ISO 8601) -> challenge_ts, challenge.origin -> hostname.
    pytest.param(
        "friendly_v2",
        200,
        j(
            {
                "success": True,
                "data": {
                    "event_id": "ev_123",
                    "challenge": {"timestamp": "2026-11-21T10:00:00Z", "origin": "https://www.example.org"},
                    "risk_intelligence": None,
                },
            }
        ),
        OK,
        None,
        {"challenge_ts": T0, "hostname": "www.example.org"},
        id="friendly-v2-200-success-metadata",
    ),
    pytest.param(
        "friendly_v2",
        200,
        j(
            {
                "success": True,
                "data": {
                    "event_id": "ev_456",
                    "challenge": {
                        "timestamp": "2026-11-21T11:00:00+01:00",
                        "origin": "http://localhost:8080",
                    },
                    "risk_intelligence": {"score": 1},
                },
            }
        ),
        OK,
        None,
        {"challenge_ts": T0, "hostname": "localhost"},
        id="friendly-v2-200-success-offset-and-port",
    ),
    # Trap: token errors come with 200 and success false.
    pytest.param(
        "friendly_v2",
        200,
        fc_v2_error("response_invalid"),
        NO,
        E.INVALID_INPUT_RESPONSE,
        {},
        id="friendly-v2-200-response-invalid",
    ),
    pytest.param(
        "friendly_v2",
        200,
        fc_v2_error("response_timeout"),
        NO,
        E.TIMEOUT_OR_DUPLICATE,
        {},
        id="friendly-v2-200-response-timeout",
    ),
    pytest.param(
        "friendly_v2",
        200,
        fc_v2_error("response_duplicate"),
        NO,
        E.TIMEOUT_OR_DUPLICATE,
        {},
        id="friendly-v2-200-response-duplicate",
    ),
    # Trap: our configuration (401) and our request (400) -> unverifiable.
    pytest.param(
        "friendly_v2",
        401,
        fc_v2_error("auth_required"),
        UNSURE,
        E.MISSING_INPUT_SECRET,
        {},
        id="friendly-v2-401-auth-required",
    ),
    pytest.param(
        "friendly_v2",
        401,
        fc_v2_error("auth_invalid"),
        UNSURE,
        E.INVALID_INPUT_SECRET,
        {},
        id="friendly-v2-401-auth-invalid",
    ),
    pytest.param(
        "friendly_v2",
        400,
        fc_v2_error("sitekey_invalid"),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="friendly-v2-400-sitekey-invalid",
    ),
    pytest.param(
        "friendly_v2",
        400,
        fc_v2_error("response_missing"),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="friendly-v2-400-response-missing",
    ),
    pytest.param(
        "friendly_v2",
        400,
        fc_v2_error("bad_request"),
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="friendly-v2-400-bad-request",
    ),
    # Trap (SDK non-strict semantics): an empty or unreadable body is unverifiable, even with 200.
    pytest.param("friendly_v2", 200, b"", UNSURE, E.INTERNAL_ERROR, {}, id="friendly-v2-200-empty"),
    pytest.param("friendly_v2", 200, b"not json", UNSURE, E.INTERNAL_ERROR, {}, id="friendly-v2-200-garbage"),
    pytest.param("friendly_v2", 500, b"", UNSURE, E.INTERNAL_ERROR, {}, id="friendly-v2-500-empty"),
    pytest.param(
        "friendly_v2",
        502,
        b"<html>Bad Gateway</html>",
        UNSURE,
        E.INTERNAL_ERROR,
        {},
        id="friendly-v2-502-html",
    ),
]


@pytest.mark.parametrize(("kind", "status", "body", "verdict", "code", "metadata"), INTERPRET_CASES)
def test_interpret(
    kind: str,
    status: int,
    body: bytes,
    verdict: Verdict,
    code: ErrorCode | None,
    metadata: dict[str, object],
) -> None:
    answer = make(kind).interpret(status, body)
    assert answer.verdict is verdict, answer.reason
    assert answer.error_code is code
    # Every metadata field not named in the row must be unknown (None), not guessed.
    assert {name: getattr(answer, name) for name in METADATA} == {
        name: metadata.get(name) for name in METADATA
    }
    if answer.challenge_ts is not None:
        assert answer.challenge_ts.tzinfo is not None
    # Whatever the provider said, the reason that goes to logs never carries our secret or the token.
    for value in (SECRET, TOKEN, FRIENDLY_V1_TOKEN):
        assert value not in answer.reason


# Providers that echo what they were sent in free-text fields must not get it into our logs.
ECHOING_BODIES = [
    pytest.param(
        "captchacat", 200, j({"success": False, "token": TOKEN, "api_key": SECRET}), id="captchacat"
    ),
    pytest.param("byebot", 500, j({"message": f"bad api_key {SECRET} for token {TOKEN}"}), id="byebot"),
    pytest.param(
        "swetrix", 400, swetrix_error(400, f"Token {TOKEN} rejected for secret {SECRET}"), id="swetrix"
    ),
    pytest.param(
        "swetrix", 400, swetrix_error(400, [f"token {TOKEN}", f"secret {SECRET}"]), id="swetrix-array"
    ),
    pytest.param(
        "ycaptcha", 200, j({"success": False, "error": f"Invalid token {TOKEN} / {SECRET}"}), id="ycaptcha"
    ),
    pytest.param(
        "friendly_v1",
        200,
        j({"success": False, "errors": ["solution_invalid"], "details": f"{FRIENDLY_V1_TOKEN} {SECRET}"}),
        id="friendly-v1",
    ),
    pytest.param(
        "friendly_v2",
        401,
        j({"success": False, "error": {"error_code": "auth_invalid", "detail": f"key {SECRET} for {TOKEN}"}}),
        id="friendly-v2",
    ),
]


@pytest.mark.parametrize(("kind", "status", "body"), ECHOING_BODIES)
def test_reason_never_echoes_secret_or_token(kind: str, status: int, body: bytes) -> None:
    answer = make(kind).interpret(status, body)
    assert answer.verdict is not Verdict.VERIFIED
    for value in (SECRET, TOKEN, FRIENDLY_V1_TOKEN):
        assert value not in answer.reason


# ---- build_call: URL, JSON field names and headers exactly as docs/providers/ documents them ---

BUILD_CASES = [
    pytest.param(
        "captchacat",
        TOKEN,
        SITEKEY,
        "https://challenge.captchacat.com/validate_token",
        {"api_key": SECRET, "token": TOKEN},
        {},
        id="captchacat",
    ),
    pytest.param(
        "byebot",
        TOKEN,
        SITEKEY,
        "https://challenge.byebot.de/validate_token",
        {"api_key": SECRET, "token": TOKEN},
        {},
        id="byebot",
    ),
    pytest.param(
        "swetrix",
        TOKEN,
        SWETRIX_PID,
        "https://api.swetrixcaptcha.com/v1/captcha/validate",
        {"token": TOKEN, "secret": SECRET},
        {},
        id="swetrix",
    ),
    pytest.param(
        "ycaptcha",
        TOKEN,
        "pk_" + "a" * 32,
        "https://ycaptcha.xyspg.moe/api/v0/captcha/siteverify",
        {"token": TOKEN, "secretKey": SECRET},
        {},
        id="ycaptcha",
    ),
    # Friendly v1: `sitekey` is sent only when given (the provider then checks the puzzle's site key).
    pytest.param(
        "friendly_v1",
        FRIENDLY_V1_TOKEN,
        SITEKEY,
        "https://api.friendlycaptcha.com/api/v1/siteverify",
        {"solution": FRIENDLY_V1_TOKEN, "secret": SECRET, "sitekey": SITEKEY},
        {},
        id="friendly-v1-with-sitekey",
    ),
    pytest.param(
        "friendly_v1",
        FRIENDLY_V1_TOKEN,
        None,
        "https://api.friendlycaptcha.com/api/v1/siteverify",
        {"solution": FRIENDLY_V1_TOKEN, "secret": SECRET},
        {},
        id="friendly-v1-without-sitekey",
    ),
    # Friendly v2: the secret travels in X-API-Key, never in the JSON body.
    pytest.param(
        "friendly_v2",
        TOKEN,
        SITEKEY,
        "https://global.frcapi.com/api/v2/captcha/siteverify",
        {"response": TOKEN, "sitekey": SITEKEY},
        {"X-API-Key": SECRET},
        id="friendly-v2-with-sitekey",
    ),
    pytest.param(
        "friendly_v2",
        TOKEN,
        None,
        "https://global.frcapi.com/api/v2/captcha/siteverify",
        {"response": TOKEN},
        {"X-API-Key": SECRET},
        id="friendly-v2-without-sitekey",
    ),
]


@pytest.mark.parametrize(("kind", "token", "sitekey", "url", "payload", "headers"), BUILD_CASES)
def test_build_call(
    kind: str, token: str, sitekey: str | None, url: str, payload: dict[str, str], headers: dict[str, str]
) -> None:
    call = make(kind).build_call(token, SECRET, sitekey)
    assert call.url == url
    assert dict(call.json) == payload
    assert dict(call.headers) == headers
    # The call must be JSON-serialisable as is (yCAPTCHA reads JSON only).
    assert json.loads(json.dumps(dict(call.json))) == payload


def test_friendly_v2_secret_not_in_json_body() -> None:
    call = make("friendly_v2").build_call(TOKEN, SECRET, SITEKEY)
    assert SECRET not in json.dumps(dict(call.json))
    assert "secret" not in call.json
    assert call.headers["X-API-Key"] == SECRET


# ---- adapter_for --------------------------------------------------------------------------------

ADAPTER_CASES = [
    pytest.param(
        "captchacat",
        None,
        CaptchaCatAdapter,
        "https://challenge.captchacat.com/validate_token",
        id="captchacat",
    ),
    pytest.param("byebot", None, ByeBotAdapter, "https://challenge.byebot.de/validate_token", id="byebot"),
    pytest.param(
        "swetrix", None, SwetrixAdapter, "https://api.swetrixcaptcha.com/v1/captcha/validate", id="swetrix"
    ),
    pytest.param(
        "ycaptcha",
        None,
        YCaptchaAdapter,
        "https://ycaptcha.xyspg.moe/api/v0/captcha/siteverify",
        id="ycaptcha",
    ),
    # FRIENDLY_API_VERSION defaults to v1.
    pytest.param(
        "friendlycaptcha",
        None,
        FriendlyV1Adapter,
        "https://api.friendlycaptcha.com/api/v1/siteverify",
        id="friendly-default-v1",
    ),
    pytest.param(
        "friendlycaptcha",
        FriendlyApiVersion.V1,
        FriendlyV1Adapter,
        "https://api.friendlycaptcha.com/api/v1/siteverify",
        id="friendly-v1",
    ),
    pytest.param(
        "friendlycaptcha",
        FriendlyApiVersion.V2,
        FriendlyV2Adapter,
        "https://global.frcapi.com/api/v2/captcha/siteverify",
        id="friendly-v2",
    ),
    pytest.param(
        "turnstile",
        None,
        TurnstileAdapter,
        "https://challenges.cloudflare.com/turnstile/v0/siteverify",
        id="turnstile",
    ),
]


def test_every_registered_provider_has_its_adapter_case() -> None:
    assert {case.values[0] for case in ADAPTER_CASES} == set(PROVIDERS)
    assert {case.values[0] for case in OVERRIDE_URLS} == set(PROVIDERS)


@pytest.mark.parametrize(("provider", "version", "kind", "url"), ADAPTER_CASES)
def test_adapter_for_defaults(
    provider: str, version: FriendlyApiVersion | None, kind: type[Adapter], url: str
) -> None:
    config = settings() if version is None else settings(friendly_api_version=version)
    adapter = adapter_for(provider, config)
    assert type(adapter) is kind
    assert adapter.verify_url == url
    assert adapter.build_call(FRIENDLY_V1_TOKEN, SECRET, None).url == url


OVERRIDE_URLS = [
    pytest.param("captchacat", None, "http://127.0.0.1:9001/validate_token", id="captchacat-sandbox"),
    pytest.param("byebot", None, "http://127.0.0.1:9002/validate_token", id="byebot-sandbox"),
    # Self-hosted Swetrix: <base>/backend/v1/captcha/validate.
    pytest.param(
        "swetrix", None, "https://captcha.example.org/backend/v1/captcha/validate", id="swetrix-self-hosted"
    ),
    pytest.param("ycaptcha", None, "http://127.0.0.1:9004/api/v0/captcha/siteverify", id="ycaptcha-sandbox"),
    pytest.param(
        "friendlycaptcha",
        FriendlyApiVersion.V1,
        "https://eu-api.friendlycaptcha.eu/api/v1/siteverify",
        id="friendly-v1-eu",
    ),
    pytest.param(
        "friendlycaptcha",
        FriendlyApiVersion.V2,
        "https://eu.frcapi.com/api/v2/captcha/siteverify",
        id="friendly-v2-eu",
    ),
    pytest.param("turnstile", None, "http://127.0.0.1:9006/turnstile/v0/siteverify", id="turnstile-sandbox"),
]


@pytest.mark.parametrize(("provider", "version", "url"), OVERRIDE_URLS)
def test_adapter_for_honours_provider_verify_url(
    provider: str, version: FriendlyApiVersion | None, url: str
) -> None:
    extra = {} if version is None else {"friendly_api_version": version}
    adapter = adapter_for(provider, settings(provider_verify_url=url, **extra))
    assert adapter.verify_url == url
    assert adapter.build_call(FRIENDLY_V1_TOKEN, SECRET, None).url == url
    assert url != type(adapter).default_url


@pytest.mark.parametrize(
    ("env", "kind", "url"),
    [
        pytest.param(
            {"FRIENDLY_API_VERSION": "v2"},
            FriendlyV2Adapter,
            "https://global.frcapi.com/api/v2/captcha/siteverify",
            id="env-v2",
        ),
        pytest.param(
            {
                "FRIENDLY_API_VERSION": "V2",
                "PROVIDER_VERIFY_URL": "https://eu.frcapi.com/api/v2/captcha/siteverify",
            },
            FriendlyV2Adapter,
            "https://eu.frcapi.com/api/v2/captcha/siteverify",
            id="env-v2-eu",
        ),
        pytest.param(
            {}, FriendlyV1Adapter, "https://api.friendlycaptcha.com/api/v1/siteverify", id="env-unset-v1"
        ),
    ],
)
def test_adapter_for_from_environment(env: dict[str, str], kind: type[Adapter], url: str) -> None:
    config = Settings.from_env(
        {
            "CHALLENGE_TABLE_NAME": "t",
            "PROVIDER_SECRET_ID": "s",
            "SUBMISSION_BUS_NAME": "b",
            "IDEMPOTENCY_TABLE_NAME": "i",
            **env,
        }
    )
    adapter = adapter_for("friendlycaptcha", config)
    assert type(adapter) is kind
    assert adapter.verify_url == url


@pytest.mark.parametrize("name", ["recaptcha", "", "CaptchaCat", "friendly", "friendlycaptcha_v2"])
def test_adapter_for_unknown_provider(name: str) -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        adapter_for(name, settings())


def test_every_documented_provider_has_an_adapter() -> None:
    names = {adapter_for(name, settings()).name for name in PROVIDERS}
    assert names == set(PROVIDERS)


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        pytest.param("captchacat", ("captchacat-token",), id="captchacat"),
        pytest.param("byebot", ("byebot-token",), id="byebot"),
        pytest.param("swetrix", ("swetrix-captcha-response",), id="swetrix"),
        pytest.param("ycaptcha", ("ycaptcha-response",), id="ycaptcha"),
        pytest.param("friendly_v1", ("frc-captcha-solution",), id="friendly-v1"),
        pytest.param("friendly_v2", ("frc-captcha-response",), id="friendly-v2"),
    ],
)
def test_widget_token_fields(kind: str, fields: tuple[str, ...]) -> None:
    assert make(kind).token_fields == fields


# ---- cheap checks: token and secret shape, retry statuses ----------------------------------------

TOKEN_REJECTIONS = [
    # Trap: yCAPTCHA tokens are exactly 64 chars of [A-Za-z0-9_-]; anything else costs no call.
    pytest.param("ycaptcha", "a" * 63, E.INVALID_INPUT_RESPONSE, id="ycaptcha-63-chars"),
    pytest.param("ycaptcha", "a" * 65, E.INVALID_INPUT_RESPONSE, id="ycaptcha-65-chars"),
    pytest.param("ycaptcha", "a" * 63 + ".", E.INVALID_INPUT_RESPONSE, id="ycaptcha-dot"),
    pytest.param("ycaptcha", "a" * 63 + "+", E.INVALID_INPUT_RESPONSE, id="ycaptcha-plus"),
    pytest.param("ycaptcha", "a" * 63 + "é", E.INVALID_INPUT_RESPONSE, id="ycaptcha-non-ascii"),
    # Trap: Friendly v1 widget placeholders mean the puzzle was never solved -> missing-input-response.
    pytest.param("friendly_v1", ".UNSTARTED", E.MISSING_INPUT_RESPONSE, id="friendly-v1-UNSTARTED"),
    pytest.param("friendly_v1", ".FETCHING", E.MISSING_INPUT_RESPONSE, id="friendly-v1-FETCHING"),
    pytest.param("friendly_v1", ".UNFINISHED", E.MISSING_INPUT_RESPONSE, id="friendly-v1-UNFINISHED"),
    pytest.param("friendly_v1", ".EXPIRED", E.MISSING_INPUT_RESPONSE, id="friendly-v1-EXPIRED"),
    pytest.param("friendly_v1", ".ERROR", E.MISSING_INPUT_RESPONSE, id="friendly-v1-ERROR"),
    pytest.param("friendly_v1", ".HEADLESS_ERROR", E.MISSING_INPUT_RESPONSE, id="friendly-v1-HEADLESS_ERROR"),
    # Trap: a real v1 solution has four dot-separated parts.
    pytest.param("friendly_v1", "abcdef", E.INVALID_INPUT_RESPONSE, id="friendly-v1-one-part"),
    pytest.param("friendly_v1", "a.b.c", E.INVALID_INPUT_RESPONSE, id="friendly-v1-three-parts"),
    pytest.param("friendly_v1", "a.b.c.d.e", E.INVALID_INPUT_RESPONSE, id="friendly-v1-five-parts"),
    pytest.param("friendly_v1", "a.b c.d", E.INVALID_INPUT_RESPONSE, id="friendly-v1-whitespace"),
    # v2 widgets use the same placeholders before completion; v2 responses are at most 16 KB.
    pytest.param("friendly_v2", ".UNFINISHED", E.MISSING_INPUT_RESPONSE, id="friendly-v2-placeholder"),
    pytest.param("friendly_v2", "x" * (16 * 1024 + 1), E.INVALID_INPUT_RESPONSE, id="friendly-v2-over-16kb"),
    pytest.param("captchacat", "tok en", E.INVALID_INPUT_RESPONSE, id="captchacat-whitespace"),
    pytest.param("swetrix", "tok\x00en", E.INVALID_INPUT_RESPONSE, id="swetrix-control-char"),
]


@pytest.mark.parametrize(("kind", "token", "code"), TOKEN_REJECTIONS)
def test_check_token_rejects(kind: str, token: str, code: ErrorCode) -> None:
    with pytest.raises(RequestRejected) as caught:
        make(kind).check_token(token)
    assert caught.value.code is code
    assert token not in caught.value.reason


TOKEN_ACCEPTED = [
    pytest.param("ycaptcha", TOKEN, id="ycaptcha-64-chars"),
    pytest.param("ycaptcha", "A-z_09" * 10 + "abcd", id="ycaptcha-all-classes"),
    pytest.param("friendly_v1", FRIENDLY_V1_TOKEN, id="friendly-v1-four-parts"),
    pytest.param("friendly_v2", "x" * (16 * 1024), id="friendly-v2-16kb"),
    pytest.param("friendly_v2", TOKEN, id="friendly-v2"),
    pytest.param("captchacat", TOKEN, id="captchacat"),
    pytest.param("byebot", "some.opaque-token_value", id="byebot"),
    pytest.param("swetrix", TOKEN, id="swetrix"),
]


@pytest.mark.parametrize(("kind", "token"), TOKEN_ACCEPTED)
def test_check_token_accepts(kind: str, token: str) -> None:
    assert make(kind).check_token(token) is None


# Trap: yCAPTCHA deletes the token before it checks the secret, so a placeholder secret would burn
# the user's token: the secret's shape (sk_ + 32 chars) is checked before anything is sent.
@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("", id="empty"),
        pytest.param("CHANGE_ME", id="placeholder"),
        pytest.param("sk_" + "a" * 31, id="too-short"),
        pytest.param("sk_" + "a" * 33, id="too-long"),
        pytest.param("pk_" + "a" * 32, id="site-key-instead"),
        pytest.param("SK_" + "a" * 32, id="wrong-prefix-case"),
        pytest.param(" sk_" + "a" * 32, id="leading-space"),
        pytest.param("sk_" + "a" * 31 + "!", id="bad-char"),
    ],
)
def test_ycaptcha_check_secret_refuses_misshaped(secret: str) -> None:
    answer = make("ycaptcha").check_secret(secret)
    assert answer is not None
    assert answer.verdict is Verdict.UNVERIFIABLE
    assert answer.error_code is ErrorCode.INVALID_INPUT_SECRET
    if secret:
        assert secret not in answer.reason


def test_ycaptcha_check_secret_accepts_well_shaped() -> None:
    assert make("ycaptcha").check_secret(SECRET) is None
    assert make("ycaptcha").check_secret("sk_" + "A-z_09ab" * 4) is None


@pytest.mark.parametrize("kind", ["captchacat", "byebot", "swetrix", "friendly_v1", "friendly_v2"])
def test_other_providers_do_not_judge_the_secret_shape(kind: str) -> None:
    # Their secret format is undocumented; refusing a real one would lock every user out.
    assert make(kind).check_secret("any-opaque-secret") is None


@pytest.mark.parametrize(
    ("kind", "statuses"),
    [
        # Trap: yCAPTCHA restores the token on 500, so only 500 is safe to retry.
        pytest.param("ycaptcha", frozenset({500}), id="ycaptcha"),
        pytest.param("captchacat", frozenset(), id="captchacat"),
        pytest.param("byebot", frozenset(), id="byebot"),
        pytest.param("swetrix", frozenset(), id="swetrix"),
        pytest.param("friendly_v1", frozenset(), id="friendly-v1"),
        pytest.param("friendly_v2", frozenset(), id="friendly-v2"),
    ],
)
def test_retry_statuses(kind: str, statuses: frozenset[int]) -> None:
    assert make(kind).retry_statuses == statuses


# ---- policy.decide -----------------------------------------------------------------------------

VERIFIED = ProviderAnswer.verified(sitekey=SITEKEY)
REJECTED_DUP = ProviderAnswer.rejected(ErrorCode.TIMEOUT_OR_DUPLICATE, "used")
REJECTED_INVALID = ProviderAnswer.rejected(ErrorCode.INVALID_INPUT_RESPONSE, "invalid")
UNSURE_SECRET = ProviderAnswer.unverifiable("bad secret", ErrorCode.INVALID_INPUT_SECRET)
UNSURE_MISSING_SECRET = ProviderAnswer.unverifiable("no secret", ErrorCode.MISSING_INPUT_SECRET)
UNSURE_INTERNAL = ProviderAnswer.unverifiable("timeout")

CLOSED, OPEN = FailurePolicy.CLOSED, FailurePolicy.OPEN

DECIDE_CASES = [
    pytest.param(VERIFIED, CLOSED, Outcome.VERIFIED, None, 200, id="verified-closed"),
    pytest.param(VERIFIED, OPEN, Outcome.VERIFIED, None, 200, id="verified-open"),
    pytest.param(REJECTED_DUP, CLOSED, Outcome.REJECTED, E.TIMEOUT_OR_DUPLICATE, 400, id="rejected-closed"),
    # A token rejection is always a rejection, even under the open policy.
    pytest.param(REJECTED_DUP, OPEN, Outcome.REJECTED, E.TIMEOUT_OR_DUPLICATE, 400, id="rejected-dup-open"),
    pytest.param(
        REJECTED_INVALID, OPEN, Outcome.REJECTED, E.INVALID_INPUT_RESPONSE, 400, id="rejected-invalid-open"
    ),
    # Closed: could-not-verify fails with the answer's own code.
    pytest.param(
        UNSURE_SECRET, CLOSED, Outcome.FAILED, E.INVALID_INPUT_SECRET, 500, id="unsure-secret-closed"
    ),
    pytest.param(
        UNSURE_MISSING_SECRET, CLOSED, Outcome.FAILED, E.MISSING_INPUT_SECRET, 500, id="unsure-missing-closed"
    ),
    pytest.param(UNSURE_INTERNAL, CLOSED, Outcome.FAILED, E.INTERNAL_ERROR, 502, id="unsure-internal-closed"),
    # Open: could-not-verify is a degraded success.
    pytest.param(UNSURE_SECRET, OPEN, Outcome.DEGRADED, None, 200, id="unsure-secret-open"),
    pytest.param(UNSURE_INTERNAL, OPEN, Outcome.DEGRADED, None, 200, id="unsure-internal-open"),
]


@pytest.mark.parametrize(("answer", "policy", "outcome", "code", "http"), DECIDE_CASES)
def test_decide(
    answer: ProviderAnswer, policy: FailurePolicy, outcome: Outcome, code: ErrorCode | None, http: int
) -> None:
    decision = decide(answer, policy)
    assert decision == Decision(outcome, code)
    assert decision.success is (outcome in (Outcome.VERIFIED, Outcome.DEGRADED))
    assert decision.degraded is (outcome is Outcome.DEGRADED)
    assert decision.http_status == http
    assert decision.error_codes == ([code.value] if code else [])


# End to end through an adapter: what the user gets for a real provider answer under each policy.
CHAIN_CASES = [
    pytest.param(
        "ycaptcha",
        200,
        j({"success": False, "error": "Invalid secretKey"}),
        CLOSED,
        Outcome.FAILED,
        ["invalid-input-secret"],
        id="ycaptcha-bad-secret-closed",
    ),
    pytest.param(
        "ycaptcha",
        200,
        j({"success": False, "error": "Invalid secretKey"}),
        OPEN,
        Outcome.DEGRADED,
        [],
        id="ycaptcha-bad-secret-open",
    ),
    pytest.param("byebot", 503, b"", OPEN, Outcome.DEGRADED, [], id="byebot-503-open"),
    pytest.param(
        "byebot", 400, b"", OPEN, Outcome.REJECTED, ["invalid-input-response"], id="byebot-400-open"
    ),
    pytest.param(
        "swetrix",
        400,
        swetrix_error(400, "Token already used"),
        OPEN,
        Outcome.REJECTED,
        ["timeout-or-duplicate"],
        id="swetrix-used-open",
    ),
    pytest.param(
        "friendly_v2",
        200,
        b"",
        OPEN,
        Outcome.DEGRADED,
        [],
        id="friendly-v2-empty-200-open",
    ),
    pytest.param(
        "friendly_v2",
        200,
        b"",
        CLOSED,
        Outcome.FAILED,
        ["internal-error"],
        id="friendly-v2-empty-200-closed",
    ),
    pytest.param(
        "friendly_v1",
        401,
        fc_v1(False, "secret_invalid"),
        CLOSED,
        Outcome.FAILED,
        ["invalid-input-secret"],
        id="friendly-v1-secret-invalid-closed",
    ),
]


@pytest.mark.parametrize(("kind", "status", "body", "policy", "outcome", "codes"), CHAIN_CASES)
def test_interpret_then_decide(
    kind: str, status: int, body: bytes, policy: FailurePolicy, outcome: Outcome, codes: list[str]
) -> None:
    decision = decide(make(kind).interpret(status, body), policy)
    assert decision.outcome is outcome
    assert decision.error_codes == codes


# ---- policy.bind_sitekey -----------------------------------------------------------------------


def test_bind_sitekey_mismatch_is_a_rejection() -> None:
    bound = bind_sitekey(VERIFIED, "ffffffffffffffffffff")
    assert bound.verdict is Verdict.REJECTED
    assert bound.error_code is ErrorCode.SITEKEY_MISMATCH
    assert decide(bound, FailurePolicy.OPEN) == Decision(Outcome.REJECTED, ErrorCode.SITEKEY_MISMATCH)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(VERIFIED, SITEKEY, id="equal"),
        pytest.param(VERIFIED, None, id="expected-unset"),
        pytest.param(VERIFIED, "", id="expected-empty"),
        # The provider reports no site key (yCAPTCHA, Captcha Cat's empty body): nothing to bind.
        pytest.param(ProviderAnswer.verified(), SITEKEY, id="provider-reports-none"),
        pytest.param(REJECTED_DUP, SITEKEY, id="rejection-untouched"),
        pytest.param(UNSURE_INTERNAL, SITEKEY, id="unverifiable-untouched"),
    ],
)
def test_bind_sitekey_unchanged(answer: ProviderAnswer, expected: str | None) -> None:
    assert bind_sitekey(answer, expected) == answer


@pytest.mark.parametrize(
    ("kind", "body", "expected", "verdict"),
    [
        # Swetrix binds on the project id (pid).
        pytest.param(
            "swetrix",
            j(
                {
                    "success": True,
                    "data": {"challenge": "ab" * 32, "timestamp": T0_MILLIS, "pid": SWETRIX_PID},
                }
            ),
            "OtherProj-99",
            Verdict.REJECTED,
            id="swetrix-other-pid",
        ),
        pytest.param(
            "swetrix",
            j(
                {
                    "success": True,
                    "data": {"challenge": "ab" * 32, "timestamp": T0_MILLIS, "pid": SWETRIX_PID},
                }
            ),
            SWETRIX_PID,
            Verdict.VERIFIED,
            id="swetrix-same-pid",
        ),
        pytest.param(
            "byebot", BYEBOT_BODY, "ffffffffffffffffffff", Verdict.REJECTED, id="byebot-other-sitekey"
        ),
        pytest.param("captchacat", b"", "ffffffffffffffffffff", Verdict.VERIFIED, id="captchacat-empty-body"),
        pytest.param(
            "ycaptcha", j({"success": True}), "pk_" + "b" * 32, Verdict.VERIFIED, id="ycaptcha-no-meta"
        ),
    ],
)
def test_bind_sitekey_after_interpret(kind: str, body: bytes, expected: str, verdict: Verdict) -> None:
    bound = bind_sitekey(make(kind).interpret(200, body), expected)
    assert bound.verdict is verdict
    assert bound.error_code is (ErrorCode.SITEKEY_MISMATCH if verdict is Verdict.REJECTED else None)
