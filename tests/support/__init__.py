"""Helpers shared by the test suites: the events/ folder, a Lambda context, log capture, scripted
and raw loopback peers, and AWS's limits that moto does not enforce.

Tests import helpers from this package only, never from another test module or a conftest
(tests/test_suite_layout.py holds that); fixtures stay in the conftest files. Its modules:
aws (the handler tests' tables, bus, clock and readers), answers (the providers' secrets and
verified answers), faults (peers that never answer), handler_fakes (a handler on in-memory fakes),
cloudformation (template.yaml processed as CloudFormation does), local_harness (a running
`make local` for the integration and browser tests).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from captcha_verify.providers import REGISTRY

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
SITEVERIFY_KEYS = frozenset(
    {
        "success",
        "error-codes",
        "provider",
        "challenge_ts",
        "hostname",
        "sitekey",
        "solve_time_ms",
        "interactive",
        "degraded",
    }
)
# What a second use of a token answers: Captcha Cat/ByeBot's engine answers a bare 400 for
# invalid, expired and used alike, and yCAPTCHA deletes a used token ("Invalid token").
REUSED_TOKEN_CODES = {
    "captchacat": "invalid-input-response",
    "byebot": "invalid-input-response",
    "swetrix": "timeout-or-duplicate",
    "ycaptcha": "invalid-input-response",
    "friendlycaptcha": "timeout-or-duplicate",
    "turnstile": "timeout-or-duplicate",
}
TOKEN_FIELDS = {provider.name: provider.token_fields[0] for provider in REGISTRY}


def load_event(provider: str, scenario: str, **headers: str) -> dict[str, Any]:
    """An HTTP API 2.0 event from events/<provider>/<scenario>.json, with headers overridden
    (underscores in names become dashes)."""
    event = json.loads((EVENTS / provider / f"{scenario}.json").read_text())
    for name, value in headers.items():
        event["headers"][name.replace("_", "-")] = value
    return event


def event_body(event: dict[str, Any]) -> str:
    body = event.get("body") or ""
    return base64.b64decode(body).decode() if event.get("isBase64Encoded") else body


def with_body(event: dict[str, Any], body: str | bytes, *, base64_encoded: bool = False) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    raw = body.encode() if isinstance(body, str) else body
    changed["body"] = base64.b64encode(raw).decode() if base64_encoded else raw.decode()
    changed["isBase64Encoded"] = base64_encoded
    return changed


def event_token(event: dict[str, Any], provider: str) -> str:
    """The token an event carries in its provider's field (events hold well-shaped sample tokens)."""
    text = event_body(event)
    marker = TOKEN_FIELDS[provider]
    if event["headers"]["content-type"].startswith("application/json"):
        return json.loads(text)[marker]
    return parse_qs(text)[marker][0]


def with_token(event: dict[str, Any], provider: str, suffix: str) -> dict[str, Any]:
    """The event with another token of the same shape (its last characters replaced by `suffix`),
    for tests that need distinct tokens: a repeated token is answered from the idempotency record."""
    token = event_token(event, provider)
    other = token[: -len(suffix)] + suffix
    return with_body(
        event, event_body(event).replace(token, other), base64_encoded=bool(event.get("isBase64Encoded"))
    )


@dataclass
class FakeContext:
    """The LambdaContext attributes Powertools reads."""

    function_name: str = "captcha-verify-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:captcha-verify-test"
    aws_request_id: str = "3f1a7c2e-0000-4000-8000-000000000001"
    remaining_ms: int = 10_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def log_records(text: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(text) if "_aws" not in line]


def emf_metrics(text: str) -> dict[str, list[float]]:
    """Metric name -> values, across every EMF blob in the output."""
    values: dict[str, list[float]] = {}
    for blob in json_lines(text):
        if "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                values.setdefault(metric["Name"], []).extend(value if isinstance(value, list) else [value])
    return values


@dataclass
class Scripted:
    status: int
    body: bytes = b""
    delay: float = 0.0
    headers: dict[str, str] | None = None


class ScriptedProvider:
    """A provider stand-in on loopback that answers from a script and remembers what it was sent.

    A real socket, so the session, retries and timeouts are exercised as in Lambda.
    """

    def __init__(self) -> None:
        self.script: list[Scripted] = []
        self.received: list[dict[str, Any]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                provider.received.append(
                    {"path": self.path, "headers": dict(self.headers.items()), "body": raw}
                )
                answer = provider.script.pop(0) if provider.script else Scripted(599, b"no script")
                time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in (answer.headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/verify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, status: int, body: bytes | str | dict[str, Any] = b"", **options: Any) -> None:
        if isinstance(body, dict):
            body = json.dumps(body)
        self.script.append(Scripted(status, body.encode() if isinstance(body, str) else body, **options))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RawServer:
    """A loopback TCP server whose every connection is handed to `behave(connection)`: for peers
    that drip, stall, never answer or speak the wrong protocol. Threads are daemons and every
    connection is closed on `close()`, so a test never outlives its server."""

    def __init__(self, behave: Any) -> None:
        import socket

        self.behave = behave
        self.connections: list[Any] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/verify"
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: Any) -> None:
        with contextlib.suppress(OSError):
            self.behave(connection, self.closed)

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        for connection in self.connections:
            connection.close()


