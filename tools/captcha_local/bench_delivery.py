"""Warm-path latency that delivery and idempotency add, as a ratio to the path without them.

    .venv/bin/python -m captcha_local.bench_delivery [--requests 300]

Both paths run the same handler in this process against moto in server mode on loopback (the
secret read and the challenge-log write included) and a provider stub on loopback that verifies
every token; each request carries a fresh token, as real traffic does. "without" replaces the
idempotency store and the bus with pass-throughs, so the difference is the idempotency record
(PutItem, then UpdateItem, per step) and the PutEvents. Numbers are this machine's, loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from captcha_verify.config import Settings
from captcha_verify.delivery import SubmissionBus
from captcha_verify.entrypoint import build_handler
from captcha_verify.idempotency import Kept, OnceStore, Ran
from moto.server import ThreadedMotoServer

from captcha_local.resources import (
    create_challenge_table,
    create_idempotency_table,
    create_secret,
    load_template,
)
from captcha_local.stack import Ports

WARMUP = 20


class _PassThroughOnce(OnceStore):
    def run_once(
        self, step: str, key: dict[str, str], work: Callable[[], Kept], remaining_ms: int | None, **_: Any
    ) -> Ran:
        return Ran(work(), replayed=False)


class _NoBus(SubmissionBus):
    def put(self, detail: dict[str, Any]) -> str:
        return "not-sent"


class _Context:
    function_name = "bench"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def _provider() -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            body = json.dumps({"success": True, "sitekey": "abc123def456abc12345"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/validate_token"


def _event() -> dict[str, Any]:
    token = "bb_tok_" + uuid.uuid4().hex
    return {
        "version": "2.0",
        "routeKey": "POST /verify/byebot",
        "rawPath": "/verify/byebot",
        "headers": {"content-type": "application/json", "origin": "https://www.example.com"},
        "requestContext": {
            "http": {"method": "POST", "path": "/verify/byebot", "sourceIp": "198.51.100.23"},
            "requestId": uuid.uuid4().hex,
            "routeKey": "POST /verify/byebot",
            "stage": "$default",
        },
        "body": json.dumps({"email": "ann@example.org", "message": "Hello", "byebot-token": token}),
        "isBase64Encoded": False,
    }


def _measure(handler: Callable[[dict[str, Any], Any], dict[str, Any]], count: int) -> list[float]:
    timings = []
    # The EMF metric blobs Lambda would ship to CloudWatch go to a buffer, not the terminal.
    with contextlib.redirect_stdout(io.StringIO()):
        for _ in range(count):
            event = _event()
            start = time.perf_counter()
            answer = handler(event, _Context())
            timings.append((time.perf_counter() - start) * 1000)
            assert answer["statusCode"] == 200, answer
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = Ports.free().aws
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    provider, provider_url = _provider()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_SERVICE_NAME="bench",
        POWERTOOLS_METRICS_NAMESPACE="Bench",
        POWERTOOLS_LOG_LEVEL="ERROR",
    )
    try:
        template = load_template()
        create_challenge_table(boto3.client("dynamodb"), "challenge", template)
        create_idempotency_table(boto3.client("dynamodb"), "idempotency", template)
        boto3.client("events").create_event_bus(Name="submissions")
        create_secret(boto3.client("secretsmanager"), "bench/byebot", "bb-bench-secret")
        settings = Settings(
            challenge_table_name="challenge",
            provider_secret_id="bench/byebot",
            submission_bus_name="submissions",
            idempotency_table_name="idempotency",
            provider_verify_url=provider_url,
        )
        with_them = build_handler("byebot", settings=settings)
        without = build_handler(
            "byebot", settings=settings, bus=_NoBus("none"), once=_PassThroughOnce("none", 600)
        )
        results: dict[str, list[float]] = {"without": [], "with": []}
        for handler in (without, with_them):
            _measure(handler, WARMUP)
        # Interleaved rounds, so drift on a shared machine hits both paths alike.
        for _ in range(args.requests // 50):
            for name, handler in (("without", without), ("with", with_them)):
                results[name] += _measure(handler, 50)
        for name, timings in results.items():
            p95 = statistics.quantiles(timings, n=20)[18]
            print(f"{name:8} n={len(timings)} median {statistics.median(timings):6.2f} ms  p95 {p95:6.2f} ms")
        ratio = statistics.median(results["with"]) / statistics.median(results["without"])
        print(f"ratio of medians (with / without): {ratio:.2f}")
    finally:
        provider.shutdown()
        moto.stop()


if __name__ == "__main__":
    main()
