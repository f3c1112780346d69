"""template.yaml processed the way CloudFormation processes it at deploy, for the template tests.

CloudFormation runs the transforms in the order the template lists them: AWS::LanguageExtensions
first, with the deploy's parameter values, so it resolves every Ref to a parameter, every
condition and every Fn::If it can before the SAM transform sees the template (AWS docs,
"AWS::LanguageExtensions transform"; SAM's maintainers recommend it for exactly that in
aws/serverless-application-model#1553, #1859 and #2533). SAM CLI ships AWS's own port of
that transform (samcli.lib.cfn_language_extensions, "matches the Kotlin implementation"), which
is what `processed` runs, then the SAM translator, whose output cfn-lint checks.

Two places where the port's output differs from what CloudFormation documents are put back, each
in its own function below, so the tests judge the template and not the port.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from captcha_verify.providers import REGISTRY
from samcli.lib.cfn_language_extensions.api import IntrinsicResolverProcessor, create_default_pipeline
from samcli.lib.cfn_language_extensions.models import ResolutionMode, TemplateProcessingContext
from samcli.lib.cfn_language_extensions.pipeline import ProcessingPipeline
from samcli.lib.cfn_language_extensions.processors import TemplateParsingProcessor
from samcli.lib.cfn_language_extensions.processors.foreach import ForEachProcessor
from samcli.lib.cfn_language_extensions.resolvers.base import IntrinsicResolver
from samcli.lib.cfn_language_extensions.resolvers.fn_find_in_map import FnFindInMapResolver
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
REGION = "us-east-1"
NO_VALUE = {"Ref": "AWS::NoValue"}
# (route name, logical id prefix)
PROVIDERS = {provider.name: provider.prefix for provider in REGISTRY}


@functools.cache
def _raw_template_text() -> str:
    return TEMPLATE_PATH.read_text(encoding="utf-8")


def raw_template() -> dict[str, Any]:
    return yaml_parse(_raw_template_text())


def deploy_parameters(**overrides: str) -> dict[str, str]:
    """Every parameter's value at deploy: the template's defaults, then the user's answers."""
    declared = raw_template()["Parameters"]
    unknown = set(overrides) - set(declared)
    assert not unknown, f"not parameters of template.yaml: {sorted(unknown)}"
    values = {name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec}
    return values | overrides


def expand_language_extensions(raw: dict[str, Any]) -> dict[str, Any]:
    """The language extensions with no parameter values (as `sam build` and `sam validate` see the
    template): Fn::ForEach expanded and Fn::FindInMap resolved; conditions, Fn::If and Refs stay
    for CloudFormation."""
    context = TemplateProcessingContext(
        fragment=copy.deepcopy(raw), parameter_values={}, resolution_mode=ResolutionMode.PARTIAL
    )
    resolver = IntrinsicResolver(context)
    resolver.register_resolver(FnFindInMapResolver)
    pipeline = ProcessingPipeline(
        [
            TemplateParsingProcessor(),
            ForEachProcessor(intrinsic_resolver=resolver),
            IntrinsicResolverProcessor(resolver),
        ]
    )
    return _fold_literal_subs(pipeline.process_template(context))


