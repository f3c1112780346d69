"""`make local ARGS='--webhook-url URL --webhook-format slack'`: the real notifications function's
Slack message reaches the user's own webhook (here a receiver on loopback) byte for byte as the
inbox shows it, and the receiver's refusal reaches the function as its own."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from captcha_local.stack import LocalDeployment, Ports
from support import ScriptedProvider
from support.local_harness import TEST_RATE_LIMIT_PER_MINUTE, FunctionLog, Harness

pytestmark = pytest.mark.slow

WAIT_SECONDS = 10


@pytest.fixture(scope="module")
def slack() -> Iterator[ScriptedProvider]:
    receiver = ScriptedProvider()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def hooked(slack: ScriptedProvider) -> Iterator[Harness]:
    log = FunctionLog()
    stack = LocalDeployment(
        ports=Ports.free(),
        client_rate_limit=TEST_RATE_LIMIT_PER_MINUTE,
        webhook_url=slack.url.replace("/verify", "/services/T0/B0/secretpart"),
        webhook_format="slack",
        log=log,
    )
    stack.start()
    try:
        yield Harness(stack=stack, log=log, table=None)
    finally:
        stack.stop()


def test_the_slack_message_reaches_the_users_webhook_as_the_inbox_shows_it(
    hooked: Harness, slack: ScriptedProvider
) -> None:
    slack.answer(200, b"ok")
    token = hooked.issue("byebot")
    message = "Hi <!channel> <https://evil.example|Reset your password> & bye"
    response = hooked.post_json(
        "byebot", {"email": "ann@example.org", "message": message, token.field: token.value}
    )
    assert response.status_code == 200, response.text

    deadline = time.monotonic() + WAIT_SECONDS
    while not slack.received and time.monotonic() < deadline:
        time.sleep(0.05)
    [posted] = slack.received
    assert posted["path"] == "/services/T0/B0/secretpart"
    body = json.loads(posted["body"])
    assert "Hi &lt;!channel&gt; &lt;https://evil.example|Reset your password&gt; &amp; bye" in body["text"]
    assert hooked.stack.inbox is not None
    [entry] = [e for e in hooked.stack.inbox.snapshot() if e.get("webhook")]
    assert entry["webhook"][0]["body"].encode() == posted["body"]
    # The URL is a credential: never in a function's log line.
    assert not [line for _, line in hooked.log.snapshot() if "secretpart" in line]


def test_the_users_webhook_refusing_reaches_the_function_as_its_own(
    hooked: Harness, slack: ScriptedProvider
) -> None:
    slack.answer(404, b"no_service")
    token = hooked.issue("swetrix")
    response = hooked.post_json("swetrix", {"message": "Hello", token.field: token.value})
    assert response.status_code == 200, response.text

    deadline = time.monotonic() + WAIT_SECONDS
    found: list[dict] = []
    while not found and time.monotonic() < deadline:
        found = [
            r
            for r in hooked.log.json_records()
            if r.get("message") == "notification"
            and r.get("channel") == "webhook"
            and r.get("outcome") != "sent"
        ]
        time.sleep(0.05)
    assert [(r["outcome"], r["reason"]) for r in found] == [("dead-lettered", "webhook answered 404")]
