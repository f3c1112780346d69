"""The sandbox app: one verify route per provider protocol (each in its own module of this
package), token issuing for the stand-in widgets, the stand-in widget script, and fault injection
and the call log for tests."""

from __future__ import annotations

import argparse
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import flask
from captcha_verify.config import FriendlyApiVersion
from captcha_verify.providers import REGISTRY
from captcha_verify.providers import provider as registered
from werkzeug.serving import make_server

from captcha_local.sandbox.common import (
    DEFAULT_SOLVE_TIME_MS,
    Credentials,
    Fault,
    Handler,
    IssuedToken,
    Reply,
    SandboxProvider,
    SandboxState,
    json_object,
    json_or_form,
    token_digest,
)
from captcha_local.sandbox.friendly import FRIENDLY
from captcha_local.sandbox.rayengine import BYEBOT, CAPTCHACAT
from captcha_local.sandbox.swetrix import SWETRIX
from captcha_local.sandbox.turnstile import TURNSTILE
from captcha_local.sandbox.ycaptcha import YCAPTCHA

_log = logging.getLogger(__name__)

_STAND_INS = {
    stand_in.name: stand_in for stand_in in (CAPTCHACAT, BYEBOT, SWETRIX, YCAPTCHA, FRIENDLY, TURNSTILE)
}
_unserved = [entry.name for entry in REGISTRY if entry.name not in _STAND_INS]
if _unserved:
    raise ImportError(f"no sandbox stand-in for the registered provider(s): {', '.join(_unserved)}")

# One stand-in per registered provider, in the registry's order.
SANDBOXES: Mapping[str, SandboxProvider] = {entry.name: _STAND_INS[entry.name] for entry in REGISTRY}
PROVIDERS: tuple[str, ...] = tuple(SANDBOXES)
SANDBOX_CREDENTIALS: dict[str, Credentials] = {
    name: stand_in.credentials for name, stand_in in SANDBOXES.items()
}
VERIFY_ROUTES: tuple[tuple[str, str, Handler], ...] = tuple(
    (name, path, handler) for name, stand_in in SANDBOXES.items() for path, handler in stand_in.routes
)


# --------------------------------------------------------------------------------------
# Token issuing (what a provider's widget would obtain after a solved challenge)
# --------------------------------------------------------------------------------------


class FieldError(ValueError):
    """A request field the sandbox's own endpoints cannot accept; answered as 400."""


def int_field(body: Mapping[str, Any], name: str, default: int) -> int:
    value = body.get(name)
    if value is None or value == "":
        return default
    # JSON booleans are ints in Python; they are a caller mistake here.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise FieldError(f"{name} must be an integer")
    try:
        number = int(value)
    except ValueError:
        raise FieldError(f"{name} must be an integer") from None
    if number < 0:
        raise FieldError(f"{name} must not be negative")
    return number


def float_field(body: Mapping[str, Any], name: str) -> float:
    value = body.get(name)
    if value is None or value == "":
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FieldError(f"{name} must be a number")
    try:
        number = float(value)
    except ValueError:
        raise FieldError(f"{name} must be a number") from None
    if not math.isfinite(number) or number < 0:
        raise FieldError(f"{name} must be a non-negative number")
    return number


def bool_field(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"", "0", "false", "off", "no"}:
        return False
    if isinstance(value, str) and value.lower() in {"1", "true", "on", "yes"}:
        return True
    raise FieldError(f"{name} must be a boolean")


def choice_field(body: Mapping[str, Any], name: str, choices: Sequence[str]) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if value not in choices:
        allowed = ", ".join(choices) if choices else "nothing for this provider"
        raise FieldError(f"{name} must be one of: {allowed}")
    return str(value)


def response_field(provider: str, version: str | None) -> str:
    """The hidden form field the provider's widget fills by default (of the API generation asked for)."""
    entry = registered(provider)
    kind = entry.adapter_class(FriendlyApiVersion(version)) if version else entry.adapter
    return kind.token_fields[0]