def read_request(connection: Any) -> bytes:
    """Reads one HTTP request's head and its Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    while len(body) < length:
        chunk = connection.recv(4096)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


# ------------------------------------------------------------------ AWS limits moto does not enforce
# A DynamoDB item is at most 400 KB: the UTF-8 lengths of attribute names and values ("Item size",
# DynamoDB developer guide, service quotas). A PutEvents request is at most 256 KB, counted as the
# UTF-8 bytes of each entry's Source, DetailType, Detail (and Time, 14 bytes, and Resources)
# ("Calculating PutEvents event entry size", EventBridge user guide).
DYNAMODB_ITEM_BYTES = 400 * 1024
PUT_EVENTS_BYTES = 256 * 1024


def attribute_bytes(value: dict[str, Any]) -> int:
    (kind, inner), *_ = value.items()
    if kind in ("S", "N"):
        return len(str(inner).encode())
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_bytes(v) for k, v in inner.items())
    if kind == "L":
        return 3 + sum(1 + attribute_bytes(v) for v in inner)
    return sum(len(str(v).encode()) for v in inner)  # SS, NS, BS


def _too_large(operation: str, message: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": "ValidationException", "Message": message}}, operation)


def _check_item(params: dict[str, Any], **_: Any) -> None:
    attributes = params.get("Item") or {
        **params.get("Key", {}),
        **params.get("ExpressionAttributeValues", {}),
    }
    size = sum(len(name.encode()) + attribute_bytes(value) for name, value in attributes.items())
    if size > DYNAMODB_ITEM_BYTES:
        raise _too_large("PutItem", "Item size has exceeded the maximum allowed size")


def _check_entries(params: dict[str, Any], **_: Any) -> None:
    size = sum(
        sum(len(str(entry.get(k, "")).encode()) for k in ("Source", "DetailType", "Detail"))
        + (14 if "Time" in entry else 0)
        + sum(len(r.encode()) for r in entry.get("Resources", []))
        for entry in params.get("Entries", [])
    )
    if size > PUT_EVENTS_BYTES:
        raise _too_large("PutEvents", "Total size of the entries in the request is over the limit")


def enforce_aws_limits(client: Any) -> Any:
    """The client (moto behind it) refusing what AWS refuses: oversized items and PutEvents entries."""
    events = client.meta.events
    events.register("provide-client-params.dynamodb.PutItem", _check_item, unique_id="limit-put")
    events.register("provide-client-params.dynamodb.UpdateItem", _check_item, unique_id="limit-update")
    events.register("provide-client-params.events.PutEvents", _check_entries, unique_id="limit-events")
    return client


@dataclass
class CallRounds:
    """Counts sequential AWS round trips with botocore's event hooks: every call is stretched by
    `latency` (as a real network round trip would be), and calls whose spans overlap count as one."""

    latency: float = 0.03
    spans: list[tuple[float, float, str]] | None = None
    _open: dict[int, tuple[float, str]] | None = None

    def watch(self, client: Any) -> None:
        client.meta.events.register("before-call.*.*", self._before, unique_id="rounds-before")
        client.meta.events.register("after-call.*.*", self._after, unique_id="rounds-after")

    def reset(self) -> None:
        self.spans, self._open = [], {}

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        if self._open is None:
            return
        self._open[id(context)] = (time.monotonic(), model.name)
        time.sleep(self.latency)

    def _after(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        if self._open is None or self.spans is None or id(context) not in self._open:
            return
        started, name = self._open.pop(id(context))
        self.spans.append((started, time.monotonic(), name))

    def rounds(self) -> list[list[str]]:
        """The calls, grouped into sequential rounds (overlapping spans form one round)."""
        groups: list[list[str]] = []
        end = float("-inf")
        for started, finished, name in sorted(self.spans or []):
            if started < end:
                groups[-1].append(name)
                end = max(end, finished)
            else:
                groups.append([name])
                end = finished
        return groups

    def stop(self) -> None:
        self._open = None


def committing(params: dict[str, Any]) -> bool:
    """The put that commits a verified submission (not the claim, not the challenge record)."""
    return params.get("Item", {}).get("state", {}).get("S") == "committed"


@contextlib.contextmanager
def refusing(client: Any, operation: str, code: str = "ServiceUnavailable", when: Any = None) -> Any:
    """`client` answers every `operation` (e.g. "events.PutEvents") whose parameters satisfy
    `when` (default: all) with the error `code` inside the block, as an AWS outage does; the hook
    is gone after it."""
    from botocore.exceptions import ClientError

    refused: list[str] = []

    def refuse(params: dict[str, Any], model: Any, **_: Any) -> None:
        if when is not None and not when(params):
            return
        refused.append(model.name)
        raise ClientError({"Error": {"Code": code, "Message": "refused by the test"}}, model.name)

    unique_id = f"refuse-{operation}-{id(refused)}"
    client.meta.events.register(f"provide-client-params.{operation}", refuse, unique_id=unique_id)
    try:
        yield refused
    finally:
        client.meta.events.unregister(f"provide-client-params.{operation}", unique_id=unique_id)
