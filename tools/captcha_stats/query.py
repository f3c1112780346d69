"""Reading the challenge log table: DynamoDB Query only, one provider and time range at a time.

The table's partition key is ``provider`` and its sort key ``sk`` is
``<created_at>#<request_id>``, ``created_at`` being UTC ISO 8601 with milliseconds and a
``Z``; a lexicographic range on ``sk`` is therefore a time range, and no Scan is needed.
"""

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from boto3.dynamodb.types import TypeDeserializer

from captcha_stats.figures import Attempt, Number

# Only what the figures use: a smaller response per page, hence fewer round trips.
_PROJECTED = (
    "provider",
    "success",
    "degraded",
    "error_codes",
    "solve_time_ms",
    "token_age_ms",
    "provider_latency_ms",
)

_deserializer = TypeDeserializer()


class QueryClient(Protocol):
    """The one operation needed from a boto3 DynamoDB client."""

    def query(self, **kwargs: Any) -> Mapping[str, Any]: ...


def iso_millis(moment: datetime) -> str:
    """Format ``moment`` the way the writer formats ``created_at``: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sort_key_bounds(since: datetime, until: datetime) -> tuple[str, str]:
    """Return the inclusive ``sk`` bounds covering ``since`` to ``until`` at millisecond precision."""
    # A bare timestamp sorts before every "<timestamp>#<request_id>" of its millisecond,
    # and "$" sorts right after the "#" separator, so both end milliseconds are included
    # whatever the request ids are.
    return iso_millis(since), iso_millis(until) + "$"


def _number(value: Decimal | None) -> Number | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def to_attempt(item: Mapping[str, Any]) -> Attempt:
    """Map a raw DynamoDB item to an :class:`Attempt`; absent attributes become defaults."""
    record = {name: _deserializer.deserialize(value) for name, value in item.items()}
    return Attempt(
        provider=record["provider"],
        # A record without a verdict cannot count as a success.
        success=record.get("success") is True,
        degraded=record.get("degraded") is True,
        error_codes=tuple(record.get("error_codes") or ()),
        solve_time_ms=_number(record.get("solve_time_ms")),
        token_age_ms=_number(record.get("token_age_ms")),
        provider_latency_ms=_number(record.get("provider_latency_ms")),
    )


def query_attempts(
    client: QueryClient,
    table: str,
    provider: str,
    since: datetime,
    until: datetime,
    page_size: int | None = None,
) -> Iterator[Attempt]:
    """Yield ``provider``'s attempts from ``since`` to ``until`` (inclusive), newest first.

    Follows ``LastEvaluatedKey`` until the range is exhausted; ``page_size`` caps the items
    per Query call (DynamoDB's own 1 MB page limit applies regardless).
    """
    lower, upper = sort_key_bounds(since, until)
    names = {f"#{name}": name for name in (*_PROJECTED, "sk")}
    request: dict[str, Any] = {
        "TableName": table,
        # Placeholders keep attribute names clear of DynamoDB's reserved words.
        "KeyConditionExpression": "#provider = :provider AND #sk BETWEEN :from AND :to",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {
            ":provider": {"S": provider},
            ":from": {"S": lower},
            ":to": {"S": upper},
        },
        "ProjectionExpression": ", ".join(f"#{name}" for name in _PROJECTED),
        "ScanIndexForward": False,
    }
    if page_size is not None:
        request["Limit"] = page_size
    while True:
        page = client.query(**request)
        for item in page.get("Items", ()):
            yield to_attempt(item)
        last_key = page.get("LastEvaluatedKey")
        if not last_key:
            return
        request["ExclusiveStartKey"] = last_key
