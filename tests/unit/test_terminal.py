"""What `make local` prints: one line per request; routine JSON log lines only with --raw-logs."""

from __future__ import annotations

import io
import json

from captcha_local.terminal import RequestSummary, Terminal, compact, outcome, summary_line


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