def _fold_literal_subs(node: Any) -> Any:
    """Fn::Sub whose variables are all literal, written as the one string it stands for."""
    if isinstance(node, list):
        return [_fold_literal_subs(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _fold_literal_subs(value) for key, value in node.items()}
    sub = node.get("Fn::Sub")
    if len(node) == 1 and isinstance(sub, list) and all(isinstance(v, str) for v in sub[1].values()):
        text = sub[0]
        for name, value in sub[1].items():
            text = text.replace(f"${{{name}}}", value)
        node = {"Fn::Sub": text}
        sub = text
    if len(node) == 1 and isinstance(sub, str) and "${" not in sub:
        return sub  # e.g. {"Ref": {"Fn::Sub": "CaptchaCatSecret"}} is {"Ref": "CaptchaCatSecret"}
    return node


@dataclass(frozen=True)
class Resolved:
    """The language extensions' output for one set of parameter values."""

    template: dict[str, Any]
    conditions: dict[str, bool]


def resolve_language_extensions(raw: dict[str, Any], parameters: dict[str, str]) -> Resolved:
    """AWS::LanguageExtensions as it runs at deploy: with the parameter values."""
    context = TemplateProcessingContext(
        fragment=copy.deepcopy(raw),
        parameter_values=dict(parameters),
        resolution_mode=ResolutionMode.PARTIAL,
    )
    resolved = create_default_pipeline(context).process_template(context)
    conditions = dict(context.resolved_conditions)
    plain = expand_language_extensions(raw)
    resources = resolved["Resources"]
    for logical_id, resource in resources.items():
        condition = resource.get("Condition")
        if isinstance(condition, str) and not conditions[condition]:
            plain_resource = plain["Resources"][logical_id]
            resources[logical_id] = _false_condition_resource(plain_resource, conditions, parameters)
    names = set(resources) | set(parameters)
    resolved["Resources"] = _restore_subs(resources, names)
    resolved["Outputs"] = _restore_subs(resolved.get("Outputs", {}), names)
    return Resolved(resolved, conditions)


def _false_condition_resource(
    plain: dict[str, Any], conditions: dict[str, bool], parameters: dict[str, str]
) -> dict[str, Any]:
    """A resource whose condition is false, as the transform hands it on.

    The port replaces every Ref in it by AWS::NoValue. For Refs to parameters its authors say that
    is what CloudFormation's own transform does, so that is kept here (and the template must
    translate under it: a disabled provider's resources still reach the SAM transform). A Ref to a
    resource is not the transform's to resolve (CloudFormation resolves it, and creates nothing
    from a resource whose condition is false); the port drops it all the same, which is undone.
    """

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            items = [walk(item) for item in node]
            return [item for item in items if item != NO_VALUE]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return walk(when_true if conditions[name] else when_false)
        if set(node) == {"Ref"} and node["Ref"] in parameters:
            return NO_VALUE
        items = {key: walk(value) for key, value in node.items()}
        return {key: value for key, value in items.items() if value != NO_VALUE}

    return walk(copy.deepcopy(plain))


def _restore_subs(node: Any, names: set[str]) -> Any:
    """Fn::Sub put back around strings the port flattened.

    The port substitutes the parameters in an Fn::Sub and then returns a plain string even when a
    `${Resource}` or `${AWS::StackName}` is still in it, which CloudFormation would then take as
    literal text (a log group literally named "/aws/lambda/${CaptchaCatFunction}"). CloudFormation
    keeps the Fn::Sub for what only it can resolve. The template writes no literal "${" of its own
    (no "${!" escapes), so any such string came from an Fn::Sub.
    """
    if isinstance(node, list):
        return [_restore_subs(item, names) for item in node]
    if isinstance(node, dict):
        if "Fn::Sub" in node and len(node) == 1:
            return node
        return {key: _restore_subs(value, names) for key, value in node.items()}
    if isinstance(node, str):
        referenced = set(re.findall(r"\$\{([A-Za-z0-9:._]+)\}", node))
        if any(name.startswith("AWS::") or name.split(".")[0] in names for name in referenced):
            return {"Fn::Sub": node}
    return node


class _NoManagedPolicies:
    """The translator's policy loader; the template names no managed policy by name."""

    def load(self) -> dict[str, str]:
        return {}


def sam_transform(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The SAM transform, with S3 locations where `sam package` puts them."""
    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/function.zip"
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://bucket/layer.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    return transform(template, parameters, _NoManagedPolicies())


@dataclass(frozen=True)
class Processed:
    """One deploy's template after both transforms, with the values CloudFormation then knows."""

    template: dict[str, Any]
    conditions: dict[str, bool]
    parameters: dict[str, str]

    @property
    def resources(self) -> dict[str, Any]:
        return self.template["Resources"]

    def value(self, node: Any) -> Any:
        """What CloudFormation makes of a value, for the intrinsics this template uses on
        parameters and conditions (resources and attributes stay as they are)."""
        return cloudformation_value(node, self.conditions, self.parameters)

    def cfn_lint(self) -> list[str]:
        return cfn_lint(self.template)


@functools.cache
def _processed(parameter_items: tuple[tuple[str, str], ...]) -> str:
    parameters = dict(parameter_items)
    resolved = resolve_language_extensions(raw_template(), parameters)
    output = sam_transform(resolved.template, parameters)
    return json.dumps({"template": output, "conditions": resolved.conditions})


def processed(**overrides: str) -> Processed:
    """template.yaml after the language extensions (with these answers on top of the defaults)
    and the SAM transform: what CloudFormation creates the stack from."""
    parameters = deploy_parameters(**overrides)
    loaded = json.loads(_processed(tuple(sorted(parameters.items()))))
    return Processed(loaded["template"], loaded["conditions"], parameters)


def cloudformation_value(node: Any, conditions: dict[str, bool], parameters: dict[str, str]) -> Any:
    if isinstance(node, list):
        items = [cloudformation_value(item, conditions, parameters) for item in node]
        return [item for item in items if item != NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, arg),) = node.items()
        if key == "Fn::If":
            name, when_true, when_false = arg
            return cloudformation_value(when_true if conditions[name] else when_false, conditions, parameters)
        if key == "Ref" and arg in parameters:
            return parameters[arg]
        if key == "Fn::Split":
            delimiter, text = arg
            text = cloudformation_value(text, conditions, parameters)
            if isinstance(text, str):
                return text.split(delimiter)
        if key == "Fn::Sub" and isinstance(arg, str):
            text = re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: parameters.get(m[1], m[0]), arg)
            return text if "${" not in text else {"Fn::Sub": text}
    items = {key: cloudformation_value(value, conditions, parameters) for key, value in node.items()}
    return {key: value for key, value in items.items() if value != NO_VALUE}


def cfn_lint(template: dict[str, Any]) -> list[str]:
    """cfn-lint's findings on a processed template, with no check switched off."""
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(template), config=ManualArgs(regions=[REGION]))
    return [f"{match.rule.id} {match.message} ({'/'.join(map(str, match.path))})" for match in matches]


# Exactly the calls of Powertools' DynamoDB idempotency layer (GetItem after a conditional put
# that returns no item, PutItem, UpdateItem on success, DeleteItem on a result not kept): the
# notifications' ledger.
IDEMPOTENCY_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
# Exactly the calls of submission_store.py: the claim and its outcome (conditional puts), a twin's
# read, the release of a claim not kept (conditional delete).
SUBMISSION_STORE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")


def translated(monkeypatch: pytest.MonkeyPatch, **parameters: str) -> dict[str, Any]:
    """The SAM transform of the template as `sam build` leaves it: loops expanded, no parameter
    values yet, so every Fn::If is still there for CloudFormation (the other transform order;
    test_deploy_matrix.py covers a deploy's, with the values resolved first)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return sam_transform(expand_language_extensions(raw_template()), parameters)


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
