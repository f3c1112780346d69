"""Regressions through the real handler: the provider's 429, odd provider bodies, Friendly
v2's origin binding, redirect fields, the headers of every answer, and what is logged."""

from __future__ import annotations

import json
from typing import Any

import pytest
from captcha_verify.config import FailurePolicy, FriendlyApiVersion
from captcha_verify.providers import PROVIDERS
from support import ScriptedProvider, event_body, load_event, log_records, with_body
from support.answers import SECRETS, body_of, success_body
from support.aws import HandlerFactory, table_items

ALLOWED = frozenset({"https://www.example.com"})


@pytest.mark.parametrize("policy", list(FailurePolicy))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_provider_429_is_never_accepted(
    provider: str, policy: FailurePolicy, make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler(provider, SECRETS[provider], failure_policy=policy)
    # A 429 whose body even claims success: the status decides.
    provider_server.answer(429, {"success": True}, headers={"Retry-After": "60"})
    response = invoke(load_event(provider, "fetch-json"))
    assert response["statusCode"] == 502 and body_of(response)["success"] is False
    assert body_of(response)["degraded"] is False


@pytest.mark.parametrize(
    ("provider", "body"),
    [
        ("byebot", b'{"success": true, "challenged_at": NaN, "solve_time_ms": Infinity}'),
        ("captchacat", b'{"success": true, "challenged_at": 1e400}'),
        ("swetrix", b'{"success": true, "data": {"timestamp": NaN, "pid": "p"}}'),
        ("byebot", b'{"success": true, "challenged_at": ' + b"9" * 5000 + b"}"),
        ("swetrix", b'{"success": true, "data": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    ],
)
def test_odd_provider_bodies_never_raise(
    provider: str, body: bytes, make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler(provider, SECRETS[provider])
    provider_server.answer(200, body)
    response = invoke(load_event(provider, "fetch-json"))
    assert response["statusCode"] in (200, 502)
    assert body_of(response)["error-codes"] in ([], ["internal-error"])


def friendly_v2_verified(origin: str) -> dict[str, Any]:
    return {
        "success": True,
        "data": {"challenge": {"timestamp": "2026-11-21T10:00:01Z", "origin": origin}},
    }


@pytest.mark.parametrize(
    ("origin", "status", "codes"),
    [
        ("https://www.example.com", 200, []),
        ("https://WWW.example.com/", 200, []),
        ("https://evil.example.net", 400, ["sitekey-mismatch"]),
        ("https://[x", 400, ["sitekey-mismatch"]),
    ],
)
def test_friendly_v2_challenge_origin_is_bound_to_allowed_origins(
    origin: str,
    status: int,
    codes: list[str],
    make_handler: HandlerFactory,
    provider_server: ScriptedProvider,
) -> None:
    invoke = make_handler(
        "friendlycaptcha",
        SECRETS["friendlycaptcha"],
        friendly_api_version=FriendlyApiVersion.V2,
        allowed_origins=ALLOWED,
    )
    provider_server.answer(200, friendly_v2_verified(origin))
    response = invoke(load_event("friendlycaptcha", "fetch-json-v2"))
    assert (response["statusCode"], body_of(response)["error-codes"]) == (status, codes)


def form_with(field: str, value: str) -> dict[str, Any]:
    event = load_event("byebot", "form-post")
    return with_body(event, f"{event_body(event)}&{field}={value}", base64_encoded=True)


@pytest.mark.parametrize(
    "target",
    [
        "https://[x",
        "https://www.example.com/ok%0D%0ASet-Cookie:%20a=b",
        "https://www.example.com/%00",
        "%0Ahttps://x",
    ],
)
def test_a_hostile_redirect_field_never_raises_nor_reaches_location(
    target: str, make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler(
        "byebot",
        SECRETS["byebot"],
        allowed_origins=ALLOWED,
        success_redirect_url="https://www.example.com/thanks",
    )
    provider_server.answer(200, success_body("byebot"))
    response = invoke(form_with("success_url", target))
    # The verified token is not lost: the configured target, not a 500.
    assert (
        response["statusCode"] == 303 and response["headers"]["Location"] == "https://www.example.com/thanks"
    )
    assert table_items()[0]["success"] is True


def test_every_answer_says_nosniff_and_the_page_cannot_be_framed(
    make_handler: HandlerFactory, provider_server: ScriptedProvider
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"], success_redirect_url="https://www.example.com/thanks")
    provider_server.answer(200, success_body("byebot"))
    provider_server.answer(200, success_body("byebot"))
    answers = [
        invoke(load_event("byebot", "fetch-json")),
        invoke(load_event("byebot", "form-post")),
        invoke(load_event("byebot", "form-post-missing-token")),
        invoke(load_event("byebot", "malformed-json")),
    ]
    for answer in answers:
        assert answer["headers"]["X-Content-Type-Options"] == "nosniff"
    page = make_handler("byebot", SECRETS["byebot"])(load_event("byebot", "form-post-missing-token"))
    assert page["headers"]["Content-Type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page["headers"]["Content-Security-Policy"]


def test_a_huge_origin_is_bounded_in_the_log(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = make_handler("byebot", SECRETS["byebot"])
    provider_server.answer(200, success_body("byebot"))
    invoke(load_event("byebot", "fetch-json", origin="https://" + "a" * 10_000 + ".example.com"))
    [line] = [r for r in log_records(capsys.readouterr().out) if r.get("message") == "verification"]
    assert len(line["origin"]) <= 256


def test_a_friendly_v2_secret_with_a_newline_is_refused_unsent(
    make_handler: HandlerFactory, provider_server: ScriptedProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "frc-live\nsecret-5e6f7a8b9c0d"
    invoke = make_handler("friendlycaptcha", secret, friendly_api_version=FriendlyApiVersion.V2)
    response = invoke(load_event("friendlycaptcha", "fetch-json-v2"))
    assert body_of(response)["error-codes"] == ["invalid-input-secret"] and provider_server.received == []
    seen = capsys.readouterr()
    everything = seen.out + seen.err + json.dumps(response) + json.dumps(table_items(), default=str)
    assert "secret-5e6f7a8b9c0d" not in everything
