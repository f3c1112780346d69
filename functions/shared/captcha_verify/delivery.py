"""Puts a submission's "Form Submission" event on the EventBridge bus: one PutEvents entry each.

Used by the relay (the committed detail, exactly as stored) and by the verify function when the
store could not take the commit (the direct put)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from captcha_verify.aws_clients import client
from captcha_verify.submission import DETAIL_TYPE, SOURCE, serialise


class DeliveryFailed(Exception):
    """The bus did not take the event; `reason` names the error class, never the content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class SubmissionBus:
    bus_name: str
    events: Any = None

    def put(self, detail: dict[str, Any]) -> str:
        return self.put_serialised(serialise(detail))

    def put_serialised(self, detail: str) -> str:
        """The event id; raises DeliveryFailed on an error or a failed entry.

        PutEvents answers 200 even when an entry was refused (FailedEntryCount > 0, the entry
        carries ErrorCode), so both must be checked.
        """
        if self.events is None:
            self.events = client("events")
        entry = {
            "EventBusName": self.bus_name,
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": detail,
        }
        try:
            answer = self.events.put_events(Entries=[entry])
        except Exception as error:
            raise DeliveryFailed(type(error).__name__) from error
        result = (answer.get("Entries") or [{}])[0]
        if answer.get("FailedEntryCount", 0) or "EventId" not in result:
            raise DeliveryFailed(str(result.get("ErrorCode") or "entry not accepted"))
        return str(result["EventId"])