def parse_issue_request(
    stand_in: SandboxProvider,
    body: Mapping[str, Any],
    credentials: Credentials,
    origin_header: str | None,
    now: float,
) -> IssuedToken:
    if body.get("sitekey") != credentials.sitekey:
        raise FieldError(f"sitekey is not the {stand_in.name} sandbox site key")
    shape = choice_field(body, "shape", stand_in.shapes)
    version = choice_field(body, "version", stand_in.versions) or next(iter(stand_in.versions), None)
    origin = body.get("origin") or origin_header
    if origin is not None and not isinstance(origin, str):
        raise FieldError("origin must be a string")
    return IssuedToken(
        provider=stand_in.name,
        sitekey=credentials.sitekey,
        issued_at=now - float_field(body, "age_seconds"),
        solve_time_ms=int_field(body, "solve_time_ms", DEFAULT_SOLVE_TIME_MS),
        interactive=bool_field(body, "interactive"),
        legacy=shape == "legacy",
        version=version,
        origin=origin,
        challenge=secrets.token_hex(32),
    )


def issue_token(
    state: SandboxState, stand_in: SandboxProvider, body: Mapping[str, Any], origin: str | None, now: float
) -> flask.Response:
    """A fresh token (or the provider's fixed answer to a test site key), with the field it goes in."""
    fixed = stand_in.fixed_issue(body) if stand_in.fixed_issue is not None else None
    if fixed is not None:
        status, payload = fixed
        if status != 200:
            return issue_error(status, payload["error"])
        return with_cors(flask.jsonify(**payload, field=response_field(stand_in.name, None)))
    with state.lock:
        try:
            issued = parse_issue_request(stand_in, body, state.credentials[stand_in.name], origin, now)
        except FieldError as error:
            return issue_error(400, str(error))
        token = stand_in.new_token(issued.version)
        state.store(token, issued, now)
    return with_cors(flask.jsonify(token=token, field=response_field(stand_in.name, issued.version)))


def issue_error(status: int, message: str) -> flask.Response:
    response = flask.jsonify(error=message)
    response.status_code = status
    return with_cors(response)


def with_cors(response: flask.Response) -> flask.Response:
    # The demo page runs on another localhost port and calls /issue with fetch.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Max-Age"] = "600"
    return response


# --------------------------------------------------------------------------------------
# Fault injection (tests only)
# --------------------------------------------------------------------------------------


def parse_fault(body: Mapping[str, Any]) -> tuple[str, Fault]:
    provider = body.get("provider")
    if provider not in PROVIDERS:
        raise FieldError(f"provider must be one of: {', '.join(PROVIDERS)}")
    status = body.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise FieldError("status must be an HTTP status code")
    raw = body.get("body", "")
    headers = body.get("headers") or {}
    if not isinstance(raw, str):
        raise FieldError("body must be a string (the raw response body)")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise FieldError("headers must be an object of strings")
    # Every provider speaks JSON, so a fault body is labelled JSON unless the test says otherwise.
    if raw and not any(name.lower() == "content-type" for name in headers):
        headers = {"Content-Type": "application/json", **headers}
    count = int_field(body, "count", 1)
    if count < 1:
        raise FieldError("count must be at least 1")
    return provider, Fault(Reply(status, raw, headers), int_field(body, "delay_ms", 0), count)


# --------------------------------------------------------------------------------------
# Stand-in widget script
# --------------------------------------------------------------------------------------

_WIDGET_TEMPLATE = Path(__file__).with_name("widget.js")
_WIDGET_CONFIG_PLACEHOLDER = "__SANDBOX_CONFIG__"


def widget_config(provider: str, credentials: Mapping[str, Credentials]) -> dict[str, Any]:
    widget = registered(provider).widget
    return {
        "provider": provider,
        "selector": "." + widget.css_class,
        "sitekeyAttribute": widget.sitekey_attribute,
        "versionAttribute": widget.version_attribute,
        # Captcha Cat and ByeBot share their markup; each script leaves the other brand's divs alone.
        "skipSitekeys": [
            credentials[other.name].sitekey
            for other in REGISTRY
            if other.name != provider and other.widget.css_class == widget.css_class
        ],
    }


def render_widget(template: str, provider: str, credentials: Mapping[str, Credentials]) -> str:
    return template.replace(_WIDGET_CONFIG_PLACEHOLDER, json.dumps(widget_config(provider, credentials)))


