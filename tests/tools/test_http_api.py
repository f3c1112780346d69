"""The local HTTP API (captcha_local/http_api.py) and the SAM CLI internals it stands on.

The first tests pin those internals: the release, then each class, private method and signature
the module's docstring names, inspected on the installed SAM CLI. An upgrade that renames, moves or
re-signs one fails here, before `make local` breaks for a user. The rest drive LocalHttpApi
through Flask's test client with a recording runner (no sockets, no worker processes), so what
the overrides promise is held on the installed SAM CLI too.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import pytest
import samcli
from captcha_local import http_api
from captcha_local.http_api import (
    LocalHttpApi,
    declares_content_type,
    function_specs,
    http_api_cors,
    template_stacks,
)
from captcha_local.lambda_runner import ProcessLambdaRunner
from captcha_local.resources import FUNCTIONS, TEMPLATE
from captcha_local.terminal import RequestSummary
from hypothesis import given
from hypothesis import strategies as st
from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.provider import Api, Cors
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
from samcli.local.apigw.local_apigw_service import LocalApigwService
from samcli.local.apigw.route import Route

REQUIREMENTS = TEMPLATE.parent / "requirements-dev.txt"
ORIGIN = "https://site.example"

# Each internal http_api.py uses: (owner, name) -> (the parameters it is given by position, in
# order; those it is given by name, anywhere).
SIGNATURES: dict[tuple[type, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    (LocalApigwService, "__init__"): (("self", "api", "lambda_runner", "static_dir"), ("port", "host")),
    (LocalApigwService, "create"): (("self",), ()),
    (LocalApigwService, "_construct_error_handling"): (("self",), ()),
    (LocalApigwService, "_generate_lambda_event"): (
        ("self", "flask_request", "route", "method", "endpoint"),
        (),
    ),
    (LocalApigwService, "_parse_v2_payload_format_lambda_output"): (
        ("lambda_output", "binary_types", "flask_request"),
        (),
    ),
    (SamLocalStackProvider, "get_stacks"): (
        ("template_file",),
        ("parameter_overrides", "language_extensions_enabled"),
    ),
    (SamFunctionProvider, "__init__"): (("self", "stacks"), ()),
    (SamFunctionProvider, "get_all"): (("self",), ()),
    (ApiProvider, "__init__"): (("self", "stacks"), ()),
}
OVERRIDDEN = ("_construct_error_handling", "_generate_lambda_event", "_parse_v2_payload_format_lambda_output")


def test_sam_cli_is_the_release_the_local_api_was_written_against() -> None:
    pinned = re.search(r"^aws-sam-cli==(\S+)$", REQUIREMENTS.read_text(encoding="utf-8"), re.MULTILINE)
    assert pinned is not None, "requirements-dev.txt pins aws-sam-cli exactly"
    assert samcli.__version__ == pinned[1] == http_api.SAM_CLI_VERSION, (
        "SAM CLI changed: check every internal http_api.py's docstring names, then SAM_CLI_VERSION"
    )
    assert f"aws-sam-cli=={http_api.SAM_CLI_VERSION}" in (http_api.__doc__ or "")


@pytest.mark.parametrize(
    ("owner", "name"), list(SIGNATURES), ids=lambda part: getattr(part, "__name__", part)
)
def test_each_internal_keeps_the_parameters_the_local_api_uses(owner: type, name: str) -> None:
    parameters = tuple(inspect.signature(getattr(owner, name)).parameters)
    positional, keywords = SIGNATURES[owner, name]
    assert parameters[: len(positional)] == positional
    assert set(keywords) <= set(parameters)
    doc = http_api.__doc__ or ""
    assert owner.__name__ in doc and name in doc, "the module's docstring names each internal it uses"


@pytest.mark.parametrize("name", OVERRIDDEN)
def test_each_override_replaces_a_method_of_the_same_kind_and_parameters(name: str) -> None:
    base = inspect.getattr_static(LocalApigwService, name)
    override = inspect.getattr_static(LocalHttpApi, name)
    assert override is not base, "LocalHttpApi overrides it"
    assert type(override) is type(base), "a static method stays static, an instance method stays one"
    assert inspect.signature(getattr(LocalHttpApi, name)).parameters.keys() == (
        inspect.signature(getattr(LocalApigwService, name)).parameters.keys()
    )


class RecordingRunner:
    """Stands in for ProcessLambdaRunner: answers every invocation with `answer`, keeps the calls."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def is_debugging(self) -> bool:
        return False

    def invoke(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))
        kwargs["stdout"].write_str(json.dumps(self.answer))


