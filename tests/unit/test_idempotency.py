"""idempotency.py: once-only steps on Powertools' Idempotency utility, on the notification ledger
as the template defines it (moto in process).

What the module adds to the utility is held here: a result kept and replayed, a result not kept
run again, a twin in flight waited for (and given up on within the time left), a store that fails
before the step (StoreUnavailable, the step not run) or after it (the step's result still
answered).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from captcha_local.resources import create_table, load_template
from captcha_verify.idempotency import (
    ANSWER_MARGIN_MS,
    POLL_SECONDS,
    NotKept,
    OnceStore,
    Ran,
    StillInFlight,
    StoreUnavailable,
)

LEDGER = "idempotency-unit-test"
WINDOW_SECONDS = 600
KEY = {"submission": "sub-1", "channel": "email"}
BACKSTOP = 10.0  # seconds; only reached when what is under test is broken


@pytest.fixture
def ledger(mocked_aws: None) -> Iterator[str]:
    create_table(boto3.client("dynamodb"), LEDGER, load_template(), "NotificationLedgerTable")
    yield LEDGER


class Counted:
    """A step's work that counts its runs and answers `value` (or raises `error`)."""

    def __init__(self, value: dict[str, Any], error: Exception | None = None) -> None:
        self.value, self.error, self.runs = value, error, 0

    def __call__(self) -> dict[str, Any]:
        self.runs += 1
        if self.error is not None:
            raise self.error
        return self.value


def store(**options: Any) -> OnceStore:
    return OnceStore(LEDGER, WINDOW_SECONDS, dynamodb=boto3.client("dynamodb"), **options)


def test_a_step_runs_once_and_its_repeats_are_answered_from_the_record(ledger: str) -> None:
    once, work = store(), Counted({"sent": 1})
    assert once.run_once("deliver", KEY, work, 10_000) == Ran({"sent": 1}, replayed=False)
    assert once.run_once("deliver", KEY, work, 10_000) == Ran({"sent": 1}, replayed=True)
    # Another container, with no Lambda context: Powertools says it cannot bound the in-progress
    # record by the invocation's remaining time, and the record still answers.
    with pytest.warns(UserWarning, match="remaining time"):
        again = store().run_once("deliver", KEY, work, None)
    assert again == Ran({"sent": 1}, replayed=True)
    assert work.runs == 1


def test_steps_and_keys_are_kept_apart(ledger: str) -> None:
    once = store()
    once.run_once("deliver", KEY, Counted({"step": "deliver"}), 10_000)
    other_step = once.run_once("verify", KEY, Counted({"step": "verify"}), 10_000)
    other_key = once.run_once("deliver", {**KEY, "channel": "webhook"}, Counted({"step": "webhook"}), 10_000)
    assert (other_step.replayed, other_key.replayed) == (False, False)
    assert (other_step.value, other_key.value) == ({"step": "verify"}, {"step": "webhook"})


def test_a_result_not_kept_is_raised_and_the_step_runs_again(ledger: str) -> None:
    once = store()
    with pytest.raises(NotKept) as raised:
        once.run_once("verify", KEY, Counted({}, NotKept({"outcome": "failed"})), 10_000)
    assert raised.value.value == {"outcome": "failed"}
    again = Counted({"outcome": "verified"})
    assert once.run_once("verify", KEY, again, 10_000) == Ran({"outcome": "verified"}, replayed=False)
    assert again.runs == 1


def test_a_failing_step_raises_its_own_error_and_keeps_nothing(ledger: str) -> None:
    once = store()
    with pytest.raises(ConnectionError):
        once.run_once("deliver", KEY, Counted({}, ConnectionError("bus down")), 10_000)
    assert once.run_once("deliver", KEY, Counted({"sent": 1}), 10_000).replayed is False


def in_flight(once: OnceStore, release: threading.Event) -> tuple[threading.Thread, list[Ran]]:
    """A first request whose step is running (its record in progress) until `release` is set."""
    started, results = threading.Event(), []

    def work() -> dict[str, Any]:
        started.set()
        release.wait(BACKSTOP)
        return {"sent": 1}

    thread = threading.Thread(target=lambda: results.append(once.run_once("deliver", KEY, work, 10_000)))
    thread.start()
    assert started.wait(BACKSTOP)
    return thread, results


def test_a_twin_waits_for_the_first_request_and_answers_with_its_result(ledger: str) -> None:
    release = threading.Event()
    first, results = in_flight(store(), release)

    def sleep(_: float) -> None:  # the first request finishes while the twin waits
        release.set()
        first.join(BACKSTOP)

    twin = store().run_once("deliver", KEY, Counted({"sent": 2}), 10_000, sleep=sleep)
    assert twin == Ran({"sent": 1}, replayed=True)
    assert results == [Ran({"sent": 1}, replayed=False)]


def test_a_twin_gives_up_within_the_time_its_lambda_has_left(ledger: str) -> None:
    release = threading.Event()
    first, _ = in_flight(store(), release)
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    remaining_ms = ANSWER_MARGIN_MS + 500
    try:
        with pytest.raises(StillInFlight):
            store().run_once(
                "deliver", KEY, Counted({}), remaining_ms, sleep=sleep, monotonic=lambda: clock[0]
            )
    finally:
        release.set()
        first.join(BACKSTOP)
    assert slept and set(slept) == {POLL_SECONDS}
    assert sum(slept) <= (remaining_ms - ANSWER_MARGIN_MS) / 1000


class Refusing:
    """The DynamoDB client, with `operation` refused by the service."""

    def __init__(self, operation: str) -> None:
        self.client, self.operation = boto3.client("dynamodb"), operation

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name != self.operation:
            return getattr(self.client, name)

        def refused(**_: Any) -> Any:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "unavailable"}}, name)

        return refused


def test_a_store_down_before_the_step_raises_store_unavailable_and_runs_nothing(ledger: str) -> None:
    work = Counted({"sent": 1})
    with pytest.raises(StoreUnavailable):
        OnceStore(LEDGER, WINDOW_SECONDS, dynamodb=Refusing("put_item")).run_once(
            "deliver", KEY, work, 10_000
        )
    assert work.runs == 0


def test_a_store_down_after_the_step_still_answers_the_step_s_result(ledger: str) -> None:
    work = Counted({"sent": 1})
    once = OnceStore(LEDGER, WINDOW_SECONDS, dynamodb=Refusing("update_item"))
    assert once.run_once("deliver", KEY, work, 10_000) == Ran({"sent": 1}, replayed=False)
    assert work.runs == 1
