"""The template's HTTP API served by SAM CLI's local API Gateway, answering as a deployed HTTP API.

SAM CLI has no public Python API for serving a template locally, so local mode uses its internals,
all of them here and nowhere else in tools/. SAM CLI is pinned exactly (aws-sam-cli==1.170.0 in
requirements-dev.txt, SAM_CLI_VERSION below), and tests/tools/test_http_api.py checks each of these
against the installed SAM CLI, so an upgrade that moves one fails the test suite, not `make local`:

- `samcli.lib.providers.sam_stack_provider.SamLocalStackProvider.get_stacks(template_file, *,
  parameter_overrides, language_extensions_enabled)`: the template with its Fn::ForEach expanded
  and its parameters resolved, as stacks whose `template_dict` http_api_cors edits in place.
- `samcli.lib.providers.sam_function_provider.SamFunctionProvider(stacks).get_all()`: each
  function's name, handler, codeuri, layers (their codeuri), environment, timeout and memory.
- `samcli.lib.providers.api_provider.ApiProvider(stacks).api`: the template's routes.
- `samcli.local.apigw.local_apigw_service.LocalApigwService`, subclassed by LocalHttpApi:
  `__init__(api, lambda_runner, static_dir, port, host, ...)`, `create()` and the Flask app it keeps
  in `_app`; the private methods LocalHttpApi overrides, `_construct_error_handling(self)`,
  `_generate_lambda_event(self, flask_request, route, method, endpoint)` and the static
  `_parse_v2_payload_format_lambda_output(lambda_output, binary_types, flask_request)`; and its
  calls of the runner, `lambda_runner.is_debugging()` and `lambda_runner.invoke(function_name,
  event, stdout=, stderr=, tenant_id=)`, which ProcessLambdaRunner answers.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import flask
from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
from samcli.local.apigw.local_apigw_service import LocalApigwService

from captcha_local.lambda_runner import FunctionSpec, ProcessLambdaRunner
from captcha_local.terminal import RequestSink, RequestSummary

# The SAM CLI release whose internals this module was written against (requirements-dev.txt pins it).
SAM_CLI_VERSION = "1.170.0"


def template_stacks(template: Path, parameter_overrides: Mapping[str, str]) -> list[Any]:
    """The template as SAM CLI reads it for `sam local`: each Fn::ForEach expanded (the template
    defines each provider once, in a loop), the parameters given resolved."""
    stacks, _ = SamLocalStackProvider.get_stacks(
        str(template),
        parameter_overrides=dict(parameter_overrides),
        language_extensions_enabled=True,
    )
    return stacks


def function_specs(stacks: list[Any], repo_dir: Path) -> dict[str, FunctionSpec]:
    """Each function as the template declares it, with SAM CLI resolving Globals and parameters."""
    provider = SamFunctionProvider(stacks)
    specs = {}
    for function in provider.get_all():
        variables = (function.environment or {}).get("Variables", {})
        specs[function.name] = FunctionSpec(
            name=function.name,
            handler=function.handler,
            code_dir=repo_dir / function.codeuri,
            layer_dirs=tuple(repo_dir / layer.codeuri for layer in function.layers),
            environment={name: str(value) for name, value in variables.items()},
            timeout_seconds=int(function.timeout or 3),
            memory_mb=int(function.memory or 128),
        )
    return specs


def http_api_app(
    stacks: list[Any],
    runner: ProcessLambdaRunner,
    *,
    host: str,
    port: int,
    on_request: RequestSink | None,
    expose_headers: Sequence[str],
) -> flask.Flask:
    """The WSGI app of the template's HTTP API, each route invoking its function through `runner`."""
    service = LocalHttpApi(
        api=ApiProvider(stacks).api,
        lambda_runner=runner,
        port=port,
        host=host,
        on_request=on_request,
        expose_headers=expose_headers,
    )
    service.create()
    return service._app


