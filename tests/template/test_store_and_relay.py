"""The submission store, its stream and the relay, after the SAM transform (as CloudFormation gets them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from captcha_local.stream_relay import matches
from captcha_verify.telemetry import SUBMISSION_COMMIT_FAILED, SUBMISSION_RELAY_FAILED
from support.cloudformation import PROVIDERS, resolve_if, translated


@pytest.fixture(scope="module")
def transformed() -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield translated(monkeypatch)["Resources"]


def test_the_store_is_encrypted_kept_for_the_retention_and_indexed_without_a_scan(transformed) -> None:
    table = transformed["SubmissionTable"]
    props = table["Properties"]
    assert table["DeletionPolicy"] == "Retain"  # the owner's data outlives a stack deletion
    assert props["KeySchema"] == [{"AttributeName": "submission_id", "KeyType": "HASH"}]
    indexes = {index["IndexName"]: index for index in props["GlobalSecondaryIndexes"]}
    assert indexes["ByMonth"]["KeySchema"] == [
        {"AttributeName": "received_month", "KeyType": "HASH"},
        {"AttributeName": "received_at", "KeyType": "RANGE"},
    ]
    assert indexes["ByMonth"]["Projection"] == {"ProjectionType": "ALL"}
    assert indexes["ByEmail"]["KeySchema"] == [
        {"AttributeName": "email", "KeyType": "HASH"},
        {"AttributeName": "received_at", "KeyType": "RANGE"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}


def test_each_function_keeps_submissions_for_the_retention_parameter(transformed) -> None:
    for prefix in PROVIDERS.values():
        env = transformed[f"{prefix}Function"]["Properties"]["Environment"]["Variables"]
        assert env["IDEMPOTENCY_TABLE_NAME"] == {"Ref": "SubmissionTable"}
        assert env["SUBMISSION_RETENTION_DAYS"] == {"Ref": "SubmissionRetentionDays"}


def _mapping(transformed: dict[str, Any]) -> dict[str, Any]:
    return transformed["SubmissionRelayFunctionCommitted"]["Properties"]


def test_the_relay_reads_the_stream_retries_and_dead_letters(transformed) -> None:
    mapping = _mapping(transformed)
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["SubmissionTable", "StreamArn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == -1 and mapping["MaximumRecordAgeInSeconds"] == -1
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["SubmissionRelayDeadLetterQueue", "Arn"]}}
    }
    assert mapping["FunctionName"] == {"Ref": "SubmissionRelayFunctionAliaslive"}
    role = transformed["SubmissionRelayFunctionRole"]["Properties"]
    # No managed policy for the stream (AWSLambdaDynamoDBExecutionRole reads every stream).
    assert (
        role["ManagedPolicyArns"][-1] != "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole"
    )
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    stream = json.dumps({"Fn::GetAtt": ["SubmissionTable", "StreamArn"]})
    assert {(json.dumps(s["Action"]), json.dumps(s["Resource"], sort_keys=True)) for s in statements} == {
        (json.dumps(["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]), stream),
        (json.dumps("dynamodb:ListStreams"), json.dumps("*")),
        (
            json.dumps("sqs:SendMessage"),
            json.dumps({"Fn::GetAtt": ["SubmissionRelayDeadLetterQueue", "Arn"]}),
        ),
        (
            json.dumps("events:PutEvents"),
            json.dumps(
                {
                    "Fn::Sub": [
                        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${eventBusName}",
                        {"eventBusName": {"Ref": "SubmissionBus"}},
                    ]
                },
                sort_keys=True,
            ),
        ),
    }


def _record(event_name: str, state: str | None) -> dict[str, Any]:
    image = {"submission_id": {"S": "x"}} | ({"state": {"S": state}} if state else {})
    return {"eventName": event_name, "dynamodb": {"NewImage": image}}


def test_the_filter_sends_committed_items_only(transformed) -> None:
    """DynamoDB stream filtering matches the record as Lambda receives it (Lambda developer guide,
    "Filtering DynamoDB events": eventName, dynamodb.NewImage.<attribute>.<type>)."""
    [pattern] = [json.loads(f["Pattern"]) for f in _mapping(transformed)["FilterCriteria"]["Filters"]]
    assert matches(pattern, _record("MODIFY", "committed"))
    assert matches(pattern, _record("INSERT", "committed"))
    assert not matches(pattern, _record("INSERT", "in_progress"))  # a claim
    assert not matches(pattern, _record("MODIFY", "answered"))  # a kept rejection
    assert not matches(pattern, _record("REMOVE", None))  # TTL or an erasure


@pytest.mark.parametrize("provisioned", ["0", "2"])
def test_the_relay_never_gets_provisioned_concurrency(provisioned: str) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        resources = translated(monkeypatch, ProvisionedConcurrency=provisioned)["Resources"]
    alias = resources["SubmissionRelayFunctionAliaslive"]["Properties"]
    for enabled in (True, False):
        config = resolve_if(
            alias.get("ProvisionedConcurrencyConfig"), {"ProvisionedConcurrencyEnabled": enabled}
        )
        assert config in (None, {"Ref": "AWS::NoValue"})
    verifier = resources["ByeBotFunctionAliaslive"]["Properties"]
    assert resolve_if(verifier["ProvisionedConcurrencyConfig"], {"ProvisionedConcurrencyEnabled": True}) == {
        "ProvisionedConcurrentExecutions": {"Ref": "ProvisionedConcurrency"}
    }


def test_relay_failures_and_dead_letters_are_alarmed(transformed) -> None:
    failed = transformed["SubmissionRelayFailedAlarm"]["Properties"]
    assert failed["MetricName"] == SUBMISSION_RELAY_FAILED
    assert failed["Dimensions"] == [{"Name": "service", "Value": "captcha-verify"}]
    dead = transformed["SubmissionRelayDeadLetterAlarm"]["Properties"]
    assert dead["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["SubmissionRelayDeadLetterQueue", "QueueName"]}}
    ]
    for alarm in (failed, dead):
        assert (alarm["Threshold"], alarm["AlarmActions"]) == (1, [{"Ref": "AlarmTopic"}])


def test_each_provider_alarms_on_a_commit_the_store_refused(transformed) -> None:
    for provider, prefix in PROVIDERS.items():
        alarm = transformed[f"{prefix}SubmissionCommitFailedAlarm"]["Properties"]
        assert alarm["MetricName"] == SUBMISSION_COMMIT_FAILED
        assert alarm["Dimensions"] == [
            {"Name": "service", "Value": "captcha-verify"},
            {"Name": "provider", "Value": provider},
        ]
        assert (alarm["Threshold"], alarm["AlarmActions"]) == (1, [{"Ref": "AlarmTopic"}])
