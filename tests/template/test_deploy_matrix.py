"""The stack each deploy really gets: for every set of answers a user deploys with, template.yaml
after AWS::LanguageExtensions (resolved with those values, as CloudFormation runs it first), the
SAM transform and cfn-lint. The CORS object, every function's IAM, which resources exist and the
Outputs are asserted on that output, not on the YAML as written."""

from __future__ import annotations

import re
from typing import Any

import pytest
from support.cloudformation import (
    IDEMPOTENCY_ACTIONS,
    NO_VALUE,
    PROVIDERS,
    SUBMISSION_STORE_ACTIONS,
    Processed,
    processed,
)

# What the channels' queue event sources and the function's backoff call on each queue.
POLL_ACTIONS = ("ChangeMessageVisibility", "DeleteMessage", "GetQueueAttributes", "ReceiveMessage")
BYEBOT_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/byebot-AbCdEf"
ONLY_BYEBOT = {f"Enable{prefix}": "false" for prefix in PROVIDERS.values() if prefix != "ByeBot"}

# The answers users deploy with (make deploy's questions and the examples in docs/deploy.md).
MATRIX: dict[str, dict[str, str]] = {
    "defaults": {},
    "one origin": {"AllowedOrigins": "https://www.example.com"},
    "two origins and redirects": {
        "AllowedOrigins": "https://www.example.com,https://example.com",
        "SuccessRedirectUrl": "https://www.example.com/thanks",
        "FailureRedirectUrl": "https://www.example.com/sorry",
    },
    "byebot alone": ONLY_BYEBOT,
    "byebot alone with its own secret": ONLY_BYEBOT | {"ByeBotSecretArn": BYEBOT_SECRET_ARN},
    "email and webhook": {
        "NotificationEmail": "owner@example.com",
        "WebhookUrl": "https://hooks.example.com/forms",
    },
    "email with an autoresponse": {
        "NotificationEmail": "owner@example.com,office@example.com",
        "SenderEmail": "forms@example.com",
        "AutoresponseText": "Thank you, we will answer within a day.",
    },
    "tracing, provisioned concurrency and a cap": {
        "TracingMode": "Active",
        "ProvisionedConcurrency": "2",
        "FunctionConcurrencyLimit": "10",
    },
}

# cfn-lint findings that only say the language extensions did their work: every parameter,
# mapping and condition has been substituted, so the processed template no longer refers to them,
# and SAM's own route integrations nest an Fn::If on the condition already decided. What each
# would hide is asserted by a test here instead (named beside it).
RESOLVED_AWAY = {
    "W2001": "parameter not used: every Ref to it was replaced by its value",
    "W7001": "mapping not used: Fn::FindInMap was resolved",
    "W8003": "condition always true or false: it compares substituted values",
    "W1028": "Fn::If branch unreachable: SAM nests the route's If on the same condition",
    "W1001": "Ref to a conditional resource: test_every_reference_names_a_resource_that_exists",
}
# Globals are not the language extensions' to resolve, so the functions' TracingConfig keeps
# {"Ref": "TracingMode"}, whose allowed values include Disabled, which Lambda does not take. SAM
# writes no TracingConfig at all for Disabled: test_concurrency_and_tracing_answers_reach_every_function.
TRACING_MODE_FINDING = "W1030 {'Ref': 'TracingMode'} is not one of ['Active', 'PassThrough']"


def _created(deploy: Processed) -> dict[str, Any]:
    """The resources CloudFormation creates: those with no condition or a true one."""
    return {
        logical_id: resource
        for logical_id, resource in deploy.resources.items()
        if "Condition" not in resource or deploy.conditions[resource["Condition"]]
    }


def _enabled(overrides: dict[str, str]) -> list[str]:
    return [prefix for prefix in PROVIDERS.values() if overrides.get(f"Enable{prefix}", "true") == "true"]


