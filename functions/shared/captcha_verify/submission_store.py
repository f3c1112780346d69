"""The submission store: one DynamoDB item per token, which is at once the idempotency claim and,
once verified, the committed submission that the relay puts on the bus.

The item's life: a conditional put claims the token before the provider is asked (`in_progress`,
held for the Lambda's remaining time, so a twin takes over if this invocation dies); after the
provider, one conditional put over the claim either commits the submission (`committed`: the event detail
exactly as the bus will carry it, the index keys, a TTL of SubmissionRetentionDays) or keeps a
rejection for the window (`answered`); a "could not verify" claim is deleted so a retry asks again.

Why not Powertools' Idempotency utility (used before): its record has a schema of its own (id,
status, expiration, data), saved by a second write after the work, and no room for the
submission's attributes, its indexes or a retention other than the window. The submission would
then cost two writes after the provider (the utility's save and the commit) where one does, and
a twin waits by repeating the conditional put (a write per poll) where a consistent read does.
Conditional puts written for this purpose (the claim, then its outcome over it) do it in one write
each.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from captcha_verify.aws_clients import client
from captcha_verify.deadline import run_within

IN_PROGRESS = "in_progress"
ANSWERED = "answered"
COMMITTED = "committed"
# A healthy table answers a small write in milliseconds; a slow one must not eat the provider's
# budget (claim) or hold a verified answer (commit; transport.RESERVED_SECONDS leaves room for it).
CLAIM_SECONDS = 1.0
COMMIT_SECONDS = 2.0
# A twin's reads: doubling from FIRST_POLL_SECONDS up to MAX_POLL_SECONDS (about ten reads over
# a provider's three-second budget, where a write every 100 ms made thirty).
FIRST_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 0.5
# What a twin reads: never the form.
_STATE_ATTRIBUTES = "submission_id, #state, in_progress_until, form_sha256, answer, replay_until"


class StoreUnavailable(Exception):
    """The store could not be read or written (error, throttling, or no answer in time)."""


class StillInFlight(Exception):
    """The twin request was still in progress when this one had to answer."""


@dataclass(frozen=True)
class Claimed:
    """This request holds the token: it asks the provider and writes the outcome."""

    submission_id: str
    claim_id: str
    provider: str
    form_sha256: str


@dataclass(frozen=True)
class Found:
    """Another request's item for the same token, as it stood."""

    state: str
    form_sha256: str | None
    answer: str | None
    in_progress_until: int  # epoch milliseconds
    replay_until: int  # epoch seconds

    def abandoned(self, now_ms: int) -> bool:
        return self.state == IN_PROGRESS and self.in_progress_until < now_ms


