"""Checks of template.yaml and samconfig.toml: linters, a real `sam build`, and the contract.

The structural tests read the template with SAM's own YAML loader (it turns !Ref, !If, !Sub...
into their {"Ref": ...}/{"Fn::If": ...} forms), then expand AWS::LanguageExtensions (each
provider's resources are one Fn::ForEach) with SAM CLI's own code, so they see what the SAM
transform receives after CloudFormation's language-extensions transform.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from samtranslator.yaml_helper import yaml_parse
from support.cloudformation import PROVIDERS, expand_language_extensions

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
SAMCONFIG_PATH = ROOT / "samconfig.toml"
SHARED_PACKAGE = ROOT / "functions" / "shared" / "captcha_verify"


# Each function's environment as docs/operations.md (Configuration) documents it, with the Powertools names.
DESIGN_ENVIRONMENT = {
    "CHALLENGE_TABLE_NAME",
    "PROVIDER_SECRET_ID",
    "PROVIDER_VERIFY_URL",
    "EXPECTED_SITEKEY",
    "ALLOWED_ORIGINS",
    "FAILURE_POLICY",
    "VERIFY_TIMEOUT_SECONDS",
    "RECORD_TTL_DAYS",
    "SUCCESS_REDIRECT_URL",
    "FAILURE_REDIRECT_URL",
    "SUBMISSION_BUS_NAME",
    "IDEMPOTENCY_TABLE_NAME",
    "IDEMPOTENCY_WINDOW_SECONDS",
    "SUBMISSION_RETENTION_DAYS",
    "HONEYPOT_FIELD",
    "REQUIRED_FIELDS",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_LOGGER_SAMPLE_RATE",
    "POWERTOOLS_TRACE_DISABLED",
    # friendlycaptcha reads it; set for every function so the provider loop stays uniform
    "FRIENDLY_API_VERSION",
    "CLIENT_RATE_LIMIT_PER_MINUTE",
    # The rate limit's counter table and HMAC key.
    "RATE_LIMIT_TABLE_NAME",
    "RATE_LIMIT_KEY_SECRET_ID",
}

EXPECTED_PARAMETERS = {
    *(f"Enable{p}" for p in PROVIDERS.values()),
    *(f"{p}SecretArn" for p in PROVIDERS.values()),
    *(f"{p}VerifyUrl" for p in PROVIDERS.values()),
    *(f"{p}ExpectedSitekey" for p in PROVIDERS.values()),
    "FriendlyApiVersion",
    "AllowedOrigins",
    "FailurePolicy",
    "VerifyTimeoutSeconds",
    "RecordTtlDays",
    "SuccessRedirectUrl",
    "FailureRedirectUrl",
    "LogLevel",
    "LogSampleRate",
    "MetricsNamespace",
    "LogRetentionDays",
    "EnablePointInTimeRecovery",
    "TracingMode",
    "AlarmEmail",
    "ProviderErrorRateThreshold",
    "ProvisionedConcurrency",
    "ClientRateLimitPerMinute",
    "ApiThrottlingRateLimit",
    "ApiThrottlingBurstLimit",
    "FunctionConcurrencyLimit",
    "IdempotencyWindowSeconds",
    "HoneypotField",
    "RequiredFields",
    "SubmissionArchiveRetentionDays",
    "SubmissionRetentionDays",
    "NotificationEmail",
    "SenderEmail",
    "WebhookUrl",
    "WebhookFormat",
    "WebhookSigningSecret",
    "AutoresponseSubject",
    "AutoresponseText",
}

QUERY_DEFINITIONS = {
    "FailuresByErrorCodeQuery",
    "SolveTimeQuery",
    "ProviderLatencyQuery",
    "DegradedAcceptancesQuery",
    "RequestByIdQuery",
}


# ------------------------------------------------------------------ helpers
def _tool_env() -> dict[str, str]:
    """The test interpreter's bin folder first on PATH (cfn-lint, sam and python3.13 live there)."""
    env = dict(os.environ)
    bin_dir = os.path.dirname(sys.executable)  # not resolved: a venv's python is a symlink
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    env["SAM_CLI_TELEMETRY"] = "0"
    return env


