"""What a cold start imports and builds, and the layer's lock: the parts `make bench` depends on.

Imports are checked in a fresh interpreter, since this test process has long imported everything.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from captcha_verify import aws_clients

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "functions" / "shared"

BUILD_AND_REPORT = """
import sys
from captcha_verify.entrypoint import build_handler
handler = build_handler("byebot")
print(",".join(sorted(name for name in ("aws_xray_sdk", "botocore", "boto3") if name in sys.modules)))
"""


def imported_after_build(**environment: str) -> set[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(SHARED),
        "AWS_LAMBDA_FUNCTION_NAME": "captcha-verify-byebot",  # so Powertools acts as in Lambda
        "AWS_REGION": "us-east-1",
        "CHALLENGE_TABLE_NAME": "table",
        "PROVIDER_SECRET_ID": "secret",
        "SUBMISSION_BUS_NAME": "bus",
        "IDEMPOTENCY_TABLE_NAME": "idempotency",
        **environment,
    }
    result = subprocess.run(
        [sys.executable, "-c", BUILD_AND_REPORT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(filter(None, result.stdout.strip().splitlines()[-1].split(",")))


def test_tracing_off_never_loads_the_xray_sdk() -> None:
    assert "aws_xray_sdk" not in imported_after_build(POWERTOOLS_TRACE_DISABLED="true")


def test_tracing_on_wraps_the_handler_with_the_tracer() -> None:
    assert "aws_xray_sdk" in imported_after_build(POWERTOOLS_TRACE_DISABLED="false")


def test_aws_clients_share_one_session(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each session loads botocore's endpoint and partition data again: a cold start pays per session.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    created: list[boto3.session.Session] = []
    real_session = boto3.session.Session

    def counting_session() -> boto3.session.Session:
        created.append(real_session())
        return created[-1]

    monkeypatch.setattr(boto3.session, "Session", counting_session)
    aws_clients.session.cache_clear()
    aws_clients.cached_client.cache_clear()
    try:
        dynamodb = aws_clients.client("dynamodb")
        aws_clients.client("secretsmanager")
        assert aws_clients.client("dynamodb") is dynamodb
        assert len(created) == 1
    finally:
        aws_clients.session.cache_clear()
        aws_clients.cached_client.cache_clear()


def test_two_threads_asking_at_once_build_one_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """The claim and the rate-limit count ask for the DynamoDB client at once on a cold start."""
    built: list[str] = []

    class SlowSession:
        def client(self, service_name: str, **_: object) -> object:
            built.append(service_name)
            time.sleep(0.2)  # building a client takes tens of milliseconds
            return object()

    monkeypatch.setattr(aws_clients, "session", SlowSession)
    aws_clients.cached_client.cache_clear()
    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(aws_clients.client, ["dynamodb", "dynamodb"])
        assert first is second and built == ["dynamodb"]
    finally:
        aws_clients.cached_client.cache_clear()


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_entries(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a `uv pip compile --generate-hashes` file."""
    entries: dict[str, tuple[str, list[str]]] = {}
    name = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)==([^ \\;]+)", line):
            name = normalized(match.group(1))
            entries[name] = (match.group(2), [])
        elif hash_match := re.match(r"^\s+--hash=sha256:([0-9a-f]{64})", line):
            entries[name][1].append(hash_match.group(1))
    return entries


def test_layer_lock_pins_the_requirements_with_hashes_and_no_botocore() -> None:
    locked = lock_entries(SHARED / "requirements.lock")
    for name, version in pins(SHARED / "requirements.txt").items():
        assert name in locked and locked[name][0] == version, f"{name}=={version}: run `make lock`"
    for name, (version, hashes) in locked.items():
        assert hashes, f"{name}=={version} has no hash"
    assert not {"boto3", "botocore", "s3transfer", "python-dateutil", "six"} & set(locked)


def pins(path: Path) -> dict[str, str]:
    pinned = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pinned[normalized(name.split("[")[0])] = version.strip()
    return pinned


def test_dev_lock_is_up_to_date_with_the_pins() -> None:
    # `make venv` installs the lock, not requirements-dev.txt: a pin without `make lock` would be ignored.
    locked = lock_entries(ROOT / "requirements-dev.lock")
    for name, version in pins(ROOT / "requirements-dev.txt").items():
        assert name in locked and locked[name][0] == version, f"{name}=={version}: run `make lock`"
    assert all(hashes for _, hashes in locked.values())