def _references(node: Any) -> set[str]:
    """Logical ids a value refers to (Ref, Fn::GetAtt, ${...} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _references(item)
    elif isinstance(node, dict):
        if set(node) == {"Ref"} and isinstance(node["Ref"], str):
            found.add(node["Ref"])
        elif set(node) == {"Fn::GetAtt"}:
            target = node["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else target.split(".")[0])
        elif set(node) == {"Fn::Sub"}:
            text, variables = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
            found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)} - set(variables)
            found |= _references(variables)
        else:
            for value in node.values():
                found |= _references(value)
    return found


@pytest.fixture(params=list(MATRIX), scope="module")
def case(request: pytest.FixtureRequest) -> tuple[dict[str, str], Processed]:
    overrides = MATRIX[request.param]
    return overrides, processed(**overrides)


def test_cfn_lint_finds_nothing_after_both_transforms(case: tuple[dict[str, str], Processed]) -> None:
    _, deploy = case
    false_resources = {lid for lid, r in deploy.resources.items() if lid not in _created(deploy)}
    findings = [
        finding
        for finding in deploy.cfn_lint()
        if finding.split()[0] not in RESOLVED_AWAY
        and not finding.startswith(TRACING_MODE_FINDING)
        # A resource whose condition is false is not created: its properties are never checked by
        # CloudFormation, and the transform has already emptied its Refs to parameters.
        and not any(f"(Resources/{lid}/" in finding for lid in false_resources)
    ]
    assert findings == []


def test_every_reference_names_a_resource_that_exists(case: tuple[dict[str, str], Processed]) -> None:
    """What cfn-lint's W1001 would catch, decided for this deploy's conditions."""
    _, deploy = case
    created = _created(deploy)
    referring = {f"Resources/{lid}": resource for lid, resource in created.items()}
    referring |= {
        f"Outputs/{name}": output
        for name, output in deploy.template.get("Outputs", {}).items()
        if "Condition" not in output or deploy.conditions[output["Condition"]]
    }
    parameters = set(deploy.parameters)
    missing = {
        (where, name)
        for where, node in referring.items()
        for name in _references(deploy.value(node))
        if not name.startswith("AWS::") and name not in parameters and name not in created
    }
    assert missing == set()


def test_cors_is_a_complete_object_with_the_origins_as_a_list(case: tuple[dict[str, str], Processed]) -> None:
    overrides, deploy = case
    api = deploy.resources["HttpApi"]
    assert "CorsConfiguration" not in api["Properties"]
    cors = deploy.value(api["Properties"]["Body"]["x-amazon-apigateway-cors"])
    origins = overrides.get("AllowedOrigins", "")
    assert cors == {
        "allowOrigins": origins.split(",") if origins else ["*"],
        "allowMethods": ["POST", "OPTIONS"],
        "allowHeaders": ["content-type"],
        "exposeHeaders": ["apigw-requestid"],
        "maxAge": 600,
    }


def test_a_disabled_provider_has_no_resource_route_or_output(case: tuple[dict[str, str], Processed]) -> None:
    overrides, deploy = case
    created = _created(deploy)
    paths = deploy.value(deploy.resources["HttpApi"]["Properties"]["Body"]["paths"])
    outputs = {
        name
        for name, output in deploy.template["Outputs"].items()
        if "Condition" not in output or deploy.conditions[output["Condition"]]
    }
    enabled = _enabled(overrides)
    for name, prefix in PROVIDERS.items():
        own = {lid for lid in created if lid.startswith(prefix)}
        route = paths.get(f"/verify/{name}", {})
        if prefix in enabled:
            assert {f"{prefix}Function", f"{prefix}FunctionRole", f"{prefix}LogGroup"} <= own
            assert route["post"]["x-amazon-apigateway-integration"]["payloadFormatVersion"] == "2.0"
            assert f"{prefix}Endpoint" in outputs
        else:
            assert own == set(), f"{prefix} is disabled"
            assert route == {} and f"{prefix}Endpoint" not in outputs
    always = {"ApiUrl", "ChallengeTableName", "SubmissionBusName", "SubmissionBusArn", "AlarmTopicArn"}
    assert always <= outputs


def test_the_secret_is_created_unless_the_user_names_one(case: tuple[dict[str, str], Processed]) -> None:
    overrides, deploy = case
    created = _created(deploy)
    for prefix in _enabled(overrides):
        variables = deploy.value(created[f"{prefix}Function"]["Properties"]["Environment"]["Variables"])
        own_arn = overrides.get(f"{prefix}SecretArn", "")
        if own_arn:
            assert f"{prefix}Secret" not in created
            assert variables["PROVIDER_SECRET_ID"] == own_arn
        else:
            assert created[f"{prefix}Secret"]["Type"] == "AWS::SecretsManager::Secret"
            assert variables["PROVIDER_SECRET_ID"] == {"Ref": f"{prefix}Secret"}


def _grants(deploy: Processed, role: dict[str, Any]) -> list[tuple[str, str]]:
    statements = [
        statement
        for policy in deploy.value(role["Properties"].get("Policies", []))
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    assert all(statement["Effect"] == "Allow" for statement in statements)
    return sorted(
        (action, repr(statement["Resource"]))
        for statement in statements
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    )


def test_each_function_may_do_exactly_what_its_code_does(case: tuple[dict[str, str], Processed]) -> None:
    overrides, deploy = case
    created = _created(deploy)
    bus = {
        "Fn::Sub": [
            "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${eventBusName}",
            {"eventBusName": {"Ref": "SubmissionBus"}},
        ]
    }
    key_secret = {"Fn::Sub": ["${secretArn}", {"secretArn": {"Ref": "RateLimitKeySecret"}}]}
    for prefix in _enabled(overrides):
        own_secret = overrides.get(f"{prefix}SecretArn") or {"Ref": f"{prefix}Secret"}
        expected = [
            ("secretsmanager:GetSecretValue", repr(own_secret)),
            ("secretsmanager:GetSecretValue", repr(key_secret)),
            ("dynamodb:PutItem", repr({"Fn::GetAtt": ["ChallengeTable", "Arn"]})),
            ("dynamodb:UpdateItem", repr({"Fn::GetAtt": ["RateLimitTable", "Arn"]})),
            *(
                (action, repr({"Fn::GetAtt": ["SubmissionTable", "Arn"]}))
                for action in SUBMISSION_STORE_ACTIONS
            ),
            ("events:PutEvents", repr(bus)),
        ]
        role = created[f"{prefix}FunctionRole"]
        assert _grants(deploy, role) == sorted(expected)
        managed = role["Properties"]["ManagedPolicyArns"]
        basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        xray = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"
        tracing = overrides.get("TracingMode") == "Active"
        assert managed == ([basic, xray] if tracing else [basic])


def test_no_statement_of_any_role_grants_a_wildcard(case: tuple[dict[str, str], Processed]) -> None:
    _, deploy = case
    for logical_id, resource in _created(deploy).items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in deploy.value(resource["Properties"].get("Policies", [])):
            for statement in policy["PolicyDocument"]["Statement"]:
                action = statement["Action"]
                assert "*" not in repr(action), logical_id
                if action == "dynamodb:ListStreams":
                    continue  # stream ARNs only, never a record (the relay's test above)
                assert "*" not in repr(statement["Resource"]).replace("${AWS::", ""), logical_id


def test_concurrency_and_tracing_answers_reach_every_function(case: tuple[dict[str, str], Processed]) -> None:
    overrides, deploy = case
    created = _created(deploy)
    for prefix in _enabled(overrides):
        function = deploy.value(created[f"{prefix}Function"]["Properties"])
        cap = overrides.get("FunctionConcurrencyLimit", "0")
        assert function.get("ReservedConcurrentExecutions") == (cap if cap != "0" else None)
        tracing = overrides.get("TracingMode") == "Active"
        assert function.get("TracingConfig") == ({"Mode": "Active"} if tracing else None)
        aliases = [
            deploy.value(r["Properties"])
            for r in created.values()
            if r["Type"] == "AWS::Lambda::Alias"
            and r["Properties"]["FunctionName"] == {"Ref": f"{prefix}Function"}
        ]
        assert len(aliases) == 1
        provisioned = overrides.get("ProvisionedConcurrency", "0")
        config = aliases[0].get("ProvisionedConcurrencyConfig", NO_VALUE)
        if provisioned == "0":
            assert config == NO_VALUE
        else:
            assert config == {"ProvisionedConcurrentExecutions": provisioned}


BUS_ARN = {
    "Fn::Sub": [
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${eventBusName}",
        {"eventBusName": {"Ref": "SubmissionBus"}},
    ]
}
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def test_the_relay_may_read_its_stream_put_on_the_bus_and_dead_letter_only(
    case: tuple[dict[str, str], Processed],
) -> None:
    overrides, deploy = case
    role = _created(deploy)["SubmissionRelayFunctionRole"]
    stream = repr({"Fn::GetAtt": ["SubmissionTable", "StreamArn"]})
    assert _grants(deploy, role) == sorted(
        [
            ("dynamodb:DescribeStream", stream),
            ("dynamodb:GetRecords", stream),
            ("dynamodb:GetShardIterator", stream),
            # On "*" as AWS's own policy grants it: it lists stream ARNs, never a record.
            ("dynamodb:ListStreams", repr("*")),
            ("events:PutEvents", repr(BUS_ARN)),
            ("sqs:SendMessage", repr({"Fn::GetAtt": ["SubmissionRelayDeadLetterQueue", "Arn"]})),
        ]
    )
    xray = (
        ["arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"] if overrides.get("TracingMode") == "Active" else []
    )
    assert role["Properties"]["ManagedPolicyArns"] == [BASIC_EXECUTION, *xray]


def test_the_notifications_function_may_do_exactly_what_its_channels_need(
    case: tuple[dict[str, str], Processed],
) -> None:
    overrides, deploy = case
    created = _created(deploy)
    email = bool(overrides.get("NotificationEmail"))
    webhook = bool(overrides.get("WebhookUrl"))
    autoresponse = bool(overrides.get("AutoresponseText")) and email
    if not (email or webhook or autoresponse):
        assert not [
            lid for lid in created if lid.startswith(("Notification", "Email", "Webhook", "Autoresp"))
        ]
        return
    channels = [
        name for name, on in (("Email", email), ("Webhook", webhook), ("Autoresponse", autoresponse)) if on
    ]
    ledger = repr({"Fn::GetAtt": ["NotificationLedgerTable", "Arn"]})
    expected = [(action, ledger) for action in IDEMPOTENCY_ACTIONS]
    for channel in channels:
        queue = repr({"Fn::GetAtt": [f"{channel}Queue", "Arn"]})
        expected += [(f"sqs:{action}", queue) for action in POLL_ACTIONS]
        expected.append(("sqs:SendMessage", repr({"Fn::GetAtt": [f"{channel}DeadLetterQueue", "Arn"]})))
    if webhook:
        secret = {"Fn::Sub": ["${secretArn}", {"secretArn": {"Ref": "WebhookSecret"}}]}
        expected.append(("secretsmanager:GetSecretValue", repr(secret)))
    grants = _grants(deploy, created["NotificationsFunctionRole"])
    ses = [resource for action, resource in grants if action == "ses:SendEmail"]
    assert [g for g in grants if g[0] != "ses:SendEmail"] == sorted(expected)
    if email or autoresponse:
        identity = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"
        sender = overrides.get("SenderEmail") or overrides["NotificationEmail"].split(",")[0]
        owner = overrides["NotificationEmail"].split(",")[0]
        assert ses == [repr([{"Fn::Sub": identity + name} for name in (sender, sender.split("@")[1], owner)])]
    else:
        assert ses == []
