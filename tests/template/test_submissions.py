"""The submission bus and its consumers, checked after the SAM transform (as CloudFormation gets them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from captcha_verify.submission import DETAIL_TYPE, SOURCE
from captcha_verify.telemetry import SUBMISSION_DELIVERY_FAILED
from template.test_template import PROVIDERS
from template.test_transformed import IDEMPOTENCY_ACTIONS, translated

RULES = {"NotificationRule": "NotificationDeadLetterQueue", "WebhookRule": "WebhookDeadLetterQueue"}


@pytest.fixture(scope="module")
def transformed() -> Iterator[dict[str, Any]]:
    """The template as CloudFormation receives it (language extensions, then SAM's transform)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield translated(monkeypatch)["Resources"]


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def test_each_function_puts_events_on_the_bus_only_and_uses_only_the_idempotency_calls(transformed) -> None:
    for prefix in PROVIDERS.values():
        statements = _statements(transformed[f"{prefix}FunctionRole"])
        put_events = [s for s in statements if "events:PutEvents" in _actions(s)]
        assert put_events == [
            {
                "Action": "events:PutEvents",
                "Effect": "Allow",
                "Resource": {
                    "Fn::Sub": [
                        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${eventBusName}",
                        {"eventBusName": {"Ref": "SubmissionBus"}},
                    ]
                },
            }
        ], prefix
        on_idempotency = [
            s for s in statements if s.get("Resource") == {"Fn::GetAtt": ["SubmissionTable", "Arn"]}
        ]
        assert on_idempotency == [
            {
                "Effect": "Allow",
                "Action": list(IDEMPOTENCY_ACTIONS),
                "Resource": {"Fn::GetAtt": ["SubmissionTable", "Arn"]},
            }
        ], prefix
        assert not [
            a for s in statements for a in _actions(s) if a.startswith("events:") and a != "events:PutEvents"
        ]


def test_bus_and_archive(transformed) -> None:
    assert transformed["SubmissionBus"]["Type"] == "AWS::Events::EventBus"
    archive = transformed["SubmissionArchive"]["Properties"]
    assert archive["SourceArn"] == {"Fn::GetAtt": ["SubmissionBus", "Arn"]}
    assert archive["RetentionDays"] == {"Ref": "SubmissionArchiveRetentionDays"}
    assert archive["EventPattern"] == {"source": [SOURCE], "detail-type": [DETAIL_TYPE]}

    # The submission store: tests/template/test_store_and_relay.py.


def test_function_environment_names_the_bus_and_table(transformed) -> None:
    for prefix in PROVIDERS.values():
        env = transformed[f"{prefix}Function"]["Properties"]["Environment"]["Variables"]
        assert env["SUBMISSION_BUS_NAME"] == {"Ref": "SubmissionBus"}
        assert env["IDEMPOTENCY_TABLE_NAME"] == {"Ref": "SubmissionTable"}
        assert env["IDEMPOTENCY_WINDOW_SECONDS"] == {"Ref": "IdempotencyWindowSeconds"}
        assert env["HONEYPOT_FIELD"] == {"Ref": "HoneypotField"}
        assert env["REQUIRED_FIELDS"] == {"Ref": "RequiredFields"}


@pytest.mark.parametrize(("rule_id", "queue_id"), RULES.items())
def test_each_rule_retries_and_dead_letters_into_an_alarmed_queue(
    transformed, rule_id: str, queue_id: str
) -> None:
    rule = transformed[rule_id]
    props = rule["Properties"]
    assert props["EventBusName"] == {"Ref": "SubmissionBus"}
    assert props["EventPattern"] == {"source": [SOURCE], "detail-type": [DETAIL_TYPE]}
    [target] = props["Targets"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] >= 3600
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    assert "InputTransformer" in target

    queue = transformed[queue_id]
    assert queue["Condition"] == rule["Condition"] and queue["Properties"]["SqsManagedSseEnabled"] is True
    [queue_policy] = [
        r
        for r in transformed.values()
        if r["Type"] == "AWS::SQS::QueuePolicy" and r["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    [statement] = queue_policy["Properties"]["PolicyDocument"]["Statement"]
    assert (
        statement["Principal"] == {"Service": "events.amazonaws.com"}
        and statement["Action"] == "sqs:SendMessage"
    )
    assert statement["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}

    [alarm] = [
        r["Properties"]
        for r in transformed.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("Dimensions")
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    ]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Threshold"] == 1 and alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_email_consumer_is_an_encrypted_topic_events_may_use(transformed) -> None:
    for logical_id in (
        "NotificationTopicKey",
        "NotificationTopic",
        "NotificationTopicPolicy",
        "NotificationSubscription",
    ):
        assert transformed[logical_id]["Condition"] == "HasNotificationEmail", logical_id
    assert transformed["NotificationTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "NotificationTopicKey"}
    key_statements = transformed["NotificationTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    events = [s for s in key_statements if s["Principal"] == {"Service": "events.amazonaws.com"}]
    assert events and set(events[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    [publish] = transformed["NotificationTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert publish["Action"] == "sns:Publish" and publish["Principal"] == {"Service": "events.amazonaws.com"}
    assert publish["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["NotificationRule", "Arn"]}}
    }
    subscription = transformed["NotificationSubscription"]["Properties"]
    assert subscription == {
        "TopicArn": {"Ref": "NotificationTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "NotificationEmail"},
    }
    [target] = transformed["NotificationRule"]["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "NotificationTopic"}


def test_webhook_consumer_is_an_api_destination_invoked_by_its_own_role(transformed) -> None:
    for logical_id in ("WebhookConnection", "WebhookDestination", "WebhookRole", "WebhookRule"):
        assert transformed[logical_id]["Condition"] == "HasWebhook", logical_id
    destination = transformed["WebhookDestination"]["Properties"]
    assert destination["InvocationEndpoint"] == {"Ref": "WebhookUrl"} and destination["HttpMethod"] == "POST"
    assert destination["ConnectionArn"] == {"Fn::GetAtt": ["WebhookConnection", "Arn"]}
    [target] = transformed["WebhookRule"]["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["WebhookDestination", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["WebhookRole", "Arn"]}
    assert _statements(transformed["WebhookRole"]) == [
        {
            "Effect": "Allow",
            "Action": "events:InvokeApiDestination",
            "Resource": {"Fn::GetAtt": ["WebhookDestination", "Arn"]},
        }
    ]


def test_each_provider_has_a_delivery_failure_alarm(transformed) -> None:
    for provider, prefix in PROVIDERS.items():
        alarm = transformed[f"{prefix}SubmissionDeliveryFailedAlarm"]["Properties"]
        assert alarm["MetricName"] == SUBMISSION_DELIVERY_FAILED
        assert alarm["Namespace"] == {"Ref": "MetricsNamespace"}
        assert alarm["Dimensions"] == [
            {"Name": "service", "Value": "captcha-verify"},
            {"Name": "provider", "Value": provider},
        ]
        assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 300, 1)
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
