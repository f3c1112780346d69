"""One local stack (moto, provider sandbox, SAM CLI's local API Gateway, demo site) for the
integration tests, started once per test module and reached over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from captcha_local.stack import LocalDeployment
from support.local_harness import FunctionLog, Harness, running_stack


@pytest.fixture(scope="module")
def function_log() -> FunctionLog:
    return FunctionLog()


@pytest.fixture(scope="module")
def local_stack(function_log: FunctionLog) -> Iterator[LocalDeployment]:
    with running_stack(function_log) as stack:
        yield stack


@pytest.fixture(scope="module")
def harness(local_stack: LocalDeployment, function_log: FunctionLog) -> Harness:
    env = local_stack.aws_environment()
    session = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )
    table = session.resource("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"]).Table(local_stack.table_name)
    return Harness(stack=local_stack, log=function_log, table=table)


@pytest.fixture
def h(harness: Harness) -> Iterator[Harness]:
    """The shared harness, with no injected fault left behind for the next test."""
    yield harness
    harness.clear_faults()
