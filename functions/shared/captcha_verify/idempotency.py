"""Once-only steps on Powertools' Idempotency utility (DynamoDB persistence layer).

A submission goes through two steps, each with its own idempotency record keyed by the provider
and the token's digest:

- `verify`: the secret, the provider call and the policy. A token is single use at the provider,
  so its outcome is kept for the window: a double submit, a `fetch` retry, and the visitor's
  retry after a failed delivery all get the first verification instead of a false
  `timeout-or-duplicate`. A "could not verify" outcome is raised as `NotKept`: the utility then
  deletes the record and a retry asks the provider again.
- `deliver`: the PutEvents. A failure is raised, the record is deleted, and the retry of the same
  request (whose verification is kept) delivers without a new token. Once it succeeded, repeats
  are answered from the record and deliver nothing.

Where the utility stops short, this module adds what is needed and says why:
- A request that finds the other one still in progress gets IdempotencyAlreadyInProgressError.
  Answering that as an error would tell a visitor whose form is being delivered that it failed,
  so `run_once` waits (bounded by the Lambda's remaining time) and returns the first's result.
- If the store write that follows a step fails after the step ran, the utility raises and the
  step's result (a spent token, a delivered event) would be lost to the caller; the result is
  kept in a holder so the request still answers truthfully.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)

from captcha_verify.aws_clients import client

VERIFY_STEP = "verify"
DELIVER_STEP = "deliver"
# Left for answering once the wait for an in-flight twin gives up.
ANSWER_MARGIN_MS = 1_000
POLL_SECONDS = 0.1
# Without a Lambda context (never in Lambda), how long a twin is waited for.
DEFAULT_WAIT_MS = 5_000

Kept = dict[str, Any]


class NotKept(Exception):
    """Raised by a step's work for a result that must not be kept: the record is deleted and a
    retry runs the step again. Carries the result, which this request still answers with."""

    def __init__(self, value: Kept) -> None:
        super().__init__("result not kept")
        self.value = value


class StillInFlight(Exception):
    """The twin request was still in progress when this one had to answer."""


class StoreUnavailable(Exception):
    """The idempotency table could not be read or written before the step ran."""


@dataclass(frozen=True)
class Ran:
    value: Kept
    replayed: bool  # True when the value is the first request's, read from the record


@dataclass(frozen=True)
class _Remaining:
    """What Powertools reads from a Lambda context: the in-progress record expires with this
    invocation, so a twin takes over if this Lambda dies mid-step."""

    ms: int

    def get_remaining_time_in_millis(self) -> int:
        return self.ms


@dataclass
class _Holder:
    value: Kept | None = None
    error: Exception | None = None


@dataclass
class OnceStore:
    table_name: str
    window_seconds: int
    dynamodb: Any = None
    _layers: dict[str, DynamoDBPersistenceLayer] = field(default_factory=dict)

    def layer(self, step: str) -> DynamoDBPersistenceLayer:
        # One layer per step: Powertools keeps the key prefix on the layer.
        if step not in self._layers:
            if self.dynamodb is None:
                self.dynamodb = client("dynamodb")
            self._layers[step] = DynamoDBPersistenceLayer(
                table_name=self.table_name, boto3_client=self.dynamodb
            )
        return self._layers[step]

    def run_once(
        self,
        step: str,
        key: dict[str, str],
        work: Callable[[], Kept],
        remaining_ms: int | None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> Ran:
        """`work()` once per key within the window; a twin in flight is waited for.

        Raises NotKept (from work), StillInFlight, StoreUnavailable, or what `work` raises.
        """
        budget_ms = (remaining_ms if remaining_ms is not None else DEFAULT_WAIT_MS) - ANSWER_MARGIN_MS
        deadline = monotonic() + max(0, budget_ms) / 1000
        config = IdempotencyConfig(
            expires_after_seconds=self.window_seconds,
            hash_function="sha256",
            # Powertools reads only get_remaining_time_in_millis from the context.
            lambda_context=_Remaining(remaining_ms) if remaining_ms is not None else None,  # type: ignore[arg-type]
        )
        holder = _Holder()

        def once(key: dict[str, str]) -> Kept:
            try:
                holder.value = work()
            except Exception as error:
                holder.error = error
                raise
            return holder.value

        guarded = idempotent_function(
            once,
            data_keyword_argument="key",
            persistence_store=self.layer(step),
            config=config,
            key_prefix=step,
        )
        while True:
            try:
                value = guarded(key=key)
            except IdempotencyAlreadyInProgressError:
                if monotonic() + POLL_SECONDS > deadline:
                    raise StillInFlight(step) from None
                sleep(POLL_SECONDS)
                continue
            except IdempotencyPersistenceLayerError as error:
                if holder.error is not None:
                    raise holder.error from None
                if holder.value is not None:
                    return Ran(holder.value, replayed=False)
                raise StoreUnavailable(step) from error
            return Ran(value, replayed=holder.value is None)
