"""What `make local` prints: one line per request; routine JSON log lines only with --raw-logs."""

from __future__ import annotations

import io
import json

import pytest
from captcha_local.terminal import RequestSummary, Terminal, compact, outcome, printable, summary_line


def _summary(status: int, body: object = "", location: str | None = None) -> RequestSummary:
    text = body if isinstance(body, str) else json.dumps(body)
    return RequestSummary("POST", "/verify/byebot", status, text, location, "req-1", 312)


def test_outcome_names_what_happened() -> None:
    assert outcome(_summary(200, {"success": True, "error-codes": [], "degraded": False})) == "verified"
    assert outcome(_summary(200, {"success": True, "error-codes": [], "degraded": True})) == "degraded"
    assert outcome(_summary(400, {"success": False, "error-codes": ["timeout-or-duplicate"]})) == (
        "timeout-or-duplicate"
    )
    assert outcome(_summary(404, {"message": "Not Found"})) == "Not Found"
    assert outcome(_summary(303, "", location="http://x/error.html?error=bad-request")) == (
        "-> http://x/error.html?error=bad-request"
    )
    assert outcome(_summary(200, "<html>")) == ""


def test_summary_line_is_one_short_line() -> None:
    line = summary_line(
        _summary(400, {"success": False, "error-codes": ["missing-input-response"]}), clock=lambda: 0
    )
    assert line.endswith("  POST /verify/byebot  400 missing-input-response  312 ms  id req-1")
    assert "\n" not in line and len(line) < 100


def test_routine_json_lines_are_hidden_and_warnings_shortened() -> None:
    info = json.dumps({"level": "INFO", "message": "verification", "provider": "byebot", "x": "y" * 800})
    emf = json.dumps({"_aws": {"CloudWatchMetrics": []}, "Verified": 1})
    warning = json.dumps({"level": "WARNING", "message": "provider could not verify", "reason": "timeout"})
    assert compact("ByeBotFunction", info) is None
    assert compact("ByeBotFunction", emf) is None
    assert compact("ByeBotFunction", "") is None
    assert (
        compact("ByeBotFunction", warning) == "  [ByeBotFunction] WARNING provider could not verify (timeout)"
    )
    assert compact("ByeBotFunction", "Traceback (most recent call last):") == (
        "  [ByeBotFunction] Traceback (most recent call last):"
    )


def test_raw_logs_print_every_line_verbatim() -> None:
    info = json.dumps({"level": "INFO", "message": "verification"})
    quiet, raw = io.StringIO(), io.StringIO()
    Terminal(raw=False, out=quiet).function_line("F", info)
    Terminal(raw=True, out=raw).function_line("F", info)
    assert quiet.getvalue() == ""
    assert raw.getvalue() == f"[F] {info}\n"


# What a visitor typed reaches the developer's terminal escaped, never as control codes.
FORGED = (
    "\r\x1b[2K[inbox] submission 1 from https://www.example.com via byebot delivered (email)"
    "\n\x1b]0;pwned\x07"
)


def _acts_on_terminal(text: str) -> bool:
    return any(not c.isprintable() for c in text.replace("\n", ""))


def test_a_field_name_cannot_forge_an_inbox_line_or_retitle_the_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The issue's reproduction: the [inbox] line printed the field names raw."""
    from captcha_local.inbox import NotificationInbox
    from captcha_local.resources import load_template

    inbox = NotificationInbox(load_template()["Resources"], "bus", lambda service: None, "us-east-1")
    detail = {
        "submission_id": "1\x1b[31m",
        "provider": "byebot",
        "form": {FORGED: "v"},
    }
    inbox._announce("email", {"Body": json.dumps({"detail": detail})}, True)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.count("[inbox]") == 2  # the forged one is text inside the real line
    assert not _acts_on_terminal(out), repr(out)
    assert "\\r\\x1b[2K[inbox]" in out and "\\x1b]0;pwned\\x07" in out and "1\\x1b[31m" in out


def test_request_lines_and_function_lines_are_escaped() -> None:
    out = io.StringIO()
    terminal = Terminal(raw=False, out=out)
    terminal.request(
        RequestSummary("POST", "/verify/\x1b[2Jbyebot", 404, '{"message": "\\u0007"}', None, "r", 1)
    )
    warning = json.dumps(
        {"level": "WARNING", "message": "rate limit not checked", "reason": "x\r\x1b[1Ay\u202e"}
    )
    terminal.function_line("F", warning)
    terminal.function_line("F", "Traceback \x1b[8m hidden")
    Terminal(raw=True, out=out).function_line("F", "\x9b31m raw")
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and not any(_acts_on_terminal(line) for line in lines), lines
    assert "/verify/\\x1b[2Jbyebot" in lines[0] and lines[0].rstrip().endswith("id r")
    assert lines[1] == "  [F] WARNING rate limit not checked (x\\r\\x1b[1Ay\\u202e)"


def test_printable_keeps_readable_text_and_escapes_the_rest() -> None:
    assert printable("Grüße 😀 \\x1b") == "Grüße 😀 \\x1b"
    assert printable("a\tb\x00\x7f\x85\u2028\ud800") == "a\\tb\\x00\\x7f\\x85\\u2028\\ud800"


def test_a_repeat_is_marked_as_a_repeat() -> None:
    out = io.StringIO()
    terminal = Terminal(out=out)
    answer = {"success": True, "error-codes": [], "degraded": False}
    repeat = json.dumps(
        {"level": "INFO", "message": "repeat answered from the submission store", "request_id": "req-1"}
    )
    terminal.function_line("ByeBotFunction", repeat)
    terminal.request(_summary(200, answer))
    terminal.request(_summary(200, answer))
    first, second = out.getvalue().splitlines()
    assert " 200 verified (repeat)  312 ms" in first
    assert " 200 verified  312 ms" in second  # the mark belongs to that request only
