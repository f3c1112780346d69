"""`captcha-submissions`: list, export (CSV safe for a spreadsheet) and erase, on the real store."""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from captcha_submissions.cli import Where, copies_report, main
from captcha_submissions.export import neutralise, to_csv
from captcha_submissions.store import Submission, months_newest_first
from support import ScriptedProvider, event_token, load_event, with_body, with_token
from support.answers import SECRETS, success_body
from support.aws import IDEMPOTENCY_TABLE, NOW, HandlerFactory

_tokens = itertools.count(900)


def submit(invoke: Any, provider_server: ScriptedProvider, form: dict[str, Any]) -> None:
    event = with_token(load_event("byebot", "fetch-json"), "byebot", f"{next(_tokens):04d}")
    provider_server.answer(200, success_body("byebot"))
    body = {**form, "byebot-token": event_token(event, "byebot")}
    assert invoke(with_body(event, json.dumps(body)))["statusCode"] == 200


@pytest.fixture
def stored(make_handler: HandlerFactory, provider_server: ScriptedProvider) -> list[dict[str, Any]]:
    forms = [
        {"email": "Ann@Example.org", "message": '=HYPERLINK("http://evil","x")', "topics": ["a", "b"]},
        {"name": "Bo", "message": 'line one\nline "two", three'},
        {"_replyto": "ann@example.org", "message": "-2+3", "extra": "@SUM(A1)"},
    ]
    for minute, form in enumerate(forms):
        received = NOW + timedelta(minutes=minute)
        submit(make_handler("byebot", SECRETS["byebot"], clock=lambda at=received: at), provider_server, form)
    return forms


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["--table", IDEMPOTENCY_TABLE, *args]) == 0
    return capsys.readouterr().out


def test_list_shows_every_submission_newest_first(stored: Any, capsys: pytest.CaptureFixture[str]) -> None:
    details = json.loads(cli(capsys, "list", "--json", "--since", "3650d"))
    assert [d["form"] for d in details] == list(reversed(stored))
    table = cli(capsys, "list", "--since", "3650d").splitlines()
    assert len(table) == 3 and all(d["submission_id"] in line for d, line in zip(details, table, strict=True))
    assert "line one line" in table[1]  # a visitor's line break never breaks the table


def test_export_is_rfc_4180_with_a_column_per_field_and_no_formula(
    stored: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    text = cli(capsys, "export", "--since", "3650d")
    assert text.count("\r\n") >= 4  # CRLF line ends
    rows = list(csv.reader(io.StringIO(text)))
    header, *body = rows
    assert header == [
        "submission_id", "received_at", "provider", "origin", "degraded", "_replyto", "message", "extra",
        "name", "email", "topics",
    ]  # fmt: skip
    by_message = {row[header.index("message")]: dict(zip(header, row, strict=True)) for row in body}
    assert set(by_message) == {"'-2+3", 'line one\nline "two", three', '\'=HYPERLINK("http://evil","x")'}
    assert by_message["'-2+3"]["extra"] == "'@SUM(A1)"
    assert by_message['\'=HYPERLINK("http://evil","x")']["topics"] == "a; b"
    for row in body:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


def test_neutralise_guards_every_formula_start() -> None:
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert neutralise(f"{start}1+1") == f"'{start}1+1"
    assert neutralise("plain") == "plain" and neutralise("") == ""
    text = to_csv([Submission({"submission_id": "s", "form": {"a": "\tx", "b": "\r=1"}})])
    assert [row[-2:] for row in csv.reader(io.StringIO(text))] == [["a", "b"], ["'\tx", "'\r=1"]]


def test_erase_by_email_deletes_every_submission_of_that_address_and_says_where_copies_remain(
    stored: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    out = cli(capsys, "erase", "--email", "ANN@example.org")
    assert "deleted 2 submission(s)" in out and "unknown without --stack" in out
    left = json.loads(cli(capsys, "list", "--json", "--since", "3650d"))
    assert [d["form"]["name"] for d in left] == ["Bo"]
    table = boto3.resource("dynamodb").Table(IDEMPOTENCY_TABLE)
    assert len(table.scan()["Items"]) == 1  # the erased items are gone, claims and all


def test_erase_by_id_reports_what_it_did_not_find(stored: Any, capsys: pytest.CaptureFixture[str]) -> None:
    [first, *_] = json.loads(cli(capsys, "list", "--json", "--since", "3650d"))
    out = cli(capsys, "erase", "--id", first["submission_id"], "--id", "no-such-id")
    assert f"deleted 1 submission(s) from {IDEMPOTENCY_TABLE}:\n  {first['submission_id']}" in out
    assert "not found: no-such-id" in out


def test_copies_report_names_the_archive_and_dead_letter_queues() -> None:
    where = Where("t", archive="stack-archive", archive_days="30", dead_letter_queues=["https://sqs/q"])
    report = "\n".join(copies_report(where))
    assert "bus archive 'stack-archive', for 30 days" in report and "https://sqs/q" in report
    assert "forever" in "\n".join(copies_report(Where("t", archive="a", archive_days="0")))


def test_months_are_listed_newest_first_across_a_year_boundary() -> None:
    since, until = datetime(2025, 11, 20, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    assert months_newest_first(since, until) == ["2026-02", "2026-01", "2025-12", "2025-11"]
