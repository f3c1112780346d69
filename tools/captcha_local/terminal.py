"""What `make local` prints: one readable line per request, and only the function log lines a
person needs while trying things (warnings, errors, anything not JSON such as a traceback).
`--raw-logs` prints every function line as CloudWatch would receive it.

Much of it is the visitor's to choose (a path, an Origin, a field name, a log line quoting them),
so every line goes out through `printable`: a carriage return, an escape sequence or a bell in
a form would otherwise rewrite the developer's screen, forge lines or retitle the terminal."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from captcha_verify.telemetry import REPEAT_MESSAGE

QUIET_LEVELS = {"DEBUG", "INFO"}


def printable(text: str) -> str:
    """`text` with every character a terminal would act on instead of show (C0 and C1 controls,
    DEL, line and paragraph separators, bidirectional and other format characters, unpaired
    surrogates) written as its Python escape, e.g. "\\x1b"."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


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


def summary_line(
    summary: RequestSummary, clock: Callable[[], float] = time.time, *, repeat: bool = False
) -> str:
    """One line per request; a repeat (answered from the submission store) says so."""
    stamp = time.strftime("%H:%M:%S", time.localtime(clock()))
    said = f"{outcome(summary)} (repeat)" if repeat else outcome(summary)
    return (
        f"{stamp}  {summary.method} {summary.path}  {summary.status} {said}".rstrip()
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


def repeat_of(line: str) -> str | None:
    """The request id of a function log line that says the request was a repeat."""
    try:
        record: Any = json.loads(line)
    except ValueError:
        return None
    if isinstance(record, dict) and record.get("message") == REPEAT_MESSAGE:
        return str(record.get("request_id"))
    return None


@dataclass
class Terminal:
    raw: bool = False
    out: TextIO | None = None  # None: whatever sys.stdout is when a line is printed
    # Request ids whose function said "repeat"; the function's lines come before the request's.
    _repeats: set[str] = field(default_factory=set)

    def function_line(self, function: str, line: str) -> None:
        repeated = repeat_of(line)
        if repeated is not None:
            self._repeats.add(repeated)
        text = f"[{function}] {line}" if self.raw else compact(function, line)
        if text is not None:
            self.notice(text)

    def request(self, summary: RequestSummary) -> None:
        repeat = summary.request_id in self._repeats
        self._repeats.discard(summary.request_id)
        self.notice(summary_line(summary, repeat=repeat))

    def notice(self, line: str) -> None:
        """One line, escaped: the only way anything reaches the developer's terminal."""
        print(printable(line), file=self.out, flush=True)
