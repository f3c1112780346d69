"""The provider registry is the one list of providers: each entry is complete and consistent with
the adapter it names, its function folder and its events, so a provider added there is added
everywhere that derives from it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from captcha_verify.config import FriendlyApiVersion
from captcha_verify.providers import PROVIDERS, REGISTRY, Provider, provider
from support import EVENTS, REPO

each_provider = pytest.mark.parametrize("entry", REGISTRY, ids=[entry.name for entry in REGISTRY])
# The scenarios every provider's events/ folder holds (a provider may add its own).
COMMON_EVENTS = {
    "disallowed-origin",
    "fetch-generic-token",
    "fetch-json",
    "form-post-missing-token",
    "form-post",
    "malformed-json",
    "missing-token",
    "multipart",
    "text-plain",
}


def built_provider(app: Path) -> str | None:
    """The name a function folder's app.py passes to build_handler, read without importing it."""
    for node in ast.walk(ast.parse(app.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "build_handler" and node.args:
            argument = node.args[0]
            return argument.value if isinstance(argument, ast.Constant) else None
    return None


def test_names_prefixes_titles_and_widget_classes_are_unique_where_they_must_be() -> None:
    for attribute in ("name", "prefix", "title"):
        values = [getattr(entry, attribute) for entry in REGISTRY]
        assert len(set(values)) == len(values), attribute
    assert tuple(entry.name for entry in REGISTRY) == PROVIDERS


def test_every_verification_function_folder_is_a_registered_provider_and_back() -> None:
    folders = {app.parent.name: built_provider(app) for app in (REPO / "functions").glob("*/app.py")}
    verifiers = {folder: name for folder, name in folders.items() if name is not None}
    assert set(verifiers) == set(PROVIDERS)
    assert all(folder == name for folder, name in verifiers.items())


@each_provider
def test_an_entry_agrees_with_its_adapters(entry: Provider) -> None:
    assert all(kind.name == entry.name for kind in entry.adapters)
    assert entry.token_fields and all(entry.token_fields)
    assert all(url.startswith("https://") for url in entry.default_verify_urls)
    assert entry.widget.script_url.startswith("https://")
    assert entry.prefix.isidentifier() and entry.prefix[0].isupper()


@each_provider
def test_each_provider_has_the_common_events(entry: Provider) -> None:
    scenarios = {path.stem for path in (EVENTS / entry.name).glob("*.json")}
    assert scenarios >= COMMON_EVENTS


def test_the_api_version_picks_the_adapter_only_where_there_are_two() -> None:
    friendly = provider("friendlycaptcha")
    assert friendly.adapter_class(FriendlyApiVersion.V2) is not friendly.adapter_class(FriendlyApiVersion.V1)
    for entry in REGISTRY:
        if entry.v2_adapter is None:
            assert entry.adapter_class(FriendlyApiVersion.V2) is entry.adapter


@pytest.mark.parametrize("name", ["recaptcha", "", "CaptchaCat"])
def test_an_unknown_name_is_refused_with_the_known_ones(name: str) -> None:
    with pytest.raises(ValueError, match="expected one of captchacat"):
        provider(name)
