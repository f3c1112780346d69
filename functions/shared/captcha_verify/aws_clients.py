"""AWS clients with explicit time bounds, made once per process on first use.

boto3's defaults (60 s connect and read timeouts, legacy retries up to 5 attempts with backoff)
let a throttled or silent dependency outlast the Lambda's own timeout, and the visitor's verified
token is then lost to our failure. Every AWS call here fails fast instead, and the caller decides
what the failure means for the answer.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

CONNECT_TIMEOUT_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 2.0
# Total attempts, the first included: one retry absorbs a transient blip without doubling the
# worst-case latency more than once.
MAX_ATTEMPTS = 2


def bounded_config() -> Config:
    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        tcp_keepalive=True,
    )


@cache
def session() -> boto3.session.Session:
    """One session for every client: each new session loads botocore's endpoint and partition
    data again, which a cold start pays for in full (measured by `make bench`)."""
    return boto3.session.Session()


_creating = threading.Lock()


@cache
def cached_client(service_name: str) -> Any:
    return session().client(service_name, config=bounded_config())  # type: ignore[call-overload]


def client(service_name: str) -> Any:
    """A boto3 client for `service_name`, shared by every caller in this process.

    Made under a lock: on a cold start the claim and the rate-limit count ask for the DynamoDB
    client at once from two threads, and each would otherwise build its own (tens of ms each)."""
    with _creating:
        return cached_client(service_name)