def _run(
    args: list[str], timeout: int, cwd: Path = ROOT, env_overrides: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    env = _tool_env() | (env_overrides or {})
    exe = shutil.which(args[0], path=env["PATH"])
    if exe is None:
        pytest.fail(f"{args[0]} not found on PATH {env['PATH']}")
    started = time.monotonic()
    result = subprocess.run(
        [exe, *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return result, time.monotonic() - started


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def _walk(node: Any):
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _resolve(node: Any, conditions: dict[str, bool], refs: dict[str, str]) -> Any:
    """Just enough of CloudFormation's intrinsics (If, Join, Sub, Ref) to render a string."""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        values = [_resolve(item, conditions, refs) for item in node]
        return [value for value in values if value is not _NO_VALUE]
    if isinstance(node, dict) and len(node) == 1:
        ((key, arg),) = node.items()
        if key == "Ref":
            return _NO_VALUE if arg == "AWS::NoValue" else refs.get(arg, f"<{arg}>")
        if key == "Fn::If":
            name, when_true, when_false = arg
            return _resolve(when_true if conditions[name] else when_false, conditions, refs)
        if key == "Fn::Join":
            delimiter, items = arg
            return delimiter.join(_resolve(items, conditions, refs))
        if key == "Fn::Sub":
            assert isinstance(arg, str), "only the plain-string form of Fn::Sub is expected here"
            return re.sub(r"\$\{([^}!]+)\}", lambda m: refs.get(m[1], f"<{m[1]}>"), arg)
    raise AssertionError(f"unexpected node {node!r}")


_NO_VALUE = object()


@pytest.fixture(scope="module")
def raw_template() -> dict[str, Any]:
    return yaml_parse(TEMPLATE_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def template(raw_template: dict[str, Any]) -> dict[str, Any]:
    return expand_language_extensions(raw_template)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def _functions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}


def _check_parameter_value(name: str, spec: dict[str, Any], value: str) -> None:
    if "AllowedValues" in spec:
        assert value in [str(v) for v in spec["AllowedValues"]], f"{name}={value!r} not allowed"
    if "AllowedPattern" in spec:
        # CloudFormation matches the whole value against the pattern.
        assert re.fullmatch(spec["AllowedPattern"], value), f"{name}={value!r} fails AllowedPattern"
    if spec["Type"] == "Number":
        number = float(value)
        if "MinValue" in spec:
            assert number >= float(spec["MinValue"]), f"{name}={value!r} below MinValue"
        if "MaxValue" in spec:
            assert number <= float(spec["MaxValue"]), f"{name}={value!r} above MaxValue"


# ------------------------------------------------------------------ tools
def test_cfn_lint_reports_nothing() -> None:
    result, seconds = _run(["cfn-lint", "template.yaml"], timeout=300)
    print(f"cfn-lint took {seconds:.1f}s")
    assert result.returncode == 0, _output(result)
    assert result.stdout.strip() == "", _output(result)


def test_sam_validate_lint_passes() -> None:
    result, seconds = _run(
        ["sam", "validate", "--lint", "--template", "template.yaml", "--region", "us-east-1"], timeout=300
    )
    print(f"sam validate --lint took {seconds:.1f}s")
    assert result.returncode == 0, _output(result)
    assert "is a valid SAM Template" in result.stdout + result.stderr, _output(result)


@pytest.mark.slow
def test_sam_build_builds_every_function_and_the_layer(tmp_path: Path) -> None:
    build_dir = tmp_path / "build"
    result, seconds = _run(
        [
            "sam",
            "build",
            "--language-extensions",
            "--template",
            str(TEMPLATE_PATH),
            "--build-dir",
            str(build_dir),
            "--base-dir",
            str(ROOT),
            "--no-cached",
            "--region",
            "us-east-1",
        ],
        timeout=900,
        cwd=tmp_path,  # sam writes .aws-sam/ (deps, cache) under the working directory, not the repo
    )
    print(f"sam build took {seconds:.1f}s")
    assert result.returncode == 0, _output(result)

    # The built template keeps the Fn::ForEach (CloudFormation expands it) and maps each
    # provider to its built code.
    raw_built = yaml_parse((build_dir / "template.yaml").read_text(encoding="utf-8"))
    assert any(key.startswith("Fn::ForEach::") for key in raw_built["Resources"])
    built = expand_language_extensions(raw_built)
    for name, prefix in PROVIDERS.items():
        function_dir = build_dir / f"{prefix}Function"
        assert (function_dir / "app.py").is_file(), f"{name}: app.py missing from the build"
        assert built["Resources"][f"{prefix}Function"]["Properties"]["CodeUri"] == f"{prefix}Function"

    layer_python = build_dir / "SharedLayer" / "python"
    assert layer_python.is_dir(), "the layer must be built under python/ (functions/shared/Makefile)"
    for requirement in ("aws_lambda_powertools", "aws_xray_sdk", "requests"):
        assert (layer_python / requirement).is_dir(), f"{requirement} missing from the layer"
    if SHARED_PACKAGE.is_dir():
        assert (layer_python / "captcha_verify" / "__init__.py").is_file()
    # The runtime brings boto3 and botocore; a second copy in the layer would shadow them.
    for stray in ("boto3", "botocore", "s3transfer", "dateutil"):
        assert not (layer_python / stray).exists(), f"{stray} must not be in the layer"
    _assert_unchecked_hash_bytecode(layer_python)
    _assert_packaged_code_is_mapped_per_provider(build_dir, tmp_path)


def _assert_packaged_code_is_mapped_per_provider(build_dir: Path, tmp_path: Path) -> None:
    """sam package (which sam deploy runs) uploads each provider's code and keeps the Fn::ForEach,
    mapping every provider to its object; expanded as CloudFormation will, each function's
    CodeUri is an object that was uploaded. S3 is a moto server on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="t",
            aws_secret_access_key="t",
        )
        s3.create_bucket(Bucket="artifacts")
        packaged_path = tmp_path / "packaged.yaml"
        result, _ = _run(
            [
                "sam",
                "package",
                "--language-extensions",
                "--template-file",
                str(build_dir / "template.yaml"),
                "--s3-bucket",
                "artifacts",
                "--output-template-file",
                str(packaged_path),
                "--region",
                "us-east-1",
            ],
            timeout=300,
            cwd=tmp_path,
            env_overrides={
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "t",
                "AWS_SECRET_ACCESS_KEY": "t",
            },
        )
        assert result.returncode == 0, _output(result)
        raw = yaml_parse(packaged_path.read_text(encoding="utf-8"))
        assert any(key.startswith("Fn::ForEach::") for key in raw["Resources"])
        packaged = expand_language_extensions(raw)
        uploaded = {item["Key"] for item in s3.list_objects_v2(Bucket="artifacts")["Contents"]}
        for prefix in PROVIDERS.values():
            code = packaged["Resources"][f"{prefix}Function"]["Properties"]["CodeUri"]
            assert isinstance(code, str) and code.startswith("s3://artifacts/"), (prefix, code)
            assert code.removeprefix("s3://artifacts/") in uploaded, prefix
        codes = {packaged["Resources"][f"{p}Function"]["Properties"]["CodeUri"] for p in PROVIDERS.values()}
        assert len(codes) == len(PROVIDERS), "each provider has its own code"
    finally:
        server.stop()


def _assert_unchecked_hash_bytecode(tree: Path) -> None:
    """Every module has a .pyc that Lambda can use from a fixed-timestamp zip on a read-only disk:
    hash-based and unchecked (flags 0b01 in the header, PEP 552), this interpreter's magic number,
    and the hash of exactly the source shipped beside it."""
    sources = sorted(tree.rglob("*.py"))
    packages = {source.relative_to(tree).parts[0] for source in sources}
    assert {"captcha_verify", "aws_lambda_powertools", "requests", "urllib3"} <= packages
    for source in sources:
        compiled = Path(importlib.util.cache_from_source(str(source)))
        assert compiled.is_file(), f"no bytecode for {source.relative_to(tree)}"
        header = compiled.read_bytes()[:16]
        assert header[:4] == importlib.util.MAGIC_NUMBER, f"{compiled}: another Python's bytecode"
        assert int.from_bytes(header[4:8], "little") == 0b01, f"{compiled}: not unchecked-hash bytecode"
        assert header[8:16] == importlib.util.source_hash(source.read_bytes()), f"{compiled}: stale"


# ------------------------------------------------------------------ layout and parameters
def test_top_level_sections_in_house_order(template: dict[str, Any]) -> None:
    house_order = [
        "Metadata",
        "Parameters",
        "Rules",
        "Mappings",
        "Conditions",
        "Globals",
        "Resources",
        "Outputs",
    ]
    present = [key for key in template if key in house_order]
    assert present == sorted(present, key=house_order.index)
    assert template["Transform"] == ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]
    assert {"Parameters", "Conditions", "Globals", "Resources", "Outputs"} <= set(present)


def test_parameters_are_exactly_the_documented_set_and_described(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert set(parameters) == EXPECTED_PARAMETERS
    for name, spec in parameters.items():
        assert spec.get("Description", "").strip(), f"{name} has no Description"
        assert "Default" in spec, f"{name} has no Default (sam deploy --guided needs one)"
        _check_parameter_value(name, spec, str(spec["Default"]))


def test_parameter_defaults(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    for prefix in PROVIDERS.values():
        assert parameters[f"Enable{prefix}"]["Default"] == "true"
        assert parameters[f"Enable{prefix}"]["AllowedValues"] == ["true", "false"]
        for suffix in ("SecretArn", "VerifyUrl", "ExpectedSitekey"):
            assert parameters[f"{prefix}{suffix}"]["Default"] == ""
    expected = {
        "FriendlyApiVersion": "v1",
        "AllowedOrigins": "",
        "FailurePolicy": "closed",
        "VerifyTimeoutSeconds": 3,
        "RecordTtlDays": 30,
        "SuccessRedirectUrl": "",
        "FailureRedirectUrl": "",
        "LogLevel": "INFO",
        "LogSampleRate": 0,
        "MetricsNamespace": "CaptchaVerify",
        "LogRetentionDays": 30,
        "EnablePointInTimeRecovery": "true",
        "TracingMode": "Disabled",
        "AlarmEmail": "",
        "ProviderErrorRateThreshold": 5,
        "ProvisionedConcurrency": 0,
        "ClientRateLimitPerMinute": 20,
        "ApiThrottlingRateLimit": 20,
        "ApiThrottlingBurstLimit": 40,
        "FunctionConcurrencyLimit": 0,
    }
    assert {name: parameters[name]["Default"] for name in expected} == expected
    assert parameters["FailurePolicy"]["AllowedValues"] == ["closed", "open"]
    assert parameters["FriendlyApiVersion"]["AllowedValues"] == ["v1", "v2"]


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("AllowedOrigins", "https://example.com,http://localhost:8080", "https://example.com, https://b.com"),
        ("AllowedOrigins", "https://www.example.com", "https://example.com/form"),
        ("CaptchaCatSecretArn", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:captcha/x-AbCdEf", "x"),
        (
            "SwetrixVerifyUrl",
            "https://swetrix.example.com/backend/v1/captcha/validate",
            "http://swetrix.example.com/v",
        ),
        ("SwetrixVerifyUrl", "http://127.0.0.1:9000/v1/captcha/validate", "ftp://example.com"),
        ("AlarmEmail", "ops@example.com", "not-an-email"),
        ("MetricsNamespace", "My/Captcha", ""),
    ],
)
def test_parameter_constraints(template: dict[str, Any], name: str, good: str, bad: str) -> None:
    spec = template["Parameters"][name]
    _check_parameter_value(name, spec, good)
    with pytest.raises(AssertionError):
        _check_parameter_value(name, spec, bad)


def test_interface_groups_every_parameter_once(template: dict[str, Any]) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])
    assert all(group["Label"]["default"] for group in groups)


def test_at_least_one_provider_rule(template: dict[str, Any]) -> None:
    assertion = template["Rules"]["AtLeastOneProvider"]["Assertions"][0]["Assert"]["Fn::Or"]
    refs = sorted(item["Fn::Equals"][0]["Ref"] for item in assertion)
    assert refs == sorted(f"Enable{p}" for p in PROVIDERS.values())


# ------------------------------------------------------------------ functions
def test_one_function_per_provider_and_the_notifications_function_with_the_fixed_shape(
    template: dict[str, Any], resources
) -> None:
    functions = _functions(resources)
    # The relay (not per provider): tests/template/test_store_and_relay.py.
    assert set(functions) == {f"{p}Function" for p in PROVIDERS.values()} | {
        "NotificationsFunction",
        "SubmissionRelayFunction",
    }
    folders = {f"{prefix}Function": (name, f"{prefix}Enabled") for name, prefix in PROVIDERS.items()}
    folders["NotificationsFunction"] = ("notifications", "HasNotifications")
    for logical_id, (name, condition) in folders.items():
        function = functions[logical_id]
        props = function["Properties"]
        assert function["Condition"] == condition
        assert props["CodeUri"] == f"functions/{name}/"
        assert props["Handler"] == "app.lambda_handler"
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["Layers"] == [{"Ref": "SharedLayer"}]
    function_globals = template["Globals"]["Function"]
    assert function_globals["Timeout"] == 10
    assert function_globals["MemorySize"] == 256
    assert function_globals["Tracing"] == {"Ref": "TracingMode"}

    layer = resources["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "functions/shared/"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    # functions/shared/Makefile: the hashed lock and unchecked-hash bytecode (checked after sam build).
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}


def test_each_function_environment_is_exactly_the_design_table(template: dict[str, Any], resources) -> None:
    global_env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert global_env["CHALLENGE_TABLE_NAME"] == {"Ref": "ChallengeTable"}
    assert global_env["POWERTOOLS_SERVICE_NAME"] == "captcha-verify"
    assert global_env["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    assert global_env["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert global_env["POWERTOOLS_LOGGER_SAMPLE_RATE"] == {"Ref": "LogSampleRate"}
    for name, prefix in PROVIDERS.items():
        own = resources[f"{prefix}Function"]["Properties"]["Environment"]["Variables"]
        assert not set(own) & set(global_env), f"{name}: a variable is set both globally and per function"
        names = set(own) | set(global_env)
        assert names == DESIGN_ENVIRONMENT, f"{name}: {sorted(names ^ DESIGN_ENVIRONMENT)}"
        assert own["PROVIDER_SECRET_ID"] == {
            "Fn::If": [f"{prefix}CreateSecret", {"Ref": f"{prefix}Secret"}, {"Ref": f"{prefix}SecretArn"}]
        }
        assert own["PROVIDER_VERIFY_URL"] == {"Ref": f"{prefix}VerifyUrl"}
        assert own["EXPECTED_SITEKEY"] == {"Ref": f"{prefix}ExpectedSitekey"}
    assert global_env["FRIENDLY_API_VERSION"] == {"Ref": "FriendlyApiVersion"}


def test_code_reads_only_variables_the_template_sets(template: dict[str, Any], resources) -> None:
    config = SHARED_PACKAGE / "config.py"
    if not config.is_file():
        pytest.skip("functions/shared/captcha_verify/config.py not present")
    read = set(re.findall(r"\"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\"", config.read_text(encoding="utf-8")))
    assert read, "no environment names found in config.py"
    read = {name for name in read if not name.startswith(("AWS_", "LAMBDA_", "_X_AMZN"))}  # set by Lambda
    provided = set(template["Globals"]["Function"]["Environment"]["Variables"])
    provided |= set(resources["FriendlyCaptchaFunction"]["Properties"]["Environment"]["Variables"])
    assert read <= provided, f"read by the code but not set by the template: {sorted(read - provided)}"


def test_routes_are_exactly_post_verify_provider(resources) -> None:
    routes = []
    for name, prefix in PROVIDERS.items():
        events = resources[f"{prefix}Function"]["Properties"]["Events"]
        assert len(events) == 1, f"{name}: one event expected"
        (event,) = events.values()
        assert event["Type"] == "HttpApi"
        props = event["Properties"]
        assert props["ApiId"] == {"Ref": "HttpApi"}
        assert props["PayloadFormatVersion"] == "2.0"
        assert props["Path"] == f"/verify/{name}"
        routes.append((props["Method"], props["Path"]))
    assert sorted(routes) == sorted(("POST", f"/verify/{name}") for name in PROVIDERS)
    assert resources["HttpApi"]["Type"] == "AWS::Serverless::HttpApi"


def test_secrets_start_empty_and_are_created_only_when_no_arn_is_given(template, resources) -> None:
    for name, prefix in PROVIDERS.items():
        secret = resources[f"{prefix}Secret"]
        assert secret["Type"] == "AWS::SecretsManager::Secret"
        assert secret["Condition"] == f"{prefix}CreateSecret"
        assert secret["Properties"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}/{name}"}
        assert json.loads(secret["Properties"]["SecretString"]) == {"secret": ""}
        assert '{"secret"' in secret["Properties"]["Description"]
        condition = template["Conditions"][f"{prefix}CreateSecret"]["Fn::And"]
        assert template["Conditions"][f"{prefix}Enabled"] in condition
        assert {"Fn::Equals": [{"Ref": f"{prefix}SecretArn"}, ""]} in condition
        assert template["Conditions"][f"{prefix}Enabled"] == {
            "Fn::Equals": [{"Ref": f"Enable{prefix}"}, "true"]
        }


def test_every_per_provider_resource_and_output_is_conditional(template, resources) -> None:
    for prefix in PROVIDERS.values():
        allowed = {f"{prefix}Enabled", f"{prefix}CreateSecret"}
        own = [lid for lid in resources if lid.startswith(prefix)]
        kinds = {
            "Secret",
            "Function",
            "LogGroup",
            "DegradedAcceptanceAlarm",
            "SubmissionDeliveryFailedAlarm",
            "SubmissionCommitFailedAlarm",
            "ProviderErrorRateAlarm",
            "FunctionErrorsAlarm",
            "FunctionThrottlesAlarm",
            "RateLimitUnavailableAlarm",
            "RecordWriteFailedAlarm",
        }
        assert sorted(own) == sorted(prefix + kind for kind in kinds)
        for logical_id in own:
            assert resources[logical_id].get("Condition") in allowed, f"{logical_id} is not conditional"
        outputs = [oid for oid in template["Outputs"] if oid.startswith(prefix)]
        assert sorted(outputs) == sorted([f"{prefix}Endpoint", f"{prefix}SecretArn"])
        assert template["Outputs"][f"{prefix}Endpoint"]["Condition"] == f"{prefix}Enabled"
        assert template["Outputs"][f"{prefix}SecretArn"]["Condition"] == f"{prefix}CreateSecret"
    # And nothing unconditional refers to a per-provider resource except through Fn::If.
    per_provider = {lid for lid, r in resources.items() if "Condition" in r}
    for logical_id, resource in resources.items():
        if "Condition" in resource:
            continue
        guarded: set[str] = set()
        for node in _walk(resource):
            if isinstance(node, dict) and "Fn::If" in node:
                guarded |= {n["Ref"] for n in _walk(node) if isinstance(n, dict) and "Ref" in n}
                guarded |= {
                    m for n in _walk(node) if isinstance(n, str) for m in re.findall(r"\$\{([A-Za-z0-9]+)", n)
                }
        for node in _walk(resource):
            if isinstance(node, dict) and "Ref" in node and node["Ref"] in per_provider:
                assert node["Ref"] in guarded, f"{logical_id} refers to {node['Ref']} unguarded"


# ------------------------------------------------------------------ data and logs
def test_challenge_table(resources) -> None:
    table = resources["ChallengeTable"]
    props = table["Properties"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "provider", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": "provider", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] == {
        "Fn::If": ["PointInTimeRecoveryEnabled", True, False]
    }


def test_every_function_has_its_log_group_with_the_retention_parameter(resources) -> None:
    log_groups = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    for prefix in PROVIDERS.values():
        group = log_groups[f"{prefix}LogGroup"]
        assert group["Condition"] == f"{prefix}Enabled"
        assert group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{prefix}Function}}"}
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    for lid, group in log_groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, lid


def test_http_api_cors_and_access_log(resources) -> None:
    props = resources["HttpApi"]["Properties"]
    # In the OpenAPI body, not CorsConfiguration (see the template's comment, and
    # test_deploy_matrix.py for the object each deploy gets after both transforms).
    assert "CorsConfiguration" not in props
    cors = props["DefinitionBody"]["x-amazon-apigateway-cors"]
    assert cors["allowOrigins"] == {
        "Fn::If": ["HasAllowedOrigins", {"Fn::Split": [",", {"Ref": "AllowedOrigins"}]}, ["*"]]
    }
    assert sorted(cors["allowMethods"]) == ["OPTIONS", "POST"]
    assert [h.lower() for h in cors["allowHeaders"]] == ["content-type"]
    assert cors["exposeHeaders"] == ["apigw-requestid"]
    assert isinstance(cors["maxAge"], int) and cors["maxAge"] > 0
    access = props["AccessLogSettings"]
    assert access["DestinationArn"] == {"Fn::GetAtt": "HttpApiAccessLogGroup.Arn"} or access[
        "DestinationArn"
    ] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    fields = json.loads(access["Format"])
    assert {"requestId", "routeKey", "status", "responseLatency", "integrationError"} <= set(fields)
    assert not [v for v in fields.values() if "sourceIp" in v or "identity" in v], (
        "no IP address in access logs"
    )


# ------------------------------------------------------------------ observability
def test_alarms_notify_the_topic(resources) -> None:
    alarms = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    expected = {
        "ApiServerErrorAlarm",
        "EmailDeadLetterAlarm",
        "WebhookDeadLetterAlarm",
        "AutoresponseDeadLetterAlarm",
        "SubmissionRelayFailedAlarm",
        "SubmissionRelayDeadLetterAlarm",
    } | {
        f"{p}{kind}Alarm"
        for p in PROVIDERS.values()
        for kind in (
            "DegradedAcceptance",
            "SubmissionDeliveryFailed",
            "SubmissionCommitFailed",
            "ProviderErrorRate",
            "FunctionErrors",
            "FunctionThrottles",
            "RateLimitUnavailable",
            "RecordWriteFailed",
        )
    }
    assert set(alarms) == expected
    for lid, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], lid
        assert alarm["Properties"]["AlarmDescription"], lid
    topic = resources["AlarmTopic"]
    assert topic["Type"] == "AWS::SNS::Topic" and "Condition" not in topic
    assert topic["Properties"]["KmsMasterKeyId"]
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}

    api = alarms["ApiServerErrorAlarm"]["Properties"]
    assert (api["Namespace"], api["MetricName"], api["Statistic"]) == ("AWS/ApiGateway", "5xx", "Sum")
    assert api["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}]
    assert api["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and api["Threshold"] == 1


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_provider_alarms(resources, provider: str) -> None:
    prefix = PROVIDERS[provider]
    dimensions = [{"Name": "service", "Value": "captcha-verify"}, {"Name": "provider", "Value": provider}]

    degraded = resources[f"{prefix}DegradedAcceptanceAlarm"]["Properties"]
    assert degraded["Namespace"] == {"Ref": "MetricsNamespace"}
    assert degraded["MetricName"] == "DegradedAcceptance"
    assert degraded["Dimensions"] == dimensions
    assert (degraded["Statistic"], degraded["Period"], degraded["Threshold"]) == ("Sum", 300, 1)
    assert degraded["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert degraded["TreatMissingData"] == "notBreaching"

    rate = resources[f"{prefix}ProviderErrorRateAlarm"]["Properties"]
    assert rate["Threshold"] == {"Ref": "ProviderErrorRateThreshold"}
    assert rate["ComparisonOperator"] == "GreaterThanThreshold"
    stats = {m["Id"]: m["MetricStat"] for m in rate["Metrics"] if "MetricStat" in m}
    assert {s["Metric"]["MetricName"] for s in stats.values()} == {"ProviderError", "Verified", "Rejected"}
    for stat in stats.values():
        assert stat["Metric"]["Dimensions"] == dimensions
        assert stat["Metric"]["Namespace"] == {"Ref": "MetricsNamespace"}
        assert (stat["Period"], stat["Stat"]) == (300, "Sum")
    returned = [m for m in rate["Metrics"] if m.get("ReturnData", True)]
    assert len(returned) == 1 and "100" in returned[0]["Expression"]
    expressions = " ".join(m.get("Expression", "") for m in rate["Metrics"])
    assert "FILL(" in expressions and all(f"FILL({i}, 0)" in expressions for i in stats)

    for metric in ("RateLimitUnavailable", "RecordWriteFailed"):
        fail_open = resources[f"{prefix}{metric}Alarm"]["Properties"]
        assert (fail_open["Namespace"], fail_open["MetricName"]) == ({"Ref": "MetricsNamespace"}, metric)
        assert fail_open["Dimensions"] == dimensions

    for kind, metric in (("FunctionErrors", "Errors"), ("FunctionThrottles", "Throttles")):
        alarm = resources[f"{prefix}{kind}Alarm"]["Properties"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric)
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": f"{prefix}Function"}}]


def test_query_definitions(resources) -> None:
    queries = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::Logs::QueryDefinition"}
    assert set(queries) == QUERY_DEFINITIONS
    expected_groups = [
        {"Fn::If": [f"{p}Enabled", {"Ref": f"{p}LogGroup"}, {"Ref": "AWS::NoValue"}]}
        for p in PROVIDERS.values()
    ]
    for lid, query in queries.items():
        assert query["Properties"]["LogGroupNames"] == expected_groups, lid
        assert 'message = "verification"' in query["Properties"]["QueryString"] or lid == "RequestByIdQuery"
    text = {lid: q["Properties"]["QueryString"] for lid, q in queries.items()}
    assert (
        "error_codes" in text["FailuresByErrorCodeQuery"]
        and "stats count(*)" in text["FailuresByErrorCodeQuery"]
    )
    assert (
        "pct(solve_time_ms, 50)" in text["SolveTimeQuery"]
        and "pct(solve_time_ms, 95)" in text["SolveTimeQuery"]
    )
    assert "by provider" in text["SolveTimeQuery"]
    latency = text["ProviderLatencyQuery"]
    assert all(
        s in latency
        for s in (
            "pct(provider_latency_ms, 50)",
            "pct(provider_latency_ms, 95)",
            "max(provider_latency_ms)",
            "by provider",
        )
    )
    assert 'outcome = "degraded"' in text["DegradedAcceptancesQuery"]
    by_id = text["RequestByIdQuery"]
    assert 'request_id = "REPLACE_WITH_REQUEST_ID"' in by_id and "correlation_id" in by_id
    assert by_id.lstrip().startswith("#") and "Replace REPLACE_WITH_REQUEST_ID" in by_id


def _render_dashboard(resources, enabled: set[str]) -> dict[str, Any]:
    conditions = {f"{p}Enabled": p in enabled for p in PROVIDERS.values()}
    refs = {"MetricsNamespace": "CaptchaVerify", "AWS::Region": "us-east-1", "AWS::StackName": "stack"}
    body = _resolve(resources["Dashboard"]["Properties"]["DashboardBody"], conditions, refs)
    return json.loads(body)


@pytest.mark.parametrize(
    "enabled",
    [set(PROVIDERS.values()), {"Swetrix"}, {"CaptchaCat", "FriendlyCaptcha"}],
    ids=["all", "one", "two"],
)
def test_dashboard_renders_to_valid_json_with_only_enabled_providers(resources, enabled: set[str]) -> None:
    assert resources["Dashboard"]["Type"] == "AWS::CloudWatch::Dashboard"
    widgets = _render_dashboard(resources, enabled)["widgets"]
    titles = [w["properties"].get("title", "") for w in widgets]
    for name, prefix in PROVIDERS.items():
        own = [t for t in titles if t.startswith(f"{name}:")]
        if prefix in enabled:
            assert len(own) == 6, (name, own)
            joined = " ".join(own)
            for topic in (
                "verifications by outcome",
                "provider errors",
                "solve time",
                "token age",
                "provider latency",
                "Lambda errors, throttles, duration",
            ):
                assert topic in joined, (name, topic)
        else:
            assert own == [], f"{name} is disabled but has widgets"
    metrics_json = json.dumps([w for w in widgets if w["type"] == "metric"])
    for metric in (
        "Verified",
        "Rejected",
        "DegradedAcceptance",
        "ProviderError",
        "SolveTime",
        "TokenAge",
        "ProviderLatency",
        "4xx",
        "5xx",
        "Errors",
        "Throttles",
        "Duration",
    ):
        assert f'"{metric}"' in metrics_json, metric
    for fail_open in ("RateLimitUnavailable", "RecordWriteFailed"):
        assert f'MetricName=\\"{fail_open}\\"' in metrics_json, fail_open
    assert '"p95"' in metrics_json and '"p50"' in metrics_json
    (log_widget,) = [w for w in widgets if w["type"] == "log"]
    query = log_widget["properties"]["query"]
    sources = re.findall(r"SOURCE '/aws/lambda/<(\w+)Function>'", query)
    assert sorted(sources) == sorted(enabled)
    assert 'outcome != "verified"' in query


# ------------------------------------------------------------------ outputs and samconfig
def test_outputs_contract(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    expected = {"ApiUrl", "ChallengeTableName", "AlarmTopicArn", "DashboardUrl"}
    expected |= {"SubmissionBusName", "SubmissionBusArn", "SubmissionTableName", "SubmissionArchiveName"}
    expected |= {"SubmissionArchiveRetentionDays", "SubmissionRelayDeadLetterQueueUrl"} | {
        f"{p}{s}" for p in PROVIDERS.values() for s in ("Endpoint", "SecretArn")
    }
    assert set(outputs) == expected
    for oid, output in outputs.items():
        assert output["Description"].strip(), oid
    for name, prefix in PROVIDERS.items():
        endpoint = outputs[f"{prefix}Endpoint"]["Value"]["Fn::Sub"]
        assert endpoint.startswith("https://${HttpApi}.execute-api.${AWS::Region}.")
        assert endpoint.endswith(f"/verify/{name}")
    assert outputs["ChallengeTableName"]["Value"] == {"Ref": "ChallengeTable"}
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}
    assert outputs["SubmissionBusName"]["Value"] == {"Ref": "SubmissionBus"}
    assert outputs["SubmissionBusArn"]["Value"] == {"Fn::GetAtt": ["SubmissionBus", "Arn"]}
    assert "#dashboards:name=${Dashboard}" in outputs["DashboardUrl"]["Value"]["Fn::Sub"]


def test_samconfig(template: dict[str, Any]) -> None:
    config = tomllib.loads(SAMCONFIG_PATH.read_text(encoding="utf-8"))
    assert config["version"] == 0.1
    default = config["default"]
    assert default["build"]["parameters"] == {"cached": True, "parallel": True, "language_extensions": True}
    for command in ("validate", "deploy", "package", "sync"):
        assert default[command]["parameters"]["language_extensions"] is True, command
    assert default["validate"]["parameters"]["lint"] is True
    deploy = default["deploy"]["parameters"]
    # CAPABILITY_AUTO_EXPAND: the template runs the AWS::LanguageExtensions transform.
    assert deploy["capabilities"] == "CAPABILITY_IAM CAPABILITY_AUTO_EXPAND"
    assert deploy["confirm_changeset"] is True and deploy["resolve_s3"] is True
    stack_names = {
        env: config[env]["global"]["parameters"]["stack_name"] for env in ("default", "staging", "prod")
    }
    assert stack_names["default"] == "captcha-verify"
    assert len(set(stack_names.values())) == 3

    parameters = template["Parameters"]
    for env in ("staging", "prod"):
        overrides = config[env]["deploy"]["parameters"]["parameter_overrides"]
        values = dict(item.split("=", 1) for item in overrides)
        for name, value in values.items():
            assert name in parameters, f"[{env}] unknown parameter {name}"
            _check_parameter_value(name, parameters[name], value)
    prod = dict(item.split("=", 1) for item in config["prod"]["deploy"]["parameters"]["parameter_overrides"])
    assert prod["FailurePolicy"] == "closed"


# ------------------------------------------------------------------ one definition per provider
def test_each_provider_resource_and_output_is_written_once_in_a_loop(raw_template: dict[str, Any]) -> None:
    prefixes = tuple(PROVIDERS.values())
    for section in ("Resources", "Outputs", "Conditions"):
        written = [key for key in raw_template[section] if key.startswith(prefixes)]
        assert written == [], f"{section}: {written} written per provider instead of in the Fn::ForEach"
        loops = [value for key, value in raw_template[section].items() if key.startswith("Fn::ForEach::")]
        assert len(loops) == 1, section
        assert loops[0][1] == list(PROVIDERS.values()), section
    rows = raw_template["Mappings"]["Providers"]
    assert list(rows) == list(PROVIDERS.values())
    for name, prefix in PROVIDERS.items():
        assert rows[prefix]["Name"] == name
        assert rows[prefix]["CodeUri"] == f"functions/{name}/"
        assert rows[prefix]["Route"] == f"/verify/{name}"


def test_every_condition_reference_exists_and_every_condition_is_used(template: dict[str, Any]) -> None:
    """What cfn-lint cannot check inside the Fn::ForEach (see the template's cfn-lint Metadata)."""
    defined = set(template["Conditions"])
    used: set[str] = set()
    for section in ("Globals", "Resources", "Outputs", "Conditions"):
        for item in template[section].values():
            if isinstance(item, dict) and isinstance(item.get("Condition"), str):
                used.add(item["Condition"])
            for node in _walk(item):
                if isinstance(node, dict) and "Fn::If" in node:
                    used.add(node["Fn::If"][0])
                if isinstance(node, dict) and isinstance(node.get("Condition"), str) and len(node) == 1:
                    used.add(node["Condition"])
    assert used <= defined, f"undefined conditions: {sorted(used - defined)}"
    assert defined <= used, f"unused conditions: {sorted(defined - used)}"
    refs = {n["Ref"] for n in _walk(template) if isinstance(n, dict) and isinstance(n.get("Ref"), str)}
    known = set(template["Parameters"]) | set(template["Resources"]) | {"AWS::NoValue", "AWS::Region"}
    # SAM resolves "<function>.Alias" to the alias AutoPublishAlias creates.
    known |= {f"{name}.Alias" for name in _functions(template["Resources"])}
    assert {r for r in refs if not r.startswith("AWS::")} <= known, sorted(refs - known)


# ------------------------------------------------------------------ performance
class _AnyManagedPolicy(dict[str, str]):
    """The SAM translator looks managed policies up by name; offline, every name maps to its ARN."""

    def __missing__(self, name: str) -> str:
        return f"arn:aws:iam::aws:policy/{name}"

    def __contains__(self, name: object) -> bool:
        return True


class _OfflinePolicyLoader:
    def load(self) -> dict[str, str]:
        return _AnyManagedPolicy()


@pytest.fixture(scope="module")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    """The template after the SAM transform, as CloudFormation receives it (code URIs as if uploaded)."""
    from samtranslator.translator.transform import transform

    document = json.loads(json.dumps(template))
    for resource in document["Resources"].values():
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = "s3://bucket/key"
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    try:
        return transform(document, {}, _OfflinePolicyLoader())
    finally:
        if previous is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous


def test_provisioned_concurrency_is_off_by_default_and_lives_on_the_live_alias(
    template: dict[str, Any], transformed: dict[str, Any]
) -> None:
    assert template["Conditions"]["ProvisionedConcurrencyEnabled"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ProvisionedConcurrency"}, 0]}]
    }
    out = transformed["Resources"]
    for name, prefix in PROVIDERS.items():
        alias = out[f"{prefix}FunctionAliaslive"]
        assert alias["Type"] == "AWS::Lambda::Alias" and alias["Condition"] == f"{prefix}Enabled"
        assert alias["Properties"]["ProvisionedConcurrencyConfig"] == {
            "Fn::If": [
                "ProvisionedConcurrencyEnabled",
                {"ProvisionedConcurrentExecutions": {"Ref": "ProvisionedConcurrency"}},
                {"Ref": "AWS::NoValue"},
            ]
        }
        # The API invokes the alias, so requests land on the provisioned environments.
        permission = out[f"{prefix}FunctionVerifyPermission"]["Properties"]
        assert permission["FunctionName"] == {"Ref": f"{prefix}FunctionAliaslive"}, name
        api_body = json.dumps(out["HttpApi"]["Properties"]["Body"]["paths"][f"/verify/{name}"])
        assert f"${{{prefix}FunctionAliaslive}}" in api_body, name
