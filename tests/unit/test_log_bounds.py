"""No log line, challenge record or bus event grows with what a visitor sends.

The honeypot line once carried the whole Origin (a 10,000-character Origin made a 10,498-byte
line; the honeypot is not rate limited, so about 17 GB of logs a day at the API's default
throttle). The bound lives in the telemetry layer; these tests drive every log path through the
real handler with hostile text and measure every line it prints.
"""

from __future__ import annotations

import io
import json
import logging
import string
import sys
from typing import Any
from urllib.parse import quote

import pytest
from aws_lambda_powertools import Logger
from captcha_verify.config import FailurePolicy
from captcha_verify.telemetry import MAX_TEXT_LENGTH, BoundedFormatter, bounded, bounded_logger
from captcha_verify.transport import ProviderReply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.handler_fakes import Rig, build_rig, http_event, minimal_settings

# The promise, in bytes of one line as CloudWatch stores it (docs/operations.md, Logs).
LINE_LIMIT_BYTES = 8192
ALLOWED = "https://www.example.com"
TOKEN = "Tk" + "a" * 62
PATHS = ["reject", "honeypot", "rate limit", "repeat", "delivered", "not delivered", "provider"]


def lines_of(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def longest_line(output: str) -> int:
    return max(len(line.encode("utf-8")) for line in lines_of(output))


@pytest.fixture(scope="module")
def rigs() -> dict[str, Rig]:
    """One rig per log path: the path's configuration (policy, allow-list, limit, store)."""
    return {
        "reject": build_rig(
            "byebot", minimal_settings(allowed_origins=frozenset({ALLOWED})), service="bounds-a"
        ),
        "honeypot": build_rig("byebot", minimal_settings(), service="bounds-b"),
        "rate limit": build_rig("byebot", minimal_settings(), service="bounds-c", rate_limit=1),
        "repeat": build_rig("byebot", minimal_settings(), service="bounds-d", remember=True),
        "delivered": build_rig("byebot", minimal_settings(), service="bounds-e"),
        "not delivered": build_rig("byebot", minimal_settings(), service="bounds-f"),
        "provider": build_rig(
            "friendlycaptcha", minimal_settings(failure_policy=FailurePolicy.OPEN), service="bounds-g"
        ),
    }


def form(fields: dict[str, str]) -> bytes:
    return "&".join(f"{quote(name)}={quote(value)}" for name, value in fields.items()).encode()


def request_for(path: str, origin: str, text: str, number: int) -> tuple[dict[str, Any], bytes]:
    token = TOKEN[:-8] + f"{number:08d}"
    token_field = "frc-captcha-solution" if path == "provider" else "byebot-token"
    fields = {token_field: token if path != "provider" else f"{token}.a.b.c", "message": text}
    if path == "honeypot":
        fields["_gotcha"] = text or "x"
    if path == "reject":
        fields = {"message": text}  # no token: missing-input-response, logged with the Origin
    headers = {"content-type": "application/x-www-form-urlencoded", "origin": origin}
    return headers, form(fields)


def run(rig: Rig, path: str, origin: str, text: str, number: int) -> str:
    """Everything the handler printed for the path's request(s), all lines."""
    headers, body = request_for(path, origin, text, number)
    ip = f"198.51.100.{number % 250}"
    printed = []
    # Not delivered: the store fails at the commit, after the token is spent, and so does the bus.
    rig.bus.failure = (text or "AccessDenied") if path == "not delivered" else None
    rig.store.failure = (text or "ProvisionedThroughputExceeded") if path == "not delivered" else None
    # The provider's answer carries free text of its own (Friendly's error code, a site key).
    reply = json.dumps({"success": False, "errors": [text], "sitekey": text}).encode()
    for _ in range(2 if path in ("rate limit", "repeat") else 1):
        rig.transport.replies = [ProviderReply(200, reply if path == "provider" else b'{"success": true}', 5)]
        rig.invoke(http_event(rig.provider, headers, body, source_ip=ip))
        printed.append(rig.output)
    return "".join(printed)


def test_the_honeypot_line_with_a_10000_character_origin_is_bounded(rigs: dict[str, Rig]) -> None:
    """The issue's reproduction: 10,498 bytes before."""
    output = run(rigs["honeypot"], "honeypot", "https://" + "x" * 9992, "bot", 1)
    [honeypot] = [json.loads(line) for line in lines_of(output) if '"honeypot tripped"' in line]
    assert longest_line(output) <= LINE_LIMIT_BYTES, longest_line(output)
    assert len(honeypot["origin"]) == MAX_TEXT_LENGTH and honeypot["origin"].endswith("…")


hostile_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.sampled_from('\x00\x1b\r\n\u2028"\\é😀\ud7ff'), min_size=200, max_size=3000),
    st.integers(min_value=0, max_value=12_000).map(lambda n: "x" * n),
    st.text(alphabet=string.printable, max_size=12_000),
)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(PATHS),
    origin=hostile_text,
    text=hostile_text,
    number=st.integers(min_value=0, max_value=10**7),
)
def test_no_log_line_exceeds_the_limit_on_any_path(
    rigs: dict[str, Rig], path: str, origin: str, text: str, number: int
) -> None:
    rig = rigs[path]
    output = run(rig, path, origin, text, number)
    assert lines_of(output), "every path logs"
    assert longest_line(output) <= LINE_LIMIT_BYTES, (path, longest_line(output))
    for line in lines_of(output):
        json.loads(line)  # still one whole JSON document, whatever was cut
    for item in rig.log.items:
        assert all(len(value) <= MAX_TEXT_LENGTH for value in item.values() if isinstance(value, str)), item
    for detail in [*rig.bus.details, *(json.loads(committed) for committed in rig.store.committed)]:
        assert detail["origin"] is None or len(detail["origin"]) <= MAX_TEXT_LENGTH
        assert len(detail["verification"].get("sitekey") or "") <= MAX_TEXT_LENGTH


