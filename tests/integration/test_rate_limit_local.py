"""`make local` enforces the per-client rate limit as a deployed stack does: a stack of its own,
at a limit low enough to reach, since every test request comes from 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.local_harness import FunctionLog, Harness, running_stack

LIMIT = 3


@pytest.fixture(scope="module")
def limited() -> Iterator[Harness]:
    log = FunctionLog()
    with running_stack(log, client_rate_limit=LIMIT) as stack:
        yield Harness(stack=stack, log=log, table=None)


def test_the_request_past_the_limit_is_answered_429_before_the_provider(limited: Harness) -> None:
    tokens = [limited.issue("byebot") for _ in range(LIMIT + 1)]

    answers = [limited.verify(token) for token in tokens]

    assert [answer.status_code for answer in answers] == [200] * LIMIT + [429]
    assert answers[-1].json()["error-codes"] == ["rate-limited"]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    # The limited request never reached the provider: its token is still unspent.
    assert len(limited.verify_calls("byebot")) == LIMIT
    lines = [line for _, line in limited.log.snapshot()]
    assert lines and [line for line in lines if "rate limit not checked" in line] == []
