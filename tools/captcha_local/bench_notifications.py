"""Latency from PutEvents to the owner's email and to the webhook in local mode, beside the bus's
own delivery to a plain queue (the baseline: what any rule on the bus costs).

    .venv/bin/python -m captcha_local.bench_notifications [--events 20]

Starts `make local`'s stack on free ports (moto, the notifications function in its worker
process, the demo site's webhook sink), puts one "Form Submission" event at a time on the local
bus and waits for: the event in a baseline queue fed by a rule with the same pattern, the message
in moto's SES, and the body at the sink. The first event pays the worker's cold start and is left
out. Numbers are this machine's, loopback only; the pollers long-poll as Lambda's do.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from captcha_verify.submission import DETAIL_TYPE, SOURCE
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from captcha_local.stack import REGION, LocalDeployment, Ports

WAIT_SECONDS = 15
POLL_SECONDS = 0.002
BASELINE = "bus to a queue (baseline)"


def _first_seen(checks: dict[str, Callable[[], bool]], started: float) -> dict[str, float]:
    """Milliseconds from `started` until each check first holds, all polled together; raises
    after WAIT_SECONDS."""
    seen: dict[str, float] = {}
    deadline = started + WAIT_SECONDS
    while len(seen) < len(checks):
        for name, check in checks.items():
            if name not in seen and check():
                seen[name] = (time.perf_counter() - started) * 1000
        if time.perf_counter() > deadline:
            raise TimeoutError(f"not delivered within {WAIT_SECONDS} s: {sorted(set(checks) - set(seen))}")
        time.sleep(POLL_SECONDS)
    return seen


def _detail(n: int) -> dict[str, Any]:
    return {
        "submission_id": str(uuid.uuid4()),
        "provider": "byebot",
        "received_at": "2026-11-21T10:00:05.250Z",
        "origin": "http://127.0.0.1",
        "request_id": f"bench-{n}",
        "form": {"email": "ann@example.org", "message": f"Hello number {n}\nSecond line"},
        "verification": {"degraded": False, "token_sha256": "0" * 64},
    }


def run(events: int) -> dict[str, list[float]]:
    stack = LocalDeployment(ports=Ports.free(), log=lambda *_: None)
    stack.start()
    try:
        assert stack.inbox is not None
        inbox = stack.inbox
        inbox.announce = lambda _: None
        bus, events_client, sqs = inbox.bus_name, stack.aws_client("events"), stack.aws_client("sqs")
        url = sqs.create_queue(QueueName="bench-baseline")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = json.dumps({"source": [SOURCE], "detail-type": [DETAIL_TYPE]})
        events_client.put_rule(Name="bench-baseline", EventBusName=bus, EventPattern=pattern)
        events_client.put_targets(Rule="bench-baseline", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
        sent = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
        figures: dict[str, list[float]] = {BASELINE: [], "email": [], "webhook": []}
        for n in range(events + 1):
            detail = _detail(n)
            emails_before = len(sent)
            started = time.perf_counter()
            events_client.put_events(
                Entries=[
                    {
                        "EventBusName": bus,
                        "Source": SOURCE,
                        "DetailType": DETAIL_TYPE,
                        "Detail": json.dumps(detail),
                    }
                ]
            )
            got: list[Any] = []

            def in_queue(into: list[Any] = got) -> bool:
                into += sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])
                return bool(into)

            def emailed(before: int = emails_before) -> bool:
                return len(sent) > before

            def posted(sid: str = detail["submission_id"]) -> bool:
                return any(e["detail"]["submission_id"] == sid and e.get("webhook") for e in inbox.snapshot())

            seen = _first_seen({BASELINE: in_queue, "email": emailed, "webhook": posted}, started)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
            if n:  # the first pays the worker's cold start
                for name, ms in seen.items():
                    figures[name].append(ms)
        return figures
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_notifications", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20)
    args = parser.parse_args(argv)
    figures = run(args.events)
    base = statistics.median(figures[BASELINE])
    print(f"{'from PutEvents to':28} {'median ms':>10} {'p95 ms':>8} {'x baseline':>10}")
    for name, values in figures.items():
        median = statistics.median(values)
        p95 = statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]
        print(f"{name:28} {median:10.1f} {p95:8.1f} {median / base:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
