"""template.yaml as CloudFormation sees it: after the SAM transform, with and without AllowedOrigins
and tracing. Reading the template as written missed that SAM turned the CORS object into an Fn::If
of two lists (methods, headers and max age gone), and what IAM statements each role really gets."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from captcha_verify.providers import REGISTRY
from support.cloudformation import resolve_if, translated

PREFIXES = tuple(provider.prefix for provider in REGISTRY)
ORIGINS = "https://www.example.com,https://example.com"


@pytest.mark.parametrize("origins", ["", ORIGINS], ids=["any origin", "allowed origins"])
def test_cors_keeps_methods_headers_and_max_age_after_the_transform(
    origins: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = translated(monkeypatch, AllowedOrigins=origins)
    cors = output["Resources"]["HttpApi"]["Properties"]["Body"]["x-amazon-apigateway-cors"]
    resolved = resolve_if(cors, {"HasAllowedOrigins": bool(origins)})
    assert resolved == {
        "allowOrigins": {"Fn::Split": [",", {"Ref": "AllowedOrigins"}]} if origins else ["*"],
        "allowMethods": ["POST", "OPTIONS"],
        "allowHeaders": ["content-type"],
        "exposeHeaders": ["apigw-requestid"],
        "maxAge": 600,
    }


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


@pytest.mark.parametrize("metric", ["RateLimitUnavailable", "RecordWriteFailed"])
def test_each_fail_open_counter_is_alarmed_per_provider_after_the_transform(
    metric: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rate limit (or the challenge log) could be off with nobody told."""
    from captcha_verify.rate_limit import UNAVAILABLE_METRIC
    from captcha_verify.telemetry import RECORD_WRITE_FAILED

    assert metric in (UNAVAILABLE_METRIC, RECORD_WRITE_FAILED)  # the names the code counts
    resources = translated(monkeypatch)["Resources"]
    for entry in REGISTRY:
        alarm = resources[f"{entry.prefix}{metric}Alarm"]
        assert alarm["Type"] == "AWS::CloudWatch::Alarm" and alarm["Condition"] == f"{entry.prefix}Enabled"
        properties = alarm["Properties"]
        assert (properties["Namespace"], properties["MetricName"]) == ({"Ref": "MetricsNamespace"}, metric)
        [service, provider] = properties["Dimensions"]
        assert service == {"Name": "service", "Value": "captcha-verify"}
        assert provider == {"Name": "provider", "Value": entry.name}  # the route name, as metrics carry it
        assert (properties["Statistic"], properties["Period"], properties["Threshold"]) == ("Sum", 300, 1)
        assert (properties["EvaluationPeriods"], properties["DatapointsToAlarm"]) == (3, 2)
        assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert properties["TreatMissingData"] == "notBreaching"
        assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert metric in json.dumps(properties["AlarmDescription"])