def client_of(answer: dict[str, Any], **options: Any) -> tuple[Any, RecordingRunner]:
    """A test client of the local HTTP API with one route, POST /verify/byebot, answering `answer`."""
    api = Api(
        routes=[
            Route(
                function_name="ByeBotFunction",
                path="/verify/byebot",
                methods=["POST"],
                event_type=Route.HTTP,
                payload_format_version="2.0",
            )
        ]
    )
    api.cors = Cors(allow_origin=ORIGIN, allow_methods="POST,OPTIONS")
    runner = RecordingRunner(answer)
    service = LocalHttpApi(api=api, lambda_runner=runner, port=0, host="127.0.0.1", **options)
    service.create()
    return service._app.test_client(), runner


JSON_ANSWER = {
    "statusCode": 200,
    "headers": {"Content-Type": "application/json"},
    "body": '{"success": true}',
}


def test_the_service_calls_the_runner_as_process_lambda_runner_accepts() -> None:
    client, runner = client_of(JSON_ANSWER)
    client.post("/verify/byebot", data="token=t")
    [(args, kwargs)] = runner.calls
    inspect.signature(ProcessLambdaRunner.invoke).bind(None, *args, **kwargs)
    assert args[0] == "ByeBotFunction"


def test_each_request_gets_its_own_id_in_the_event_and_the_answer() -> None:
    client, runner = client_of(JSON_ANSWER)
    answers = [client.post("/verify/byebot", data="token=t") for _ in range(3)]
    ids = [json.loads(args[1])["requestContext"]["requestId"] for args, _ in runner.calls]
    assert ids == [answer.headers["apigw-requestid"] for answer in answers]
    assert len(set(ids)) == 3


def test_a_path_with_no_route_answers_as_http_api_does() -> None:
    client, runner = client_of(JSON_ANSWER)
    answer = client.post("/verify/nobody")
    assert (answer.status_code, answer.get_json()) == (404, {"message": "Not Found"})
    assert runner.calls == []


def test_an_empty_redirect_gets_no_content_type_and_a_function_s_own_type_is_kept() -> None:
    redirect = {"statusCode": 303, "headers": {"Location": f"{ORIGIN}/thanks.html"}, "body": ""}
    client, _ = client_of(redirect)
    answer = client.post("/verify/byebot", data="token=t")
    assert answer.status_code == 303 and "Content-Type" not in answer.headers
    client, _ = client_of(JSON_ANSWER)
    assert client.post("/verify/byebot", data="token=t").headers["Content-Type"] == "application/json"


def test_cors_answers_expose_the_template_s_headers() -> None:
    client, _ = client_of(JSON_ANSWER, expose_headers=["apigw-requestid"])
    answer = client.post("/verify/byebot", data="token=t", headers={"Origin": ORIGIN})
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert answer.headers["Access-Control-Expose-Headers"] == "apigw-requestid"


def test_every_request_is_summarised_once() -> None:
    summaries: list[RequestSummary] = []
    client, _ = client_of(JSON_ANSWER, on_request=summaries.append)
    answer = client.post("/verify/byebot", data="token=t")
    [summary] = summaries
    assert (summary.method, summary.path, summary.status) == ("POST", "/verify/byebot", 200)
    assert summary.body == '{"success": true}'
    assert summary.request_id == answer.headers["apigw-requestid"]


@pytest.mark.parametrize(
    ("output", "declared"),
    [
        ('{"statusCode": 200, "headers": {"content-type": "text/html"}}', True),
        ('{"statusCode": 200, "headers": {"Content-Type": "text/html"}}', True),
        ('{"statusCode": 303, "headers": {"Location": "/thanks"}}', False),
        ('{"headers": {"Content-Type": "text/html"}}', False),  # not a payload 2.0 answer: a body
        ('{"statusCode": 200, "headers": ["Content-Type"]}', False),
        ("not json", False),
        ("[1, 2]", False),
    ],
)
def test_a_declared_content_type_is_read_from_the_function_s_answer(output: str, declared: bool) -> None:
    assert declares_content_type(output) is declared


@given(st.text(max_size=200))
def test_reading_the_content_type_never_raises(output: str) -> None:
    assert declares_content_type(output) in {True, False}


def test_the_template_read_by_sam_cli_gives_each_function_and_the_api_s_cors() -> None:
    stacks = template_stacks(TEMPLATE, {"AllowedOrigins": ORIGIN})
    specs = function_specs(stacks, TEMPLATE.parent)
    assert set(FUNCTIONS.values()) <= set(specs)
    for logical in FUNCTIONS.values():
        spec = specs[logical]
        assert spec.code_dir.is_dir() and all(layer.is_dir() for layer in spec.layer_dirs)
        assert spec.environment["ALLOWED_ORIGINS"] == ORIGIN
        assert spec.timeout_seconds > 0 and spec.memory_mb >= 128
    cors = http_api_cors(stacks)
    assert cors["AllowOrigins"] == [ORIGIN]
    assert cors["AllowMethods"] == ["POST", "OPTIONS"]
    assert "apigw-requestid" in cors["ExposeHeaders"]
