"""The submission bus and its consumers, checked after the SAM transform (as CloudFormation gets them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from captcha_local.resources import load_template
from captcha_verify.notifications.channels import WEBHOOK_TIMEOUT_SECONDS
from captcha_verify.notifications.consumer import backoff_seconds
from captcha_verify.submission import DETAIL_TYPE, SOURCE
from captcha_verify.telemetry import SUBMISSION_DELIVERY_FAILED
from support.cloudformation import IDEMPOTENCY_ACTIONS, PROVIDERS, SUBMISSION_STORE_ACTIONS, translated

CHANNELS = ("Email", "Webhook", "Autoresponse")


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
                "Action": list(SUBMISSION_STORE_ACTIONS),
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


# Paths of the event an input transformer may carry: ids, flags and times the function sets.
# Everything else (the form, the origin, the whole detail or event) holds visitor text, which
# EventBridge inserts unescaped (docs/delivery.md says why delivery renders it in code).
SAFE_INPUT_PATHS = frozenset(
    {
        "$.id",
        "$.time",
        "$.detail.submission_id",
        "$.detail.provider",
        "$.detail.received_at",
        "$.detail.verification.degraded",
    }
)


def visitor_paths(resources: dict[str, Any]) -> list[tuple[str, str]]:
    """(rule, path) of every input transformer path that is not known to be free of visitor text."""
    found = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Events::Rule":
            continue
        for target in resource["Properties"].get("Targets", []):
            paths = target.get("InputTransformer", {}).get("InputPathsMap", {})
            found += [(logical_id, path) for path in paths.values() if path not in SAFE_INPUT_PATHS]
            if "InputPath" in target and target["InputPath"] not in SAFE_INPUT_PATHS:
                found.append((logical_id, target["InputPath"]))
    return found


def test_the_visitor_path_check_catches_the_form_the_origin_and_the_whole_detail() -> None:
    rule = {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Targets": [
                {
                    "InputTransformer": {
                        "InputPathsMap": {"a": "$.detail.form", "b": "$.detail.submission_id"}
                    }
                },
                {"InputTransformer": {"InputPathsMap": {"c": "$.detail.form.message", "d": "$.detail"}}},
                {"InputTransformer": {"InputPathsMap": {"e": "$.detail.origin"}}},
            ]
        },
    }
    assert [path for _, path in visitor_paths({"R": rule})] == [
        "$.detail.form",
        "$.detail.form.message",
        "$.detail",
        "$.detail.origin",
    ]


def test_no_input_transformer_carries_visitor_text(transformed) -> None:
    rules = [r for r in transformed.values() if r["Type"] == "AWS::Events::Rule"]
    assert len(rules) == len(CHANNELS)
    assert visitor_paths(transformed) == []


def test_no_submission_goes_through_sns(transformed) -> None:
    """SNS email fixes the subject, cannot set Reply-To, and mangles the text."""
    topics = [lid for lid, r in transformed.items() if r["Type"] == "AWS::SNS::Topic"]
    assert topics == ["AlarmTopic"]
    subscriptions = [lid for lid, r in transformed.items() if r["Type"] == "AWS::SNS::Subscription"]
    assert subscriptions == ["AlarmEmailSubscription"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_each_channel_has_its_own_rule_queue_dead_letter_queue_alarm_and_event_source(
    transformed, channel: str
) -> None:
    condition = f"{channel}Channel"
    for kind in ("Queue", "DeadLetterQueue", "QueuePolicy", "Rule", "EventSource", "DeadLetterAlarm"):
        assert transformed[f"{channel}{kind}"]["Condition"] == condition, kind
    rule = transformed[f"{channel}Rule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "SubmissionBus"}
    assert rule["EventPattern"] == {"source": [SOURCE], "detail-type": [DETAIL_TYPE]}
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [f"{channel}Queue", "Arn"]}
    assert not {"InputTransformer", "Input", "InputPath"} & set(target)
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] >= 3600
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [f"{channel}DeadLetterQueue", "Arn"]}}

    queue = transformed[f"{channel}Queue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": [f"{channel}DeadLetterQueue", "Arn"]
    }
    # Lambda's SQS guide: the queue's visibility timeout at least the function's timeout (6x advised).
    function_timeout = transformed["NotificationsFunction"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * function_timeout
    # With the function's backoff, the attempts before the dead-letter queue span hours.
    attempts = queue["RedrivePolicy"]["maxReceiveCount"]
    assert sum(backoff_seconds(n, None) for n in range(1, attempts)) >= 3 * 3600
    assert transformed[f"{channel}DeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"] is True

    [statement] = transformed[f"{channel}QueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [f"{channel}Rule", "Arn"]}}
    }

    source = transformed[f"{channel}EventSource"]["Properties"]
    assert source["EventSourceArn"] == {"Fn::GetAtt": [f"{channel}Queue", "Arn"]}
    assert source["FunctionName"] == {"Ref": "NotificationsFunctionAliaslive"}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # Every record of a batch may take the whole webhook timeout.
    assert source["BatchSize"] * WEBHOOK_TIMEOUT_SECONDS < function_timeout

    alarm = transformed[f"{channel}DeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [f"{channel}DeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Threshold"] == 1 and alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def _policy_statements(role: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Statements per condition ("" for unconditional) of a role whose policies may be Fn::If."""
    by_condition: dict[str, list[dict[str, Any]]] = {}
    for policy in role["Properties"]["Policies"]:
        condition = ""
        if set(policy) == {"Fn::If"}:
            condition, policy, otherwise = policy["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}
        by_condition.setdefault(condition, []).extend(policy["PolicyDocument"]["Statement"])
    return by_condition


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def test_the_notifications_role_sends_email_as_the_sender_only_and_uses_no_wildcard(transformed) -> None:
    statements = _policy_statements(transformed["NotificationsFunctionRole"])
    everything = [s for group in statements.values() for s in group]
    assert not [a for s in everything for a in _actions(s) if "*" in a]
    assert not [s for s in everything if s["Resource"] == "*" or "*" in _strings(s["Resource"])]

    [ses] = statements["SendsEmail"]
    assert ses["Action"] == "ses:SendEmail"
    sender = {
        "Fn::If": [
            "HasSenderEmail",
            {"Ref": "SenderEmail"},
            {"Fn::Select": [0, {"Fn::Split": [",", {"Ref": "NotificationEmail"}]}]},
        ]
    }
    identity = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"
    first_owner = {"Fn::Select": [0, {"Fn::Split": [",", {"Ref": "NotificationEmail"}]}]}
    assert ses["Resource"] == [
        {"Fn::Sub": [identity + "${Sender}", {"Sender": sender}]},
        {"Fn::Sub": [identity + "${Domain}", {"Domain": {"Fn::Select": [1, {"Fn::Split": ["@", sender]}]}}]},
        # The SES sandbox checks the recipient's identity as well.
        {
            "Fn::If": [
                "EmailChannel",
                {"Fn::Sub": [identity + "${Owner}", {"Owner": first_owner}]},
                {"Ref": "AWS::NoValue"},
            ]
        },
    ]
    assert [a for s in everything for a in _actions(s) if a.startswith("ses:")] == ["ses:SendEmail"]

    [ledger] = statements[""]
    assert ledger["Resource"] == {"Fn::GetAtt": ["NotificationLedgerTable", "Arn"]}
    assert ledger["Action"] == list(IDEMPOTENCY_ACTIONS)

    for channel in CHANNELS:
        poll, dead_letter = statements[f"{channel}Channel"][-2:]
        # IAM has no *Batch actions: the batch calls are authorised by these.
        assert set(_actions(poll)) == {
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
        }
        assert poll["Resource"] == {"Fn::GetAtt": [f"{channel}Queue", "Arn"]}
        assert dead_letter == {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": [f"{channel}DeadLetterQueue", "Arn"]},
        }
    [secret, *_] = statements["WebhookChannel"]
    assert secret["Action"] == ["secretsmanager:GetSecretValue"]
    assert secret["Resource"] == {"Fn::Sub": ["${secretArn}", {"secretArn": {"Ref": "WebhookSecret"}}]}


def test_the_webhook_url_and_signing_key_are_secrets(transformed) -> None:
    parameters = load_template()["Parameters"]
    assert parameters["WebhookUrl"]["NoEcho"] is True and parameters["WebhookSigningSecret"]["NoEcho"] is True
    secret = transformed["WebhookSecret"]
    assert secret["Condition"] == "WebhookChannel"
    properties = secret["Properties"]
    assert properties["SecretString"]["Fn::If"][0] == "HasWebhookSigningSecret"
    generated = properties["GenerateSecretString"]["Fn::If"][2]
    assert generated["GenerateStringKey"] == "signing_secret" and generated["PasswordLength"] >= 32
    env = transformed["NotificationsFunction"]["Properties"]["Environment"]["Variables"]
    assert env["WEBHOOK_SECRET_ID"] == {"Fn::If": ["WebhookChannel", {"Ref": "WebhookSecret"}, ""]}
    assert "WebhookUrl" not in json.dumps(env) and "WebhookSigningSecret" not in json.dumps(env)


def test_the_notifications_function_reads_its_settings_by_the_names_the_layer_parses(transformed) -> None:
    env = transformed["NotificationsFunction"]["Properties"]["Environment"]["Variables"]
    for channel in CHANNELS:
        prefix = channel.upper()
        assert env[f"{prefix}_QUEUE_URL"] == {"Fn::If": [f"{channel}Channel", {"Ref": f"{channel}Queue"}, ""]}
        assert env[f"{prefix}_DEAD_LETTER_QUEUE_URL"] == {
            "Fn::If": [f"{channel}Channel", {"Ref": f"{channel}DeadLetterQueue"}, ""]
        }
    assert env["NOTIFICATION_LEDGER_TABLE_NAME"] == {"Ref": "NotificationLedgerTable"}
    for variable, parameter in (
        ("NOTIFICATION_EMAIL", "NotificationEmail"),
        ("SENDER_EMAIL", "SenderEmail"),
        ("WEBHOOK_FORMAT", "WebhookFormat"),
        ("AUTORESPONSE_SUBJECT", "AutoresponseSubject"),
        ("AUTORESPONSE_TEXT", "AutoresponseText"),
    ):
        assert env[variable] == {"Ref": parameter}
    ledger = transformed["NotificationLedgerTable"]["Properties"]
    assert ledger["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert ledger["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    # No provisioned concurrency for a queue consumer, whatever the Globals say.
    alias = transformed["NotificationsFunctionAliaslive"]["Properties"]
    assert alias["ProvisionedConcurrencyConfig"] == {
        "Fn::If": ["ProvisionedConcurrencyEnabled", {"Ref": "AWS::NoValue"}, {"Ref": "AWS::NoValue"}]
    }


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