@dataclass
class SubmissionStore:
    table_name: str
    window_seconds: int
    retention_days: int
    dynamodb: Any = None
    clock: Callable[[], float] = time.time

    def _client(self) -> Any:
        if self.dynamodb is None:
            self.dynamodb = client("dynamodb")
        return self.dynamodb

    def _call(self, seconds: float, operation: str, **request: Any) -> dict[str, Any]:
        method = getattr(self._client(), operation)
        try:
            return run_within(seconds, lambda: method(TableName=self.table_name, **request))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise
            raise StoreUnavailable(operation) from error
        except Exception as error:
            raise StoreUnavailable(operation) from error

    def claim(self, submission_id: str, provider: str, form_sha256: str, hold_ms: int) -> Claimed | Found:
        """One conditional put: the token is this request's, or the item another one left.

        An in-progress claim past its hold (its Lambda died) is taken over in the same write.
        """
        now = self.clock()
        claim_id = str(uuid.uuid4())
        item = {
            "submission_id": submission_id,
            "provider": provider,
            "state": IN_PROGRESS,
            "claim_id": claim_id,
            "form_sha256": form_sha256,
            "in_progress_until": int(now * 1000) + hold_ms,
            "expires_at": int(now) + self.window_seconds,
        }
        try:
            self._call(
                CLAIM_SECONDS,
                "put_item",
                Item=_serialize(item),
                ConditionExpression="attribute_not_exists(submission_id)"
                " OR (#state = :in_progress AND in_progress_until < :now)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=_serialize({":in_progress": IN_PROGRESS, ":now": int(now * 1000)}),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            return _found(error.response.get("Item") or {})  # type: ignore[arg-type]
        return Claimed(submission_id, claim_id, provider, form_sha256)

    def read(self, submission_id: str) -> Found | None:
        """The item as it stands (strongly consistent: a twin must see the first's commit)."""
        reply = self._call(
            CLAIM_SECONDS,
            "get_item",
            Key=_serialize({"submission_id": submission_id}),
            ConsistentRead=True,
            ProjectionExpression=_STATE_ATTRIBUTES,
            ExpressionAttributeNames={"#state": "state"},
        )
        return _found(reply["Item"]) if "Item" in reply else None

    def wait(
        self,
        submission_id: str,
        deadline: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> Found | None:
        """Polls a twin's claim until it is settled, gone or abandoned, with exponential backoff;
        raises StillInFlight at `deadline` (a monotonic time)."""
        delay = FIRST_POLL_SECONDS
        while monotonic() + delay < deadline:
            sleep(delay)
            delay = min(delay * 2, MAX_POLL_SECONDS)
            found = self.read(submission_id)
            if found is None or found.state != IN_PROGRESS or found.abandoned(int(self.clock() * 1000)):
                return found
        raise StillInFlight(submission_id)

    def commit(self, claim: Claimed, answer: str, detail: str, index: Mapping[str, str]) -> None:
        """The verified submission, durably: the relay puts `detail` on the bus from the stream."""
        now = int(self.clock())
        self._settle(
            claim,
            COMMITTED,
            {
                "answer": answer,
                "detail": detail,
                "replay_until": now + self.window_seconds,
                "expires_at": now + self.retention_days * 86_400,
                **index,
            },
        )

    def keep_answer(self, claim: Claimed, answer: str) -> None:
        """A rejection, kept for the window: a repeat gets it without asking the provider again."""
        until = int(self.clock()) + self.window_seconds
        self._settle(claim, ANSWERED, {"answer": answer, "replay_until": until, "expires_at": until})

    def release(self, claim: Claimed) -> None:
        """Gives the token back (could not verify, or not asked at all): a retry asks again."""
        self._call(
            COMMIT_SECONDS,
            "delete_item",
            Key=_serialize({"submission_id": claim.submission_id}),
            ConditionExpression="claim_id = :claim",
            ExpressionAttributeValues=_serialize({":claim": claim.claim_id}),
        )

    def _settle(self, claim: Claimed, state: str, values: Mapping[str, object]) -> None:
        """The claim's item replaced whole by its outcome (every attribute is known here, so a put
        needs no update expression), on condition that this request still holds the claim."""
        item = {
            "submission_id": claim.submission_id,
            "provider": claim.provider,
            "form_sha256": claim.form_sha256,
            "state": state,
            **values,
        }
        try:
            self._call(
                COMMIT_SECONDS,
                "put_item",
                Item=_serialize(item),
                # Only the claim's owner settles it: a twin that took over an abandoned claim owns it now.
                ConditionExpression="claim_id = :claim",
                ExpressionAttributeValues=_serialize({":claim": claim.claim_id}),
            )
        except ClientError as error:
            raise StoreUnavailable("claim taken over") from error


def _serialize(values: Mapping[str, object]) -> dict[str, Any]:
    serializer = TypeSerializer()
    return {name: serializer.serialize(value) for name, value in values.items()}


def _found(item: Mapping[str, Any]) -> Found:
    deserializer = TypeDeserializer()
    values = {name: deserializer.deserialize(value) for name, value in item.items()}
    return Found(
        state=str(values.get("state", IN_PROGRESS)),
        form_sha256=values.get("form_sha256"),
        answer=values.get("answer"),
        in_progress_until=int(values.get("in_progress_until", 0)),
        replay_until=int(values.get("replay_until", 0)),
    )
