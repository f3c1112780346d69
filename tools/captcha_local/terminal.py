"""What `make local` prints: one readable line per request, and only the function log lines a
person needs while trying things (warnings, errors, anything not JSON such as a traceback).
`--raw-logs` prints every function line as CloudWatch would receive it."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

QUIET_LEVELS = {"DEBUG", "INFO"}


@dataclass(frozen=True)
class RequestSummary:
    method: str
    path: str
    status: int
    body: str
    location: str | None
    request_id: str
    duration_ms: int


RequestSink = Callable[[RequestSummary], None]


def outcome(summary: RequestSummary) -> str:
    """verified / degraded / the error code, from a siteverify answer; the target of a redirect."""
    if summary.location:
        return f"-> {summary.location}"
    try:
        answer = json.loads(summary.body)
    except ValueError:
        return ""
    if not isinstance(answer, dict):
        return ""
    if answer.get("success") is True:
        return "degraded" if answer.get("degraded") else "verified"
    codes = answer.get("error-codes")
    if isinstance(codes, list) and codes:
        return " ".join(str(code) for code in codes)
    return str(answer.get("message", ""))


def summary_line(summary: RequestSummary, clock: Callable[[], float] = time.time) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(clock()))
    return (
        f"{stamp}  {summary.method} {summary.path}  {summary.status} {outcome(summary)}".rstrip()
        + f"  {summary.duration_ms} ms  id {summary.request_id}"
    )


def compact(function: str, line: str) -> str | None:
    """A function log line worth showing by default, shortened; None for routine JSON lines."""
    try:
        record: Any = json.loads(line)
    except ValueError:
        return f"  [{function}] {line}" if line.strip() else None
    if not isinstance(record, dict) or "_aws" in record:  # EMF metrics
        return None
    level = str(record.get("level", "INFO"))
    if level in QUIET_LEVELS:
        return None
    details = [str(record[key]) for key in ("reason", "error", "error_codes") if record.get(key)]
    suffix = f" ({'; '.join(details)})" if details else ""
    return f"  [{function}] {level} {record.get('message', '')}{suffix}"


@dataclass
class Terminal:
    raw: bool = False
    out: TextIO = sys.stdout

    def function_line(self, function: str, line: str) -> None:
        text = f"[{function}] {line}" if self.raw else compact(function, line)
        if text is not None:
            print(text, file=self.out, flush=True)

    def request(self, summary: RequestSummary) -> None:
        print(summary_line(summary), file=self.out, flush=True)
