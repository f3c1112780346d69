"""Reading and erasing the submission store: DynamoDB Query and DeleteItem only, never a Scan.

Newest first in a time range is one Query per month on the ByMonth index (partition
``received_month`` = "YYYY-MM", sort ``received_at``, ScanIndexForward false); every submission of
one address is a Query on ByEmail (the lower-cased ``email`` or ``_replyto`` field).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from captcha_stats.query import iso_millis

BY_MONTH = "ByMonth"
BY_EMAIL = "ByEmail"


@dataclass(frozen=True)
class Submission:
    """One committed submission: the event detail exactly as the bus carried it."""

    detail: dict[str, Any]

    @property
    def submission_id(self) -> str:
        return str(self.detail.get("submission_id", ""))

    @property
    def received_at(self) -> str:
        return str(self.detail.get("received_at", ""))

    @property
    def form(self) -> dict[str, Any]:
        form = self.detail.get("form")
        return form if isinstance(form, dict) else {}


def months_newest_first(since: datetime, until: datetime) -> list[str]:
    """Every "YYYY-MM" from until's month back to since's, in UTC."""
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    year, month = until.year, until.month
    months = []
    while (year, month) >= (since.year, since.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months


def _pages(dynamodb: Any, **query: Any) -> Iterator[dict[str, Any]]:
    while True:
        page = dynamodb.query(**query)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def newest_first(
    dynamodb: Any, table: str, since: datetime, until: datetime, limit: int | None = None
) -> Iterator[Submission]:
    """The committed submissions received in [since, until], newest first."""
    count = 0
    for month in months_newest_first(since, until):
        for item in _pages(
            dynamodb,
            TableName=table,
            IndexName=BY_MONTH,
            KeyConditionExpression="received_month = :month AND received_at BETWEEN :since AND :until",
            ExpressionAttributeValues={
                ":month": {"S": month},
                ":since": {"S": iso_millis(since)},
                ":until": {"S": iso_millis(until)},
            },
            ScanIndexForward=False,
        ):
            if "detail" not in item:
                continue
            yield Submission(json.loads(item["detail"]["S"]))
            count += 1
            if limit is not None and count >= limit:
                return


def ids_of_email(dynamodb: Any, table: str, email: str) -> list[str]:
    """The ids of every submission stored under this address (compared lower-cased, as stored)."""
    return [
        item["submission_id"]["S"]
        for item in _pages(
            dynamodb,
            TableName=table,
            IndexName=BY_EMAIL,
            KeyConditionExpression="email = :email",
            ExpressionAttributeValues={":email": {"S": email.strip().lower()}},
        )
    ]


def erase(dynamodb: Any, table: str, submission_ids: list[str]) -> list[str]:
    """Deletes the committed submissions among these ids; the ids it deleted."""
    deleted = []
    for submission_id in dict.fromkeys(submission_ids):
        reply = dynamodb.delete_item(
            TableName=table,
            Key={"submission_id": {"S": submission_id}},
            ReturnValues="ALL_OLD",
        )
        if "Attributes" in reply:
            deleted.append(submission_id)
    return deleted