class LocalHttpApi(LocalApigwService):
    """SAM CLI's local API Gateway, answering as a deployed HTTP API does where SAM CLI differs.

    - A request id per request: SAM CLI 1.170 evaluates RequestContextV2's default request id once,
      at import, so every local request would share one id (aws/aws-sam-cli#9279): records would
      overwrite each other and no log query could tell requests apart. The id is also sent back
      in the `apigw-requestid` header, as HTTP API does.
    - A request that matches no route answers 404 {"message":"Not Found"} (SAM CLI answers with the
      REST API's 403 "Missing Authentication Token").
    - An empty response the function gave no Content-Type (a 303) gets none, instead of
      SAM CLI's default application/json.
    """

    def __init__(
        self,
        *args: Any,
        on_request: RequestSink | None = None,
        expose_headers: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._on_request = on_request
        self._expose_headers = tuple(expose_headers)  # the template's CORS ExposeHeaders

    def create(self) -> None:
        super().create()
        self._app.before_request(self._begin_request)
        self._app.after_request(self._end_request)

    def _construct_error_handling(self) -> None:
        super()._construct_error_handling()
        self._app.register_error_handler(404, http_api_not_found)
        self._app.register_error_handler(405, http_api_not_found)

    def _begin_request(self) -> None:
        flask.g.request_id = str(uuid.uuid4())
        flask.g.started = time.monotonic()

    def _end_request(self, response: Any) -> Any:
        response.headers["apigw-requestid"] = flask.g.request_id
        # SAM CLI's CORS leaves ExposeHeaders out; a deployed HTTP API sends it with the CORS headers.
        if self._expose_headers and "Access-Control-Allow-Origin" in response.headers:
            response.headers["Access-Control-Expose-Headers"] = ",".join(self._expose_headers)
        if not response.get_data() and not flask.g.get("function_content_type", False):
            response.headers.pop("Content-Type", None)
        if self._on_request is not None:
            self._on_request(
                RequestSummary(
                    method=flask.request.method,
                    path=flask.request.path,
                    status=response.status_code,
                    body=response.get_data(as_text=True),
                    location=response.headers.get("Location"),
                    request_id=flask.g.request_id,
                    duration_ms=round((time.monotonic() - flask.g.started) * 1000),
                )
            )
        return response

    def _generate_lambda_event(
        self, flask_request: Any, route: Any, method: str, endpoint: str
    ) -> dict[str, Any]:
        event = super()._generate_lambda_event(flask_request, route, method, endpoint)
        event["requestContext"]["requestId"] = flask.g.request_id
        return event

    @staticmethod
    def _parse_v2_payload_format_lambda_output(
        lambda_output: str, binary_types: Any, flask_request: Any
    ) -> tuple[int, Any, Any]:
        flask.g.function_content_type = declares_content_type(lambda_output)
        return LocalApigwService._parse_v2_payload_format_lambda_output(
            lambda_output, binary_types, flask_request
        )


def http_api_cors(stacks: list[Any]) -> dict[str, Any]:
    """The HTTP API's CORS object, put where SAM CLI's local API looks for it.

    The template keeps CORS in the OpenAPI body as `x-amazon-apigateway-cors` (camelCase keys),
    which is what a deployed API reads; SAM CLI's local API reads only the SAM property
    CorsConfiguration (PascalCase). SAM CLI has resolved the body's Fn::If with the parameters
    given, so the origins are a plain list here.
    """
    (api,) = [
        resource["Properties"]
        for stack in stacks
        for resource in stack.template_dict["Resources"].values()
        if resource.get("Type") == "AWS::Serverless::HttpApi"
    ]
    body = api["DefinitionBody"]["x-amazon-apigateway-cors"]
    cors = {key[0].upper() + key[1:]: value for key, value in body.items()}
    api["CorsConfiguration"] = cors
    return dict(cors)


def http_api_not_found(*_: Any) -> Any:
    return flask.make_response(flask.jsonify(message="Not Found"), 404)


def declares_content_type(lambda_output: str) -> bool:
    """Whether a payload 2.0 answer names its own Content-Type (any case)."""
    try:
        answer = json.loads(lambda_output)
    except ValueError:
        return False
    headers = answer.get("headers") if isinstance(answer, dict) and "statusCode" in answer else None
    return isinstance(headers, dict) and any(name.lower() == "content-type" for name in headers)
