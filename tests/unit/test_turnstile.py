"""The Cloudflare Turnstile adapter: Cloudflare's siteverify protocol, mapped onto the project's answers.

Pure: every documented reply and every hostile one is a row here, with no HTTP and no mocks. The
hostname binding is the layer's origin binding (policy.bind_origin), tested through it.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

import pytest
from captcha_verify.config import FailurePolicy, parse_origins
from captcha_verify.outcome import ErrorCode, ProviderAnswer, RequestRejected, Verdict
from captcha_verify.policy import Outcome, bind_origin, bind_sitekey, decide
from captcha_verify.providers.turnstile import TurnstileAdapter, idempotency_key
from hypothesis import given, settings
from hypothesis import strategies as st

# Distinctive values, so a leak cannot be a coincidence.
SECRET = "0x4AAAAAAAS3cr3tCanary-Q7zRQ7zRQ7zR"
TOKEN = "0.tK9wZ" + "tK9w" * 120 + ".c4n4ry"
URL = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
T0 = datetime(2022, 2, 28, 15, 14, 30, 96_000, tzinfo=UTC)

OK, NO, UNSURE = Verdict.VERIFIED, Verdict.REJECTED, Verdict.UNVERIFIABLE
E = ErrorCode


def adapter(url: str = URL) -> TurnstileAdapter:
    return TurnstileAdapter(url)


def j(value: object) -> bytes:
    return json.dumps(value).encode()


def failure(*codes: object) -> bytes:
    return j({"success": False, "error-codes": list(codes)})


# Cloudflare's documented success reply, and the one with Enterprise metadata.
DOCUMENTED_SUCCESS = {
    "success": True,
    "challenge_ts": "2022-02-28T15:14:30.096Z",
    "hostname": "example.com",
    "error-codes": [],
    "action": "login",
    "cdata": "sessionid-123456789",
}


# ---- build_call -------------------------------------------------------------------------------


def test_build_call_sends_secret_response_and_idempotency_key_as_documented() -> None:
    call = adapter().build_call(TOKEN, SECRET, "0x4AAAAAAAsitekey")
    assert call.url == URL
    assert dict(call.json) == {"secret": SECRET, "response": TOKEN, "idempotency_key": idempotency_key(TOKEN)}
    # The site key is not a siteverify parameter, and the secret travels in the body only.
    assert call.headers == {}


def test_build_call_uses_the_configured_url() -> None:
    call = adapter("http://127.0.0.1:3001/turnstile/turnstile/v0/siteverify").build_call(TOKEN, SECRET, None)
    assert call.url == "http://127.0.0.1:3001/turnstile/turnstile/v0/siteverify"


def test_default_url_and_widget_field() -> None:
    assert TurnstileAdapter.default_url == URL
    assert TurnstileAdapter.token_fields == ("cf-turnstile-response",)
    assert TurnstileAdapter.name == "turnstile"


def test_idempotency_key_is_a_uuid_stable_per_token() -> None:
    key = idempotency_key(TOKEN)
    assert uuid.UUID(key).version == 5
    assert str(uuid.UUID(key)) == key  # canonical lowercase, hyphenated form
    # Another instance (another cold start) derives the same key; another token another key.
    assert adapter().build_call(TOKEN, "other", None).json["idempotency_key"] == key
    assert idempotency_key(TOKEN + "x") != key
    assert idempotency_key("XXXX.DUMMY.TOKEN.XXXX") != key


def test_idempotency_key_reveals_neither_token_nor_secret() -> None:
    key = idempotency_key(TOKEN)
    assert TOKEN not in key and SECRET not in key
    assert "tK9w" not in key


# ---- cheap checks: token and secret shape -------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["XXXX.DUMMY.TOKEN.XXXX", TOKEN, "x" * 2048, "0.a-b_c.D~E+F/G="],
    ids=["dummy", "realistic", "2048", "punctuation"],
)
def test_check_token_accepts_printable_tokens_up_to_2048(token: str) -> None:
    adapter().check_token(token)


@pytest.mark.parametrize(
    "token",
    ["x" * 2049, "x" * 16 * 1024, "tok en", "tok\nen", "tökén", "tok\x00en"],
    ids=["2049", "16k", "space", "newline", "non-ascii", "nul"],
)
def test_check_token_refuses_what_cloudflare_never_issues(token: str) -> None:
    with pytest.raises(RequestRejected) as raised:
        adapter().check_token(token)
    assert raised.value.code is E.INVALID_INPUT_RESPONSE


@pytest.mark.parametrize(
    "secret",
    ["1x0000000000000000000000000000000AA", SECRET, "any-opaque-secret"],
    ids=["test", "real", "opaque"],
)
def test_secret_shape_is_not_judged(secret: str) -> None:
    # Cloudflare documents no secret format: refusing a real one would lock every visitor out.
    assert adapter().check_secret(secret) is None


def test_retries_only_server_errors() -> None:
    assert frozenset({500, 502, 503, 504}) == TurnstileAdapter.retry_statuses


# ---- interpret: every documented reply, and hostile ones ---------------------------------------

ROWS = [
    # (status, body, verdict, code, hostname, challenge_ts)
    pytest.param(200, j(DOCUMENTED_SUCCESS), OK, None, "example.com", T0, id="documented-success"),
    pytest.param(
        200,
        j({**DOCUMENTED_SUCCESS, "metadata": {"ephemeral_id": "x:9f78e0ed210960d7693b167e"}}),
        OK,
        None,
        "example.com",
        T0,
        id="success-with-metadata",
    ),
    pytest.param(
        200,
        j(
            {
                "success": True,
                "error-codes": [],
                "challenge_ts": "2022-10-06T00:07:23.274Z",
                "hostname": "x.io",
            }
        ),
        OK,
        None,
        "x.io",
        datetime(2022, 10, 6, 0, 7, 23, 274_000, tzinfo=UTC),
        id="curl-example",
    ),
    pytest.param(200, j({"success": True}), OK, None, None, None, id="success-bare"),
    pytest.param(
        200, j({**DOCUMENTED_SUCCESS, "hostname": ""}), OK, None, None, T0, id="success-empty-hostname"
    ),
    pytest.param(
        200, j({**DOCUMENTED_SUCCESS, "hostname": None}), OK, None, None, T0, id="success-null-hostname"
    ),
    pytest.param(
        200,
        j({**DOCUMENTED_SUCCESS, "challenge_ts": "yesterday"}),
        OK,
        None,
        "example.com",
        None,
        id="bad-ts",
    ),
    pytest.param(
        200, j({**DOCUMENTED_SUCCESS, "challenge_ts": 1646061270}), OK, None, "example.com", None, id="ts-int"
    ),
    # A success is what "success" says, whatever else the body carries.
    pytest.param(
        200,
        j({**DOCUMENTED_SUCCESS, "error-codes": ["internal-error"]}),
        OK,
        None,
        "example.com",
        T0,
        id="success-with-stray-code",
    ),
    # A hostname that cannot be a page's is an unreadable success: never bound, never accepted as is.
    pytest.param(
        200, j({**DOCUMENTED_SUCCESS, "hostname": 42}), UNSURE, E.INTERNAL_ERROR, None, None, id="host-int"
    ),
    pytest.param(
        200,
        j({**DOCUMENTED_SUCCESS, "hostname": ["a"]}),
        UNSURE,
        E.INTERNAL_ERROR,
        None,
        None,
        id="host-list",
    ),
    pytest.param(
        200,
        j({**DOCUMENTED_SUCCESS, "hostname": "a" * 254}),
        UNSURE,
        E.INTERNAL_ERROR,
        None,
        None,
        id="host-254",
    ),
    pytest.param(
        200,
        j({**DOCUMENTED_SUCCESS, "hostname": "ex ample.com"}),
        UNSURE,
        E.INTERNAL_ERROR,
        None,
        None,
        id="host-sp",
    ),
    # Token rejections: the visitor's token, under either policy.
    pytest.param(
        200, failure("invalid-input-response"), NO, E.INVALID_INPUT_RESPONSE, None, None, id="invalid"
    ),
    pytest.param(200, failure("timeout-or-duplicate"), NO, E.TIMEOUT_OR_DUPLICATE, None, None, id="spent"),
    # Cloudflare did not judge the token: our secret, our request, or its own fault.
    pytest.param(
        200, failure("missing-input-secret"), UNSURE, E.MISSING_INPUT_SECRET, None, None, id="no-secret"
    ),
    pytest.param(
        200, failure("invalid-input-secret"), UNSURE, E.INVALID_INPUT_SECRET, None, None, id="bad-secret"
    ),
    pytest.param(
        200, failure("missing-input-response"), UNSURE, E.INTERNAL_ERROR, None, None, id="no-response"
    ),
    pytest.param(200, failure("bad-request"), UNSURE, E.INTERNAL_ERROR, None, None, id="bad-request"),
    pytest.param(200, failure("internal-error"), UNSURE, E.INTERNAL_ERROR, None, None, id="internal-error"),
    # The HTTP status of a failure is undocumented: the codes decide, whatever it is.
    pytest.param(
        400, failure("invalid-input-response"), NO, E.INVALID_INPUT_RESPONSE, None, None, id="400-invalid"
    ),
    pytest.param(400, failure("bad-request"), UNSURE, E.INTERNAL_ERROR, None, None, id="400-bad-request"),
    pytest.param(
        401, failure("invalid-input-secret"), UNSURE, E.INVALID_INPUT_SECRET, None, None, id="401-secret"
    ),
    pytest.param(500, failure("internal-error"), UNSURE, E.INTERNAL_ERROR, None, None, id="500-internal"),
    # Several codes: one saying the token was not judged wins, so a configuration fault is not blamed
    # on the visitor, and is reported under its own code.
    pytest.param(
        200,
        failure("invalid-input-response", "invalid-input-secret"),
        UNSURE,
        E.INVALID_INPUT_SECRET,
        None,
        None,
        id="token-and-secret",
    ),
    pytest.param(
        200,
        failure("timeout-or-duplicate", "internal-error"),
        UNSURE,
        E.INTERNAL_ERROR,
        None,
        None,
        id="spent-and-internal",
    ),
    pytest.param(
        200,
        failure("some-new-code", "timeout-or-duplicate"),
        NO,
        E.TIMEOUT_OR_DUPLICATE,
        None,
        None,
        id="new+spent",
    ),
    # Failures Cloudflare does not explain are never a verdict on the token.
    pytest.param(200, failure(), UNSURE, E.INTERNAL_ERROR, None, None, id="failure-no-codes"),
    pytest.param(200, j({"success": False}), UNSURE, E.INTERNAL_ERROR, None, None, id="failure-bare"),
    pytest.param(200, failure("some-new-code"), UNSURE, E.INTERNAL_ERROR, None, None, id="unknown-code"),
    pytest.param(
        200,
        j({"success": False, "error-codes": "invalid-input-response"}),
        UNSURE,
        E.INTERNAL_ERROR,
        None,
        None,
        id="codes-not-a-list",
    ),
    pytest.param(
        200, failure(1, None, {"a": 1}, ["x"]), UNSURE, E.INTERNAL_ERROR, None, None, id="codes-not-strings"
    ),
    pytest.param(
        200, failure("INVALID-INPUT-RESPONSE"), UNSURE, E.INTERNAL_ERROR, None, None, id="codes-case"
    ),
    # Unreadable or off-protocol bodies.
    pytest.param(200, b"", UNSURE, E.INTERNAL_ERROR, None, None, id="200-empty"),
    pytest.param(200, b"<html>challenge</html>", UNSURE, E.INTERNAL_ERROR, None, None, id="200-html"),
    pytest.param(200, j([DOCUMENTED_SUCCESS]), UNSURE, E.INTERNAL_ERROR, None, None, id="200-array"),
    pytest.param(200, j({"success": "true"}), UNSURE, E.INTERNAL_ERROR, None, None, id="success-string"),
    pytest.param(200, j({"success": 1}), UNSURE, E.INTERNAL_ERROR, None, None, id="success-int"),
    pytest.param(200, b"\xff\xfe{", UNSURE, E.INTERNAL_ERROR, None, None, id="bad-utf8"),
    pytest.param(200, b"[" * 100_000, UNSURE, E.INTERNAL_ERROR, None, None, id="deep-nesting"),
    pytest.param(
        200, b'{"success": true, "hostname": NaN}', UNSURE, E.INTERNAL_ERROR, None, None, id="nan-host"
    ),
    # A success only counts on a 200.
    pytest.param(500, j(DOCUMENTED_SUCCESS), UNSURE, E.INTERNAL_ERROR, None, None, id="500-success-body"),
    pytest.param(502, b"<html>Bad gateway</html>", UNSURE, E.INTERNAL_ERROR, None, None, id="502-html"),
    pytest.param(503, b"", UNSURE, E.INTERNAL_ERROR, None, None, id="503-empty"),
    pytest.param(401, b"", UNSURE, E.INVALID_INPUT_SECRET, None, None, id="401-empty"),
    pytest.param(403, b"forbidden", UNSURE, E.INVALID_INPUT_SECRET, None, None, id="403-text"),
    pytest.param(404, failure(), UNSURE, E.INTERNAL_ERROR, None, None, id="404-no-codes"),
]


@pytest.mark.parametrize(("status", "body", "verdict", "code", "hostname", "challenge_ts"), ROWS)
def test_interpret(
    status: int,
    body: bytes,
    verdict: Verdict,
    code: ErrorCode | None,
    hostname: str | None,
    challenge_ts: datetime | None,
) -> None:
    answer = adapter().interpret(status, body)
    assert answer.verdict is verdict, answer.reason
    assert answer.error_code is code
    assert answer.hostname == hostname
    assert answer.challenge_ts == challenge_ts
    # Turnstile reports no site key, solve time, interactivity or origin: nothing is guessed.
    assert (answer.sitekey, answer.solve_time_ms, answer.interactive, answer.origin) == (
        None,
        None,
        None,
        None,
    )
    assert answer.degradable


def test_429_is_the_rate_limit_whatever_the_body() -> None:
    for body in (b"", failure("invalid-input-response"), j(DOCUMENTED_SUCCESS)):
        answer = adapter().answer(429, body)
        assert answer.verdict is UNSURE
        assert answer.degradable is False


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, failure(f"secret {SECRET} token {TOKEN}")),
        (200, failure("invalid-input-response", TOKEN, SECRET)),
        (400, j({"success": False, "error-codes": [], "messages": [SECRET, TOKEN]})),
        (200, j({**DOCUMENTED_SUCCESS, "hostname": f"{TOKEN}{SECRET}" * 3})),
        (500, f"upstream said {SECRET} {TOKEN}".encode()),
    ],
    ids=["unknown-code", "codes-echo", "messages", "hostname-echo", "500-text"],
)
def test_nothing_echoed_by_the_provider_reaches_the_answer(
    status: int, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = adapter().answer(status, body)
    assert answer.verdict is not OK
    for text in (answer.reason, str(answer.hostname), caplog.text):
        assert SECRET not in text and TOKEN not in text


def test_the_call_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    a = adapter()
    a.check_token(TOKEN)
    a.check_secret(SECRET)
    a.build_call(TOKEN, SECRET, None)
    a.answer(200, j(DOCUMENTED_SUCCESS))
    assert caplog.records == []


def test_refusals_do_not_quote_the_token() -> None:
    for token in (TOKEN + " ", TOKEN * 5):
        with pytest.raises(RequestRejected) as raised:
            adapter().check_token(token)
        assert TOKEN not in raised.value.reason and TOKEN not in str(raised.value)


# ---- the failure policy over Turnstile's answers ------------------------------------------------

POLICY_ROWS = [
    # (body, policy, outcome, error code, HTTP status)
    (failure("invalid-input-response"), FailurePolicy.OPEN, Outcome.REJECTED, E.INVALID_INPUT_RESPONSE, 400),
    (failure("timeout-or-duplicate"), FailurePolicy.OPEN, Outcome.REJECTED, E.TIMEOUT_OR_DUPLICATE, 400),
    (failure("internal-error"), FailurePolicy.CLOSED, Outcome.FAILED, E.INTERNAL_ERROR, 502),
    (failure("internal-error"), FailurePolicy.OPEN, Outcome.DEGRADED, None, 200),
    (failure("invalid-input-secret"), FailurePolicy.CLOSED, Outcome.FAILED, E.INVALID_INPUT_SECRET, 500),
    (failure("invalid-input-secret"), FailurePolicy.OPEN, Outcome.DEGRADED, None, 200),
    (failure("missing-input-secret"), FailurePolicy.CLOSED, Outcome.FAILED, E.MISSING_INPUT_SECRET, 500),
    (failure("bad-request"), FailurePolicy.CLOSED, Outcome.FAILED, E.INTERNAL_ERROR, 502),
    (j(DOCUMENTED_SUCCESS), FailurePolicy.CLOSED, Outcome.VERIFIED, None, 200),
]


@pytest.mark.parametrize(("body", "policy", "outcome", "code", "http"), POLICY_ROWS)
def test_failure_policy(
    body: bytes, policy: FailurePolicy, outcome: Outcome, code: ErrorCode | None, http: int
) -> None:
    decision = decide(adapter().answer(200, body), policy)
    assert (decision.outcome, decision.error_code, decision.http_status) == (outcome, code, http)


def test_provider_429_is_never_accepted_even_open() -> None:
    decision = decide(adapter().answer(429, b""), FailurePolicy.OPEN)
    assert (decision.outcome, decision.http_status) == (Outcome.FAILED, 502)


# ---- the hostname bound to ALLOWED_ORIGINS ------------------------------------------------------


def verified_on(hostname: object) -> ProviderAnswer:
    return adapter().interpret(200, j({**DOCUMENTED_SUCCESS, "hostname": hostname}))


@pytest.mark.parametrize(
    ("hostname", "allowed"),
    [
        ("www.example.com", "https://www.example.com"),
        ("WWW.Example.COM", "https://www.example.com"),
        ("www.example.com", "https://WWW.EXAMPLE.COM/"),
        ("www.example.com", "https://shop.example.org,https://www.example.com"),
        ("127.0.0.1", "http://127.0.0.1:3002"),  # a hostname has no port: any port of the host
        ("localhost", "http://localhost:8080"),
        ("www.example.com", "http://www.example.com"),  # nor a scheme
        ("[::1]", "http://[::1]:3002"),
        ("::1", "http://[::1]:3002"),
    ],
)
def test_hostname_of_an_allowed_origin_is_kept(hostname: str, allowed: str) -> None:
    answer = bind_origin(verified_on(hostname), parse_origins(allowed))
    assert answer.verdict is OK
    assert answer.hostname == hostname


@pytest.mark.parametrize(
    ("hostname", "allowed"),
    [
        ("evil.example", "https://www.example.com"),
        ("example.com", "https://www.example.com"),  # the parent domain is another site
        ("www.example.com.evil.example", "https://www.example.com"),
        ("shop.example.com", "https://www.example.com"),
        ("localhost", "http://127.0.0.1:3002"),  # Cloudflare's test secret reports localhost
        ("www.example.com", "not-an-origin"),
        ("www.example.com", "https://[oops"),
    ],
)
def test_hostname_outside_the_allowed_origins_is_a_sitekey_mismatch(hostname: str, allowed: str) -> None:
    answer = bind_origin(verified_on(hostname), parse_origins(allowed))
    assert answer.verdict is NO
    assert answer.error_code is E.SITEKEY_MISMATCH
    decision = decide(answer, FailurePolicy.OPEN)
    assert (decision.outcome, decision.http_status, decision.error_codes) == (
        Outcome.REJECTED,
        400,
        ["sitekey-mismatch"],
    )


def test_any_hostname_when_no_origins_are_configured() -> None:
    assert bind_origin(verified_on("anything.example"), frozenset()).verdict is OK


def test_unknown_hostname_cannot_be_bound() -> None:
    # Like an unknown site key: Cloudflare documents a hostname on every success, so none is rare.
    answer = bind_origin(verified_on(None), parse_origins("https://www.example.com"))
    assert answer.verdict is OK


def test_only_verified_answers_are_bound() -> None:
    rejected = adapter().interpret(200, failure("timeout-or-duplicate"))
    assert bind_origin(rejected, parse_origins("https://www.example.com")) == rejected


def test_sitekey_is_not_bound_for_turnstile() -> None:
    # Turnstile's answer names no site key, so EXPECTED_SITEKEY leaves a verified answer alone.
    answer = verified_on("www.example.com")
    assert bind_sitekey(answer, "0x4AAAAAAAexpected") == answer


def test_a_reported_origin_is_still_bound_whole() -> None:
    # Friendly v2 reports the page's origin: scheme and port count there, not only the host.
    friendly = ProviderAnswer.verified(origin="https://www.example.com:444", hostname="www.example.com")
    assert bind_origin(friendly, parse_origins("https://www.example.com")).error_code is E.SITEKEY_MISMATCH
    same = ProviderAnswer.verified(origin="https://www.example.com", hostname="www.example.com")
    assert bind_origin(same, parse_origins("https://www.example.com")).verdict is OK


# ---- property: interpret never raises -----------------------------------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    ["success", "error-codes", "hostname", "challenge_ts", "action", "cdata", "metadata"]
)
CODES = st.sampled_from(
    [
        "missing-input-secret",
        "invalid-input-secret",
        "missing-input-response",
        "invalid-input-response",
        "bad-request",
        "timeout-or-duplicate",
        "internal-error",
    ]
)
SITEVERIFY_LIKE = st.fixed_dictionaries(
    {"success": st.booleans() | JSON_SCALARS, "error-codes": st.lists(CODES | JSON_SCALARS, max_size=4)},
    optional={
        "hostname": st.text(max_size=300) | JSON_SCALARS,
        "challenge_ts": st.text(max_size=40) | JSON_VALUES,
    },
)
BODIES = (
    st.binary(max_size=512)
    | SITEVERIFY_LIKE.map(lambda value: json.dumps(value).encode())
    | st.dictionaries(FIELDS, JSON_VALUES, max_size=5).map(lambda value: json.dumps(value).encode())
)
ALLOWED_CODES = {None, E.INVALID_INPUT_RESPONSE, E.TIMEOUT_OR_DUPLICATE}
UNSURE_CODES = {E.INTERNAL_ERROR, E.INVALID_INPUT_SECRET, E.MISSING_INPUT_SECRET}


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    status=st.integers(min_value=-1, max_value=1000),
    body=BODIES,
    allowed=st.sampled_from(["", "https://a.io"]),
)
def test_interpret_never_raises_and_stays_in_the_contract(status: int, body: bytes, allowed: str) -> None:
    answer = bind_origin(adapter().answer(status, body), parse_origins(allowed))
    assert isinstance(answer, ProviderAnswer)
    if answer.verdict is OK:
        assert status == 200 and answer.error_code is None
        assert answer.hostname is None or (isinstance(answer.hostname, str) and len(answer.hostname) <= 253)
    elif answer.verdict is NO:
        assert answer.error_code in ALLOWED_CODES | {E.SITEKEY_MISMATCH}
    else:
        assert answer.error_code in UNSURE_CODES
    assert SECRET not in answer.reason and len(answer.reason) < 200
