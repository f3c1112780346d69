"""Faults shared by the fault suites: a peer that accepts and never answers, a client bound to it,
and an invocation timed on the wall clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from captcha_verify.aws_clients import bounded_config

from support import RawServer


def silent(connection: Any, closed: threading.Event) -> None:
    closed.wait(30)  # accepts, reads nothing, answers nothing


def silent_client(service: str, server: RawServer) -> Any:
    """The project's time-bounded client of `service`, pointed at a loopback peer that never answers."""
    return boto3.client(service, config=bounded_config(), endpoint_url=f"http://127.0.0.1:{server.port}")


def timed(
    invoke: Callable[[dict[str, Any]], dict[str, Any]], event: dict[str, Any]
) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    response = invoke(event)
    return response, time.monotonic() - started