# --------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------


def create_app(
    credentials: dict[str, Credentials] = SANDBOX_CREDENTIALS, clock: Callable[[], float] = time.time
) -> flask.Flask:
    missing = [provider for provider in PROVIDERS if provider not in credentials]
    if missing:
        raise ValueError(f"credentials missing for: {', '.join(missing)}")
    app = flask.Flask(__name__)
    state = SandboxState(credentials)
    for provider, path, handler in VERIFY_ROUTES:
        app.add_url_rule(
            path,
            endpoint=f"verify:{path}",
            view_func=verify_view(state, clock, provider, handler),
            methods=["POST"],
        )
    app.add_url_rule(
        "/<provider>/issue", endpoint="issue", view_func=issue_view(state, clock), methods=["POST", "OPTIONS"]
    )
    app.add_url_rule("/<provider>/widget.js", endpoint="widget", view_func=widget_view(credentials))
    add_sandbox_routes(app, state)
    return app


def verify_view(
    state: SandboxState, clock: Callable[[], float], provider: str, handler: Handler
) -> Callable[[], flask.Response]:
    """The provider's answer (or an injected fault's), logged in the call log."""

    def view() -> flask.Response:
        request = flask.request
        digest = token_digest(request)
        with state.lock:
            now = clock()
            fault = state.take_fault(provider)
            reply = fault.reply if fault is not None else handler(state, provider, request, now)
            state.calls.append(
                {
                    "provider": provider,
                    "path": request.path,
                    "status": reply.status,
                    "token_sha256": digest,
                    "fault": fault is not None,
                    "at": now,
                }
            )
        if fault is not None and fault.delay_ms:
            time.sleep(fault.delay_ms / 1000)
        return reply.to_response()

    return view


def issue_view(state: SandboxState, clock: Callable[[], float]) -> Callable[[str], flask.Response]:
    def issue(provider: str) -> flask.Response:
        if flask.request.method == "OPTIONS":
            return with_cors(flask.Response(status=204))
        if provider not in SANDBOXES:
            return issue_error(404, f"unknown provider {provider!r}")
        body = json_or_form(flask.request)
        if body is None:
            return issue_error(400, "body must be a JSON object or form data")
        return issue_token(state, SANDBOXES[provider], body, flask.request.headers.get("Origin"), clock())

    return issue


def widget_view(credentials: Mapping[str, Credentials]) -> Callable[[str], flask.Response]:
    template = _WIDGET_TEMPLATE.read_text(encoding="utf-8")
    widgets = {provider: render_widget(template, provider, credentials) for provider in PROVIDERS}

    def widget(provider: str) -> flask.Response:
        if provider not in widgets:
            flask.abort(404)
        response = flask.Response(widgets[provider], mimetype="text/javascript")
        response.headers["Cache-Control"] = "no-store"
        return response

    return widget


def add_sandbox_routes(app: flask.Flask, state: SandboxState) -> None:
    """The tests' own endpoints: inject faults, read and clear the call log."""

    @app.post("/_sandbox/faults")
    def add_fault() -> tuple[flask.Response, int]:
        try:
            provider, fault = parse_fault(json_object(flask.request) or {})
        except FieldError as error:
            return flask.jsonify(error=str(error)), 400
        with state.lock:
            state.faults[provider].append(fault)
        return flask.jsonify(provider=provider, count=fault.remaining), 201

    @app.delete("/_sandbox/faults")
    def clear_faults() -> tuple[str, int]:
        with state.lock:
            state.faults.clear()
        return "", 204

    @app.get("/_sandbox/calls")
    def list_calls() -> flask.Response:
        with state.lock:
            return flask.jsonify(list(state.calls))

    @app.delete("/_sandbox/calls")
    def clear_calls() -> tuple[str, int]:
        with state.lock:
            state.calls.clear()
        return "", 204


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Local sandbox of the CAPTCHA providers' verify APIs.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=3001, help="0 picks a free port (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = make_server(args.host, args.port, create_app(), threaded=True)
    _log.info("CAPTCHA provider sandbox listening on http://%s:%d", args.host, server.server_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
