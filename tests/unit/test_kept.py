"""kept.py: a verification outcome kept in the submission store and read back for a repeat.

A repeat of a request is answered from what the store kept, so what comes back must be exactly
the first outcome (for the repeat's own id, origin and time), through the JSON the store holds,
and the kept form must carry no token, digest, origin or request id.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from captcha_verify.kept import keep, restore
from captcha_verify.outcome import ErrorCode, ProviderAnswer, Verdict
from captcha_verify.policy import Decision, Outcome
from captcha_verify.records import Attempt
from captcha_verify.submission import serialise
from hypothesis import given
from hypothesis import strategies as st

FIRST = datetime(2026, 11, 21, 10, 0, 5, 250_000, tzinfo=UTC)
DIGEST = "f" * 64

text = st.text(max_size=40)
codes = st.none() | st.sampled_from(ErrorCode)
small = st.none() | st.integers(min_value=0, max_value=10**9)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
answers = st.builds(
    ProviderAnswer,
    verdict=st.sampled_from(Verdict),
    reason=text,
    error_code=codes,
    challenge_ts=st.none() | moments,
    hostname=st.none() | text,
    sitekey=st.none() | text,
    solve_time_ms=small,
    interactive=st.none() | st.booleans(),
)
attempts = st.builds(
    Attempt,
    provider=st.sampled_from(["byebot", "swetrix"]),
    decision=st.builds(Decision, st.sampled_from(Outcome), codes),
    answer=answers,
    created_at=st.just(FIRST),
    request_id=st.just("first-request"),
    reached_provider=st.just(True),
    token_sha256=st.just(DIGEST),
    origin=st.just("https://www.example.com"),
    provider_status=st.none() | st.integers(min_value=100, max_value=599),
    provider_latency_ms=small,
)


@given(attempts)
def test_a_kept_outcome_comes_back_exactly_through_the_store_s_json(first: Attempt) -> None:
    stored = json.loads(serialise(keep(first)))
    repeat = restore(
        stored,
        provider=first.provider,
        created_at=first.created_at,
        request_id=first.request_id,
        origin=first.origin,
        token_sha256=first.token_sha256,
    )
    assert repeat == first


@given(attempts)
def test_the_kept_form_carries_nothing_of_the_request(first: Attempt) -> None:
    kept = keep(first)
    assert not {"token_sha256", "origin", "request_id", "created_at", "provider"} & set(kept)
    assert DIGEST not in serialise(kept)


def test_a_repeat_answers_as_the_first_for_its_own_request() -> None:
    first = Attempt(
        provider="byebot",
        decision=Decision(Outcome.REJECTED, ErrorCode.TIMEOUT_OR_DUPLICATE),
        answer=ProviderAnswer(Verdict.REJECTED, "token spent", ErrorCode.TIMEOUT_OR_DUPLICATE),
        created_at=FIRST,
        request_id="first-request",
        provider_status=200,
        provider_latency_ms=120,
    )
    later = FIRST + timedelta(seconds=30)
    repeat = restore(keep(first), provider="byebot", created_at=later, request_id="repeat-request")
    assert repeat.decision == first.decision and repeat.answer == first.answer
    assert (repeat.created_at, repeat.request_id) == (later, "repeat-request")
    assert repeat.reached_provider, "the first request reached the provider"
    assert (repeat.provider_status, repeat.provider_latency_ms) == (200, 120)


def test_the_challenge_time_is_kept_to_the_microsecond_with_its_zone() -> None:
    moment = datetime(2026, 11, 21, 9, 59, 59, 123_456, tzinfo=UTC)
    first = Attempt(
        provider="swetrix",
        decision=Decision(Outcome.VERIFIED),
        answer=ProviderAnswer(Verdict.VERIFIED, "ok", challenge_ts=moment),
        created_at=FIRST,
        request_id="first-request",
    )
    kept = keep(first)
    assert kept["challenge_ts"] == "2026-11-21T09:59:59.123456+00:00"
    restored = restore(kept, provider="swetrix", created_at=FIRST, request_id="r")
    assert restored.answer.challenge_ts == moment
    assert restored.token_age_ms == first.token_age_ms == 6127
