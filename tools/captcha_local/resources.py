"""Creates the template's own table and secrets on an AWS endpoint (moto), never a second copy of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from captcha_verify.providers import REGISTRY
from samcli.yamlhelper import yaml_parse

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"

# Logical ids in template.yaml, per provider.
FUNCTIONS = {provider.name: f"{provider.prefix}Function" for provider in REGISTRY}


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml_parse(path.read_text())


def create_challenge_table(dynamodb: Any, table_name: str, template: dict[str, Any]) -> None:
    create_table(dynamodb, table_name, template, "ChallengeTable")


def create_submission_table(dynamodb: Any, table_name: str, template: dict[str, Any]) -> None:
    """The submission store (also the idempotency claims), with its indexes and stream."""
    create_table(dynamodb, table_name, template, "SubmissionTable")


def create_rate_limit_table(dynamodb: Any, table_name: str, template: dict[str, Any]) -> None:
    create_table(dynamodb, table_name, template, "RateLimitTable")


def create_table(dynamodb: Any, table_name: str, template: dict[str, Any], logical_id: str) -> None:
    """The table with the template's key schema, indexes and stream, and TTL on the template's
    attribute."""
    properties = template["Resources"][logical_id]["Properties"]
    optional = {
        name: properties[name]
        for name in ("GlobalSecondaryIndexes", "StreamSpecification")
        if name in properties
    }
    if "StreamSpecification" in optional:
        optional["StreamSpecification"] = {"StreamEnabled": True, **optional["StreamSpecification"]}
    dynamodb.create_table(
        TableName=table_name,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode=properties["BillingMode"],
        **optional,
    )
    dynamodb.get_waiter("table_exists").wait(TableName=table_name)
    ttl = properties["TimeToLiveSpecification"]
    dynamodb.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": bool(ttl["Enabled"])},
    )


def create_secret(secretsmanager: Any, name: str, secret: str) -> str:
    """Stores the secret in the shape the template documents, {"secret": "..."}; returns its ARN."""
    return secretsmanager.create_secret(Name=name, SecretString=json.dumps({"secret": secret}))["ARN"]


def create_generated_secret(secretsmanager: Any, name: str, template: dict[str, Any], logical_id: str) -> str:
    """A secret CloudFormation would generate (GenerateSecretString), generated the same way; its ARN."""
    options = template["Resources"][logical_id]["Properties"]["GenerateSecretString"]
    password = secretsmanager.get_random_password(
        PasswordLength=int(options["PasswordLength"]),
        ExcludePunctuation=bool(options.get("ExcludePunctuation", False)),
    )["RandomPassword"]
    return secretsmanager.create_secret(Name=name, SecretString=password)["ARN"]


def create_webhook_secret(secretsmanager: Any, name: str, template: dict[str, Any], url: str) -> str:
    """The webhook secret as the template makes it when WebhookSigningSecret is empty: the URL and
    a signing key generated with the template's own options; its ARN."""
    generated = template["Resources"]["WebhookSecret"]["Properties"]["GenerateSecretString"]["Fn::If"][2]
    key = secretsmanager.get_random_password(
        PasswordLength=int(generated["PasswordLength"]),
        ExcludePunctuation=bool(generated.get("ExcludePunctuation", False)),
    )["RandomPassword"]
    document = {"url": url, generated["GenerateStringKey"]: key}
    return secretsmanager.create_secret(Name=name, SecretString=json.dumps(document))["ARN"]
