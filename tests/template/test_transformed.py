"""template.yaml as CloudFormation sees it: after the SAM transform, with and without AllowedOrigins
and tracing. Reading the template as written missed that SAM turned the CORS object into an Fn::If
of two lists (methods, headers and max age gone), and what IAM statements each role really gets."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
from template.test_template import expand_language_extensions

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
PREFIXES = ("CaptchaCat", "ByeBot", "Swetrix", "YCaptcha", "FriendlyCaptcha")
ORIGINS = "https://www.example.com,https://example.com"
# Exactly the calls of submission_store.py: the claim and its outcome (conditional puts), a twin's
# read, the release of a claim not kept (conditional delete).
IDEMPOTENCY_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")


class _NoManagedPolicies:
    """The translator's policy loader; the template names no managed policy by name."""

    def load(self) -> dict[str, str]:
        return {}


def translated(monkeypatch: pytest.MonkeyPatch, **parameters: str) -> dict[str, Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    template = expand_language_extensions(yaml_parse(TEMPLATE_PATH.read_text(encoding="utf-8")))
    for resource in template["Resources"].values():
        # `sam package` puts S3 locations here; the translator insists on them.
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/function.zip"
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://bucket/layer.zip"
    return transform(copy.deepcopy(template), parameters, _NoManagedPolicies())


def resolve_if(node: Any, conditions: dict[str, bool]) -> Any:
    """Fn::If resolved for the given conditions, everything else kept as it is."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return resolve_if(when_true if conditions[name] else when_false, conditions)
        return {key: resolve_if(value, conditions) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve_if(item, conditions) for item in node]
    return node


@pytest.mark.parametrize("origins", ["", ORIGINS], ids=["any origin", "allowed origins"])
def test_cors_keeps_methods_headers_and_max_age_after_the_transform(
    origins: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = translated(monkeypatch, AllowedOrigins=origins)
    cors = output["Resources"]["HttpApi"]["Properties"]["Body"]["x-amazon-apigateway-cors"]
    resolved = resolve_if(cors, {"HasAllowedOrigins": bool(origins)})
    assert isinstance(resolved, dict), f"the CORS object must be an object, got {resolved!r}"
    assert sorted(resolved["allowMethods"]) == ["OPTIONS", "POST"]
    assert resolved["allowHeaders"] == ["content-type"]
    assert resolved["maxAge"] == 600
    expected = {"Fn::Split": [",", origins]} if origins else ["*"]
    assert resolved["allowOrigins"] == expected


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_each_role_gets_only_the_actions_its_code_uses_on_named_resources(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = translated(monkeypatch)
    role = output["Resources"][f"{prefix}FunctionRole"]
    granted = sorted(
        (action, repr(statement["Resource"]))
        for statement in _statements(role)
        for action in _actions(statement)
    )
    assert all(statement["Effect"] == "Allow" for statement in _statements(role))
    own_secret = repr(
        {
            "Fn::Sub": [
                "${secretArn}",
                {
                    "secretArn": {
                        "Fn::If": [
                            f"{prefix}CreateSecret",
                            {"Ref": f"{prefix}Secret"},
                            {"Ref": f"{prefix}SecretArn"},
                        ]
                    }
                },
            ]
        }
    )
    key_secret = repr({"Fn::Sub": ["${secretArn}", {"secretArn": {"Ref": "RateLimitKeySecret"}}]})
    idempotency_table = repr({"Fn::GetAtt": ["SubmissionTable", "Arn"]})
    submission_bus = repr(
        {
            "Fn::Sub": [
                "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${eventBusName}",
                {"eventBusName": {"Ref": "SubmissionBus"}},
            ]
        }
    )
    assert granted == sorted(
        [
            ("secretsmanager:GetSecretValue", own_secret),
            ("secretsmanager:GetSecretValue", key_secret),
            ("dynamodb:PutItem", repr({"Fn::GetAtt": ["ChallengeTable", "Arn"]})),
            ("dynamodb:UpdateItem", repr({"Fn::GetAtt": ["RateLimitTable", "Arn"]})),
            *((action, idempotency_table) for action in IDEMPOTENCY_ACTIONS),
            ("events:PutEvents", submission_bus),
        ]
    )


@pytest.mark.parametrize("prefix", PREFIXES)
def test_managed_policies_are_basic_execution_only_with_tracing_off(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = translated(monkeypatch, TracingMode="Disabled")
    role = output["Resources"][f"{prefix}FunctionRole"]["Properties"]
    function = output["Resources"][f"{prefix}Function"]["Properties"]
    assert role["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
    assert "TracingConfig" not in function


@pytest.mark.parametrize("prefix", PREFIXES)
def test_tracing_on_adds_the_xray_write_policy_and_active_tracing(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = translated(monkeypatch, TracingMode="Active")
    role = output["Resources"][f"{prefix}FunctionRole"]["Properties"]
    function = output["Resources"][f"{prefix}Function"]["Properties"]
    assert role["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    ]
    assert function["TracingConfig"] == {"Mode": {"Ref": "TracingMode"}}


@pytest.mark.parametrize(("rate", "throttled"), [("20", True), ("0", False)])
def test_route_throttling_is_a_parameter_and_can_be_off(
    rate: str, throttled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = translated(monkeypatch, ApiThrottlingRateLimit=rate)
    [stage] = [r for r in output["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    settings = resolve_if(stage["Properties"].get("DefaultRouteSettings"), {"HasApiThrottling": throttled})
    if throttled:
        assert settings == {
            "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
            "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
        }
    else:
        assert settings in (None, {"Ref": "AWS::NoValue"})


@pytest.mark.parametrize("prefix", PREFIXES)
def test_each_function_has_an_optional_concurrency_cap_and_the_rate_limit_names(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    function = translated(monkeypatch)["Resources"][f"{prefix}Function"]["Properties"]
    assert function["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasConcurrencyLimit", {"Ref": "FunctionConcurrencyLimit"}, {"Ref": "AWS::NoValue"}]
    }
    variables = function["Environment"]["Variables"]
    assert variables["RATE_LIMIT_TABLE_NAME"] == {"Ref": "RateLimitTable"}
    assert variables["RATE_LIMIT_KEY_SECRET_ID"] == {"Ref": "RateLimitKeySecret"}
    assert variables["CLIENT_RATE_LIMIT_PER_MINUTE"] == {"Ref": "ClientRateLimitPerMinute"}


def test_rate_limit_table_has_ttl_on_demand_and_encryption(monkeypatch: pytest.MonkeyPatch) -> None:
    table = translated(monkeypatch)["Resources"]["RateLimitTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}


CHECKOV = Path(__file__).resolve().parents[2] / ".venv-checkov" / "bin" / "checkov"


def test_checkov_finds_nothing_unexplained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """checkov on the transformed template (the generated Lambda functions and roles included);
    every finding not fixed is skipped in template.yaml's Metadata with a one-line reason."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} missing: run `make test` (it sets up checkov's own venv)")
    rendered = tmp_path / "transformed.json"
    rendered.write_text(json.dumps(translated(monkeypatch, AllowedOrigins=ORIGINS, TracingMode="Active")))
    result = subprocess.run(
        [str(CHECKOV), "-f", str(rendered), "--framework", "cloudformation", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    report = json.loads(result.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    skipped = report["results"]["skipped_checks"]
    assert skipped and all(check["check_result"].get("suppress_comment") for check in skipped)
    assert report["summary"]["passed"] > 0
