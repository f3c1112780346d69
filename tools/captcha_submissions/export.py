"""Submissions as CSV and as a table, safe to open in a spreadsheet.

RFC 4180 quoting by the csv module (CRLF line ends, quotes doubled, a field with a comma, quote or
line break quoted). A spreadsheet runs a cell that begins with =, +, - or @ as a formula (and tab
or CR may precede one): such a cell gets a leading apostrophe, which the spreadsheet shows as
text (OWASP, "CSV Injection").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from captcha_submissions.store import Submission

METADATA = ("submission_id", "received_at", "provider", "origin", "degraded")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def printable(text: str) -> str:
    """Visitor text for a terminal: a control character (C1 ones included) shown escaped, never sent."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(cell_text(item) for item in value)
    return str(value)


def field_names(submissions: Sequence[Submission]) -> list[str]:
    """One column per field name seen, in the order first seen."""
    return list(dict.fromkeys(name for s in submissions for name in s.form))


def rows(submissions: Sequence[Submission]) -> list[list[str]]:
    names = field_names(submissions)
    header = [*METADATA, *names]
    body = []
    for submission in submissions:
        detail = submission.detail
        metadata = [
            detail.get("submission_id"),
            detail.get("received_at"),
            detail.get("provider"),
            detail.get("origin"),
            (detail.get("verification") or {}).get("degraded"),
        ]
        body.append([*map(cell_text, metadata), *(cell_text(submission.form.get(n)) for n in names)])
    return [header, *body]


def to_csv(submissions: Sequence[Submission]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows(submissions):
        writer.writerow([neutralise(cell) for cell in row])
    return out.getvalue()


def to_table(submissions: Iterable[Submission], width: int = 60) -> str:
    """One line per submission: when, id, provider, and its fields shortened to one line."""
    lines = []
    for submission in submissions:
        fields = ", ".join(f"{name}={cell_text(value)}" for name, value in submission.form.items())
        fields = printable(" ".join(fields.split()))  # one line, whatever the visitor typed
        if len(fields) > width:
            fields = fields[: width - 3] + "..."
        provider = str(submission.detail.get("provider", ""))
        lines.append(f"{submission.received_at}  {submission.submission_id}  {provider:<15}  {fields}")
    return "\n".join(lines)
