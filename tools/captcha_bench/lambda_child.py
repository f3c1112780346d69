"""One simulated Lambda execution environment, run by `make bench` in a fresh interpreter.

Run as a script by path (never imported): it puts the function code, the layer and the simulated
runtime's boto3 on sys.path in Lambda's order, imports the handler, answers one request (the cold
start), then, if asked, more requests (warm). Results go to the file descriptor named in
BENCH_RESULT_FD, one JSON line each, because the handler's own logs and metrics go to stdout.
"""

import importlib
import json
import os
import sys
import time


class Context:
    function_name = "bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def event(template: dict, number: int) -> dict:
    request = dict(template)
    request["body"] = json.dumps(
        {
            "email": "ann@example.org",
            "message": "Hello " * 40,
            "byebot-token": f"bb_tok_bench_{os.getpid()}_{number:06d}",
        }
    )
    # A new visitor each time (as on a quiet form), so a per-client rate limit never answers 429.
    http = {
        **template["requestContext"]["http"],
        "sourceIp": f"198.51.{number // 250 % 250}.{number % 250 + 1}",
    }
    request["requestContext"] = {
        **template["requestContext"],
        "requestId": f"bench-{os.getpid()}-{number}",
        "http": http,
    }
    return request


def floor_call(parts: dict):
    """Each outbound call a verified request needs, bare, with clients made beforehand; every call's
    time goes to `parts` under its name. The floor is the provider round trip and two DynamoDB
    writes (the claim before the provider, the commit after it); the other calls are timed for the
    table: the rate-limit counter (update_item) and a PutEvents."""
    import boto3
    import requests

    session = requests.Session()
    dynamodb = boto3.client("dynamodb")
    events = boto3.client("events")
    detail = json.dumps({"form": {"email": "ann@example.org", "message": "Hello " * 40}})

    def timed(name: str, work) -> None:
        before = time.perf_counter()
        work()
        parts.setdefault(name, []).append((time.perf_counter() - before) * 1000)

    def call(number: int) -> None:
        key = f"floor#{os.getpid()}#{number}"
        timed(
            "update_item",
            lambda: dynamodb.update_item(
                TableName=os.environ["RATE_LIMIT_TABLE_NAME"],
                Key={"pk": {"S": key}},
                UpdateExpression="ADD hits :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            ),
        )
        timed(
            "put_item",
            lambda: dynamodb.put_item(
                TableName=os.environ["IDEMPOTENCY_TABLE_NAME"],
                Item={"submission_id": {"S": key}, "state": {"S": "in_progress"}},
                ConditionExpression="attribute_not_exists(submission_id)",
            ),
        )
        timed(
            "provider",
            lambda: session.post(
                os.environ["PROVIDER_VERIFY_URL"], json={"api_key": "k", "token": key}, timeout=3
            ),
        )
        timed(
            "put_item",
            lambda: dynamodb.put_item(
                TableName=os.environ["CHALLENGE_TABLE_NAME"],
                Item={"provider": {"S": "floor"}, "sk": {"S": key}},
            ),
        )
        timed(
            "put_events",
            lambda: events.put_events(
                Entries=[
                    {
                        "Source": "captcha-verify",
                        "DetailType": "Form Submission",
                        "Detail": detail,
                        "EventBusName": os.environ["SUBMISSION_BUS_NAME"],
                    }
                ]
            ),
        )

    return call


def outbound_clock() -> list[tuple[float, float, str]]:
    """Wraps every AWS call and every HTTP request the handler makes, recording each one's span
    (start, end, kind) in the returned list. Spans may overlap (concurrent calls): a request's
    outbound time is their union, and its sequential AWS round trips are the groups of
    overlapping AWS spans."""
    import botocore.client
    import requests

    spans: list[tuple[float, float, str]] = []

    def timed(original, kind: str):
        def wrapper(*args, **kwargs):
            before = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spans.append((before, time.perf_counter(), kind))

        return wrapper

    # Both are the single funnel of their library's calls; wrapped here, in the bench's own child.
    for owner, name, kind in (
        (botocore.client.BaseClient, "_make_api_call", "aws"),
        (requests.Session, "send", "http"),
    ):
        setattr(owner, name, timed(getattr(owner, name), kind))
    return spans


def merged(spans: list[tuple[float, float, str]]) -> list[tuple[float, float]]:
    """Overlapping spans joined: one (start, end) per sequential round."""
    groups: list[tuple[float, float]] = []
    for start, end, _ in sorted(spans):
        if groups and start < groups[-1][1]:
            groups[-1] = (groups[-1][0], max(groups[-1][1], end))
        else:
            groups.append((start, end))
    return groups


def main() -> None:
    config = json.loads(sys.argv[1])
    results = os.fdopen(int(os.environ["BENCH_RESULT_FD"]), "w")
    sys.path[0:0] = config["paths"]
    started = time.perf_counter()
    parts: dict[str, list[float]] = {}
    if config["mode"] == "floor":
        call = floor_call(parts)
    else:
        module_name, handler_name = config["handler"].rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), handler_name)

        def call(number: int) -> None:
            answer = handler(event(config["event"], number), Context(f"bench-{number}"))
            if answer.get("statusCode") != 200:
                raise SystemExit(f"bench request {number} answered {answer.get('statusCode')}: {answer}")

    imported = time.perf_counter()
    call(0)
    answered = time.perf_counter()
    results.write(
        json.dumps({"import_ms": (imported - started) * 1000, "first_call_ms": (answered - imported) * 1000})
        + "\n"
    )
    results.flush()
    parts.clear()
    spans = outbound_clock() if config["mode"] != "floor" else []
    warm, own, rounds, aws, http = [], [], [], [], []
    for number in range(1, config["warm"] + 1):
        spans.clear()
        before = time.perf_counter()
        call(number)
        elapsed = (time.perf_counter() - before) * 1000
        warm.append(elapsed)
        own.append(elapsed - sum(end - start for start, end in merged(spans)) * 1000)
        aws_rounds = merged([span for span in spans if span[2] == "aws"])
        rounds.append(len(aws_rounds))
        aws.append(sum(end - start for start, end in aws_rounds) * 1000)
        http.append(sum(end - start for start, end in merged([s for s in spans if s[2] == "http"])) * 1000)
    timings = {"warm_ms": warm, "own_ms": own, "aws_rounds": rounds, "aws_ms": aws, "http_ms": http}
    results.write(json.dumps(timings | {"parts_ms": parts}) + "\n")
    results.close()


if __name__ == "__main__":
    main()
