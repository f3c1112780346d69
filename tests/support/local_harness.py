"""Helpers for the integration tests: tokens from the sandbox, requests to the local API, the
sandbox's fault and call-log endpoints, the function log, and the challenge log table.

Every token a test obtains goes through `Harness.issue`, which remembers it, so a test can
check that no raw token ever reached a function log line or the challenge log table.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from boto3.dynamodb.conditions import Attr, Key
from captcha_local.sandbox import SANDBOX_CREDENTIALS
from captcha_local.stack import LocalDeployment, Ports

# Generous for one verification on loopback (cold start of a worker included), but bounded.
HTTP_TIMEOUT = 20
LOG_WAIT_SECONDS = 5
# Every test request comes from 127.0.0.1: far above what one test module sends in a minute, so the
# per-client limit is enforced (counted in moto) without answering a test 429.
TEST_RATE_LIMIT_PER_MINUTE = 100_000


@contextmanager
def running_stack(
    log: Callable[[str, str], None], client_rate_limit: int = TEST_RATE_LIMIT_PER_MINUTE
) -> Iterator[LocalDeployment]:
    """A LocalDeployment on free ports, stopped on exit (which also resets its moto state)."""
    stack = LocalDeployment(ports=Ports.free(), client_rate_limit=client_rate_limit, log=log)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Token:
    provider: str
    value: str
    field: str

    @property
    def sha256(self) -> str:
        return sha256_hex(self.value)


@dataclass
class FunctionLog:
    """The functions' stdout lines, as LocalDeployment's log sink delivers them (from worker threads)."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, function: str, line: str) -> None:
        with self.lock:
            self.lines.append((function, line))

    def snapshot(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.lines)

    def json_records(self) -> list[dict[str, Any]]:
        records = []
        for _, line in self.snapshot():
            text = line.strip()
            if text.startswith("{"):
                try:
                    records.append(json.loads(text))
                except ValueError:
                    continue
        return records

    def verification_lines(self, token_sha256: str, count: int = 1) -> list[dict[str, Any]]:
        """The "verification" log lines for one token; waits briefly, since a worker's stdout is
        pumped by a thread that may lag the HTTP answer by a moment."""
        deadline = time.monotonic() + LOG_WAIT_SECONDS
        while True:
            found = [
                record
                for record in self.json_records()
                if record.get("message") == "verification" and record.get("token_sha256") == token_sha256
            ]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@dataclass
class Harness:
    stack: LocalDeployment
    log: FunctionLog
    table: Any
    tokens: list[Token] = field(default_factory=list)

    @property
    def api(self) -> str:
        return self.stack.url("api")

    @property
    def sandbox(self) -> str:
        return self.stack.url("sandbox")

    @property
    def site(self) -> str:
        return self.stack.url("site")

    def verify_url(self, provider: str) -> str:
        return f"{self.api}/verify/{provider}"

    # -- tokens ---------------------------------------------------------------------------

    def issue(self, provider: str, **options: Any) -> Token:
        """A fresh token from the sandbox, as the provider's widget would obtain it."""
        body = {"sitekey": SANDBOX_CREDENTIALS[provider].sitekey, **options}
        response = requests.post(f"{self.sandbox}/{provider}/issue", json=body, timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text
        answer = response.json()
        token = Token(provider, answer["token"], answer["field"])
        self.tokens.append(token)
        return token

    # -- the API ----------------------------------------------------------------------------

    def post_json(
        self, provider: str, body: dict[str, Any], *, origin: str | None = "site", **headers: str
    ) -> requests.Response:
        all_headers = {"Accept": "application/json", **headers}
        if origin is not None:
            all_headers["Origin"] = self.site if origin == "site" else origin
        return requests.post(self.verify_url(provider), json=body, headers=all_headers, timeout=HTTP_TIMEOUT)

    def verify(self, token: Token, **kwargs: Any) -> requests.Response:
        return self.post_json(token.provider, {token.field: token.value}, **kwargs)

    def post_form(self, provider: str, fields: dict[str, str]) -> requests.Response:
        """A plain HTML form post as a browser sends it: form body, Accept preferring text/html."""
        return requests.post(
            self.verify_url(provider),
            data=fields,
            headers={
                "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                "Origin": self.site,
            },
            allow_redirects=False,
            timeout=HTTP_TIMEOUT,
        )

    # -- the sandbox's test endpoints ----------------------------------------------------

    def inject_fault(
        self, provider: str, status: int, body: str = "", delay_ms: int = 0, count: int = 1
    ) -> None:
        response = requests.post(
            f"{self.sandbox}/_sandbox/faults",
            json={"provider": provider, "status": status, "body": body, "delay_ms": delay_ms, "count": count},
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 201, response.text

    def clear_faults(self) -> None:
        requests.delete(f"{self.sandbox}/_sandbox/faults", timeout=HTTP_TIMEOUT).raise_for_status()

    def verify_calls(self, provider: str | None = None) -> list[dict[str, Any]]:
        response = requests.get(f"{self.sandbox}/_sandbox/calls", timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return [call for call in response.json() if provider is None or call["provider"] == provider]

    # -- the challenge log ----------------------------------------------------------------

    def records(self, provider: str, token_sha256: str | None = None) -> list[dict[str, Any]]:
        """One provider's records, newest first, by Query on the partition key (never a Scan)."""
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("provider").eq(provider),
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        if token_sha256 is not None:
            query["FilterExpression"] = Attr("token_sha256").eq(token_sha256)
        items: list[dict[str, Any]] = []
        while True:
            page = self.table.query(**query)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
