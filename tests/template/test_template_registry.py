"""The template against the provider registry: CloudFormation cannot import the registry, so every
place template.yaml names the providers (the Providers mapping, the loops, the four parameters of
each, the parameter groups and labels, the rule, the dashboard, the saved queries, the outputs)
is checked to name exactly the registry's providers, in its order, with its titles and URLs."""

from __future__ import annotations

import re
from typing import Any

import pytest
from captcha_verify.providers import REGISTRY, Provider
from support.cloudformation import TEMPLATE_PATH, expand_language_extensions, raw_template

PREFIXES = [entry.prefix for entry in REGISTRY]
# The longest a provider's token stays valid (Turnstile, Friendly Captcha and the others: 300 s).
TOKEN_LIFETIME_SECONDS = 300
PER_PROVIDER_PARAMETERS = ("Enable{}", "{}SecretArn", "{}VerifyUrl", "{}ExpectedSitekey")
# The one parameter that only one provider has.
PROVIDER_OPTIONS = {"FriendlyApiVersion"}
# Enable* parameters that switch a feature, not a provider.
FEATURE_SWITCHES = {"EnablePointInTimeRecovery"}
each_provider = pytest.mark.parametrize("entry", REGISTRY, ids=[entry.name for entry in REGISTRY])


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return raw_template()


@pytest.fixture(scope="module")
def expanded(raw: dict[str, Any]) -> dict[str, Any]:
    return expand_language_extensions(raw)


def groups(raw: dict[str, Any]) -> dict[str, list[str]]:
    interface = raw["Metadata"]["AWS::CloudFormation::Interface"]
    return {group["Label"]["default"]: group["Parameters"] for group in interface["ParameterGroups"]}


def test_the_providers_mapping_is_the_registry(raw: dict[str, Any]) -> None:
    rows = raw["Mappings"]["Providers"]
    assert list(rows) == PREFIXES
    for entry in REGISTRY:
        assert rows[entry.prefix] == {
            "Name": entry.name,
            "Title": entry.title,
            "CodeUri": f"functions/{entry.name}/",
            "Route": f"/verify/{entry.name}",
        }


def test_every_provider_loop_runs_over_the_registry(raw: dict[str, Any]) -> None:
    loops = [
        (section, key, value)
        for section in ("Conditions", "Resources", "Outputs")
        for key, value in raw[section].items()
        if key.startswith("Fn::ForEach::")
    ]
    assert len(loops) == 3
    for section, key, value in loops:
        assert value[1] == PREFIXES, f"{section} {key}"


def test_the_per_provider_parameters_are_exactly_the_registry_s(raw: dict[str, Any]) -> None:
    parameters = set(raw["Parameters"])
    for pattern in PER_PROVIDER_PARAMETERS:
        regex = re.compile("^" + pattern.format("([A-Z][A-Za-z]*?)") + "$")
        found = {match[1] for name in parameters - FEATURE_SWITCHES if (match := regex.match(name))}
        assert found == set(PREFIXES), pattern


@each_provider
def test_the_verify_url_parameter_names_the_adapter_s_default(raw: dict[str, Any], entry: Provider) -> None:
    description = raw["Parameters"][f"{entry.prefix}VerifyUrl"]["Description"]
    for url in entry.default_verify_urls:
        assert url in description
    assert entry.title in description


@each_provider
def test_the_enable_parameter_and_its_label_name_the_provider(raw: dict[str, Any], entry: Provider) -> None:
    parameter = raw["Parameters"][f"Enable{entry.prefix}"]
    assert f"POST /verify/{entry.name}" in parameter["Description"]
    assert entry.title in parameter["Description"]
    labels = raw["Metadata"]["AWS::CloudFormation::Interface"]["ParameterLabels"]
    assert labels[f"Enable{entry.prefix}"] == {"default": f"Deploy {entry.title}"}


def test_the_parameter_groups_list_the_registry_s_providers_in_order(raw: dict[str, Any]) -> None:
    by_label = groups(raw)
    assert by_label["Providers to deploy"] == [f"Enable{p}" for p in PREFIXES]
    secrets = next(names for label, names in by_label.items() if label.startswith("Provider secrets"))
    assert secrets == [f"{p}SecretArn" for p in PREFIXES]
    endpoints = by_label["Provider verify endpoints and site keys"]
    expected = [name for p in PREFIXES for name in (f"{p}VerifyUrl", f"{p}ExpectedSitekey")]
    assert [name for name in endpoints if name not in PROVIDER_OPTIONS] == expected


def test_the_rule_asks_for_any_registered_provider(raw: dict[str, Any]) -> None:
    assertion = raw["Rules"]["AtLeastOneProvider"]["Assertions"][0]["Assert"]["Fn::Or"]
    assert [clause["Fn::Equals"][0]["Ref"] for clause in assertion] == [f"Enable{p}" for p in PREFIXES]


def test_every_hand_written_list_names_each_provider_as_often(raw: dict[str, Any]) -> None:
    """The dashboard's sections and Logs Insights SOURCE lines, and the saved queries' log groups,
    are written per provider (CloudFormation's loops cannot build them): each provider is named in
    each as often as every other."""
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    patterns = (
        r"\b{p}Enabled\b",
        r"\b{p}LogGroup\b",
        r"\$\{{{p}Function\}}",
        r"SOURCE '/aws/lambda/\$\{{{p}Function\}}'",
        r'"provider","{n}"',
        r"### {t} \(`{n}`\)",
    )
    for pattern in patterns:
        counts = {entry.name: len(re.findall(named(pattern, entry), text)) for entry in REGISTRY}
        assert min(counts.values()) > 0 and len(set(counts.values())) == 1, (pattern, counts)


def named(pattern: str, entry: Provider) -> str:
    return pattern.format(p=entry.prefix, n=entry.name, t=re.escape(entry.title))


def test_the_outputs_are_each_provider_s_endpoint_and_created_secret(expanded: dict[str, Any]) -> None:
    per_provider = {name for name in expanded["Outputs"] if name.startswith(tuple(PREFIXES))}
    assert per_provider == {f"{p}{kind}" for p in PREFIXES for kind in ("Endpoint", "SecretArn")}


def test_the_description_names_every_provider(raw: dict[str, Any]) -> None:
    for entry in REGISTRY:
        assert entry.title in raw["Description"].replace("\n", " ")


def test_the_idempotency_window_outlives_every_provider_s_token(raw: dict[str, Any]) -> None:
    """A repeat of a verified token must meet the project's idempotency record, not the provider:
    Turnstile answers a repeat carrying the first call's idempotency key with the first success
    (Cloudflare, "Validate the token": idempotency_key), and every provider's token lives 300 s."""
    window = raw["Parameters"]["IdempotencyWindowSeconds"]
    assert window["MinValue"] >= TOKEN_LIFETIME_SECONDS
    assert window["Default"] >= TOKEN_LIFETIME_SECONDS