def test_every_log_path_is_reached(rigs: dict[str, Rig]) -> None:
    """The property above covers each path it names: its own message appears."""
    expected = {
        "reject": "verification",
        "honeypot": "honeypot tripped",
        "rate limit": "verification",
        "repeat": "repeat answered from the submission store",
        "delivered": "submission committed",
        "not delivered": "submission lost: neither committed nor put on the bus",
        "provider": "verification",
    }
    for number, (path, message) in enumerate(expected.items(), start=1_000_000):
        records = [json.loads(line) for line in lines_of(run(rigs[path], path, ALLOWED, "hello", number))]
        assert message in {r.get("message") for r in records}, path
        if path == "rate limit":
            assert any(r.get("error_codes") == ["rate-limited"] for r in records)


def test_a_traceback_keeps_its_head_and_tail_and_the_line_its_bound() -> None:
    formatter = BoundedFormatter()
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "unhandled error", None, None)
    try:
        raise ValueError("\x1b" * 20_000 + "the end")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    assert len(line.encode()) <= LINE_LIMIT_BYTES
    document = json.loads(line)
    assert document["exception"].startswith("Traceback") and document["exception_name"] == "ValueError"
    assert "stack_trace" not in document


def test_bounded_cuts_text_lists_and_anything_else() -> None:
    assert bounded("a" * 300) == "a" * (MAX_TEXT_LENGTH - 1) + "…"
    assert bounded("short") == "short" and bounded(3) == 3 and bounded(None) is None and bounded(True) is True
    assert bounded(["x"] * 50) == ["x"] * 10
    assert bounded(ValueError("v" * 1000)) == "v" * (MAX_TEXT_LENGTH - 1) + "…"
    assert bounded("\ud800ok") == "?ok"  # a lone surrogate could not be written to the log stream


def test_the_bound_holds_when_a_plain_logger_of_the_service_came_first() -> None:
    """Powertools' first Logger of a service sets the formatter all its Loggers share."""
    stream = io.StringIO()
    Logger(service="bounds-first", logger_handler=logging.StreamHandler(stream))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POWERTOOLS_SERVICE_NAME", "bounds-first")
        bounded_logger().info("honeypot tripped", extra={"origin": "x" * 10_000})
    assert len(stream.getvalue()) < 1000 and '"origin":"xxx' in stream.getvalue()
