"""Regressions: the provider call is bounded in wall-clock time and body size, its
failures are classed (timed out, TLS, unreachable), and a bad header never reaches requests."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests
from captcha_verify.outcome import ErrorCode
from captcha_verify.providers import OutboundCall
from captcha_verify.transport import MAX_PROVIDER_BODY_BYTES, ProviderUnreachable, Transport
from support import ScriptedProvider, read_request

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


def drip_body(connection: Any, closed: threading.Event) -> None:
    read_request(connection)
    connection.sendall(OK_HEAD + b"Content-Length: 100\r\n\r\n")
    for _ in range(100):  # one byte every 0.2 s: 20 s in all, each read well inside its timeout
        if closed.wait(0.2):
            return
        connection.sendall(b" ")


def drip_head(connection: Any, closed: threading.Event) -> None:
    read_request(connection)
    for byte in OK_HEAD * 10:
        if closed.wait(0.2):
            return
        connection.sendall(bytes([byte]))


def huge_body(connection: Any, closed: threading.Event) -> None:
    read_request(connection)
    size = 50 * 1024 * 1024
    connection.sendall(OK_HEAD + f"Content-Length: {size}\r\n\r\n".encode())
    block = b"x" * 65536
    for _ in range(size // len(block)):
        if closed.is_set():
            return
        connection.sendall(block)


def plain_http(connection: Any, closed: threading.Event) -> None:
    connection.recv(4096)
    connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def failure(call: OutboundCall, budget: float, transport: Transport | None = None) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(ProviderUnreachable) as caught:
        (transport or Transport()).send(call, budget)
    return caught.value.answer.reason, time.monotonic() - started


@pytest.mark.parametrize("behave", [drip_body, drip_head], ids=["body", "status line and headers"])
def test_a_dripping_provider_is_cut_at_the_deadline(behave: Any, raw_server: Any) -> None:
    server = raw_server(behave)
    reason, elapsed = failure(OutboundCall(server.url, {"token": "t"}), budget=1.0)
    # Bounded by the budget, not by 20 s of drip (the slack covers a loaded test machine).
    assert reason == "provider timed out" and elapsed < 3.0


def test_a_huge_body_is_refused_without_reading_it_all(raw_server: Any) -> None:
    server = raw_server(huge_body)
    reason, _ = failure(OutboundCall(server.url, {"token": "t"}), budget=5.0)
    assert reason == "provider body over the limit"
    assert MAX_PROVIDER_BODY_BYTES <= 64 * 1024


def test_a_read_timeout_is_reported_as_timed_out() -> None:
    server = ScriptedProvider()
    try:
        server.answer(200, {"success": True}, delay=1.5)
        reason, elapsed = failure(OutboundCall(server.url, {"token": "t"}), budget=0.5)
        assert reason == "provider timed out" and elapsed < 1.4
    finally:
        server.close()


def test_the_provider_gets_the_budget_it_was_promised() -> None:
    # Before: with a 1.5 s budget, reads were cut at 0.75 s, so a 1.2 s answer failed.
    server = ScriptedProvider()
    try:
        server.answer(200, {"success": True}, delay=1.2)
        reply = Transport().send(OutboundCall(server.url, {"token": "t"}), budget=1.5)
        assert reply.status == 200 and reply.body == b'{"success": true}'
    finally:
        server.close()


def test_redirects_are_not_followed() -> None:
    server = ScriptedProvider()
    try:
        server.answer(307, b"", headers={"Location": server.url + "/elsewhere"})
        server.answer(200, {"success": True})
        reply = Transport().send(OutboundCall(server.url, {"token": "t"}), budget=2.0)
        assert reply.status == 307 and len(server.received) == 1
    finally:
        server.close()


def test_a_tls_failure_is_classed_as_such(raw_server: Any) -> None:
    server = raw_server(plain_http)
    reason, _ = failure(OutboundCall(server.url.replace("http://", "https://"), {"token": "t"}), budget=2.0)
    assert reason == "provider TLS error"


def test_a_refused_connection_is_unreachable() -> None:
    server = ScriptedProvider()
    url = server.url
    server.close()
    reason, _ = failure(OutboundCall(url, {"token": "t"}), budget=2.0)
    assert reason.startswith("provider unreachable")


def test_a_secret_with_a_newline_never_reaches_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests would raise InvalidHeader quoting the value, and X-Ray (which wraps the send)
    # would record that text, secret included.
    sent: list[object] = []
    monkeypatch.setattr(requests.Session, "send", lambda *args, **kwargs: sent.append(args))
    secret = "frc-secret\nX-Injected: 1"
    with pytest.raises(ProviderUnreachable) as caught:
        Transport().send(
            OutboundCall("https://127.0.0.1:9/verify", {"response": "t"}, {"X-API-Key": secret}), 2.0
        )
    assert caught.value.answer.error_code is ErrorCode.INVALID_INPUT_SECRET
    assert (
        sent == []
        and "frc-secret" not in str(caught.value)
        and "frc-secret" not in caught.value.answer.reason
    )
