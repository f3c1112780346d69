"""`make local`: the whole system on one machine, offline, with no Docker and no AWS account.

Parts, each on loopback: moto in server mode (the table and secrets, made from the template's own
definitions), the provider sandbox, the template's routes served by SAM CLI's own local API
Gateway code (http_api.py) with one worker process per function, and a demo static site. Every part stops on
Ctrl-C. `--real` verifies against the real providers with the user's own secrets instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import requests
from captcha_verify.notifications.config import WebhookFormat, format_for
from captcha_verify.providers import REGISTRY
from captcha_verify.responses import EXPLANATIONS
from moto.server import ThreadedMotoServer
from werkzeug.serving import BaseWSGIServer, make_server

from captcha_local import sandbox
from captcha_local.http_api import function_specs, http_api_app, http_api_cors, template_stacks
from captcha_local.inbox import NotificationInbox
from captcha_local.lambda_runner import FunctionSpec, LogSink, ProcessLambdaRunner
from captcha_local.resources import (
    FUNCTIONS,
    TEMPLATE,
    create_challenge_table,
    create_generated_secret,
    create_rate_limit_table,
    create_secret,
    create_submission_table,
    create_table,
    create_webhook_secret,
    load_template,
)
from captcha_local.stream_relay import StreamRelay
from captcha_local.terminal import RequestSink, Terminal

SITE_DIR = Path(__file__).with_name("site")
# The local webhook sink reads no more than a Slack, Discord or JSON body can be.
MAX_WEBHOOK_BYTES = 1024 * 1024
RELAY_FUNCTION = "SubmissionRelayFunction"
REGION = "us-east-1"
# The site owner of the local stack: NotificationEmail, and the sender identity verified in moto.
LOCAL_OWNER = "owner@example.com"
NOTIFICATIONS_FUNCTION = "NotificationsFunction"


@dataclass(frozen=True)
class Ports:
    api: int = 3000
    sandbox: int = 3001
    site: int = 3002
    aws: int = 3003

    @classmethod
    def free(cls) -> Ports:
        """Four ports nobody listens on now (tests run beside each other and beside `make local`)."""
        sockets = [socket.socket() for _ in range(4)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        ports = [sock.getsockname()[1] for sock in sockets]
        for sock in sockets:
            sock.close()
        return cls(*ports)


@dataclass
class LocalDeployment:
    """The template deployed on this machine: every part of `make local`, started and stopped together."""

    ports: Ports = field(default_factory=Ports)
    real: Mapping[str, sandbox.Credentials] | None = None  # the user's own credentials: no sandbox
    friendly_api_version: str = "v1"
    failure_policy: str = "closed"
    client_rate_limit: int | None = None  # ClientRateLimitPerMinute; None keeps the template's default
    webhook_url: str | None = None  # WebhookUrl; None: the demo site's own sink, shown in the inbox
    webhook_format: str = ""  # WebhookFormat; "" chooses from the URL as deployed
    autoresponse_text: str = ""  # AutoresponseText; "" = off, as deployed by default
    log: LogSink = field(default_factory=lambda: Terminal(raw=True).function_line)
    on_request: RequestSink | None = None  # one summary per API request
    announce: Callable[[str], None] = field(default_factory=lambda: Terminal().notice)  # the inbox's lines
    table_name: str = field(default="", init=False)  # as the functions' environment names it
    rate_limit_table_name: str = field(default="", init=False)
    inbox: NotificationInbox | None = field(default=None, init=False)
    relay: StreamRelay | None = field(default=None, init=False)
    _stops: list[Callable[[], object]] = field(default_factory=list, init=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, service: str) -> str:
        return f"http://{self.host}:{getattr(self.ports, service)}"

    @property
    def credentials(self) -> Mapping[str, sandbox.Credentials]:
        return self.real if self.real is not None else sandbox.SANDBOX_CREDENTIALS

    def parameter_overrides(self) -> dict[str, str]:
        """What a user would pass to `sam deploy --parameter-overrides` for this setup."""
        site = self.url("site")
        overrides = {
            "AllowedOrigins": site,
            "SuccessRedirectUrl": f"{site}/thanks.html",
            "FailureRedirectUrl": f"{site}/error.html",
            "FriendlyApiVersion": self.friendly_api_version,
            "FailurePolicy": self.failure_policy,
        }
        if self.client_rate_limit is not None:
            overrides["ClientRateLimitPerMinute"] = str(self.client_rate_limit)
        overrides["NotificationEmail"] = LOCAL_OWNER
        overrides["WebhookUrl"] = self.webhook_url or f"{site}/webhook"
        overrides["WebhookFormat"] = self.webhook_format
        if self.webhook_url:
            # The function posts to the inbox's sink, which passes it on to this URL: so it uses
            # the format a deployed stack would choose from this URL's host.
            configured = WebhookFormat(self.webhook_format) if self.webhook_format else None
            overrides["WebhookFormat"] = format_for(self.webhook_url, configured).value
        overrides["AutoresponseText"] = self.autoresponse_text
        for provider in REGISTRY:
            overrides[f"{provider.prefix}ExpectedSitekey"] = self.credentials[provider.name].sitekey
            if self.real is None:
                overrides[f"{provider.prefix}VerifyUrl"] = self.url("sandbox") + sandbox_verify_path(
                    provider.name, self.friendly_api_version
                )
        return overrides

    def start(self) -> None:
        # Each request is logged once, as the Lambda's own lines; the servers' access logs add only
        # noise, and so does SAM CLI's note on every redirect that, like a deployed HTTP API's, has
        # no Content-Type.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        logging.getLogger("samcli.local.apigw.local_apigw_service").setLevel(logging.WARNING)
        try:
            self._start_aws()
            stacks = template_stacks(TEMPLATE, self.parameter_overrides())
            cors = http_api_cors(stacks)  # before anything reads (and caches) the stack's resources
            specs = function_specs(stacks, TEMPLATE.parent)
            self._create_resources(specs)
            specs = self._start_submissions(specs)
            self._create_rate_limit(specs)
            runner = ProcessLambdaRunner(specs, self.aws_environment(), self.log)
            self._stops.append(runner.stop)
            self._start_notifications(runner)
            self._start_relay(runner, specs)
            if self.real is None:
                self._serve("sandbox", sandbox.create_app())
            self._start_site()
            self._start_api(stacks, runner, cors)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        while self._stops:
            self._stops.pop()()

    def _start_aws(self) -> None:
        server = ThreadedMotoServer(ip_address=self.host, port=self.ports.aws, verbose=False)
        server.start()
        self._stops.append(server.stop)
        # moto's backends are process-wide: without a reset, the next stack in this process
        # (tests start several) would find this one's table and secrets.
        self._stops.append(lambda: requests.post(f"{self.url('aws')}/moto-api/reset", timeout=5))

    def aws_client(self, service: str) -> Any:
        """A client of the local moto server; this process's own AWS settings stay untouched."""
        environment = self.aws_environment()
        session = boto3.session.Session(
            aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )
        make_client: Callable[..., Any] = session.client
        return make_client(service, endpoint_url=environment["AWS_ENDPOINT_URL"])

    def aws_environment(self) -> dict[str, str]:
        """How every part reaches AWS here: moto's endpoint and dummy credentials, never a real account."""
        return {
            "AWS_ENDPOINT_URL": self.url("aws"),
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }

    def _create_resources(self, specs: Mapping[str, FunctionSpec]) -> None:
        """The table and secrets under the names the functions' own environments resolve to."""
        template = load_template()
        self.table_name = next(iter(specs.values())).environment["CHALLENGE_TABLE_NAME"]
        create_challenge_table(self.aws_client("dynamodb"), self.table_name, template)
        client = self.aws_client("secretsmanager")
        for provider, logical_id in FUNCTIONS.items():
            if logical_id in specs:
                create_secret(
                    client,
                    specs[logical_id].environment["PROVIDER_SECRET_ID"],
                    self.credentials[provider].secret,
                )

    def _start_submissions(self, specs: Mapping[str, FunctionSpec]) -> dict[str, FunctionSpec]:
        """The submission store, the bus, and each notification channel's rule and queue as the
        template defines them, with the ledger table and the webhook secret; returns the specs
        with the notifications function's queue variables as the URLs CloudFormation would give."""
        environment = next(iter(specs.values())).environment
        template = load_template()
        dynamodb = self.aws_client("dynamodb")
        create_submission_table(dynamodb, environment["IDEMPOTENCY_TABLE_NAME"], template)
        self.inbox = NotificationInbox(
            template["Resources"], environment["SUBMISSION_BUS_NAME"], self.aws_client, REGION, self.announce
        )
        notify = specs.get(NOTIFICATIONS_FUNCTION)
        if notify is None:
            self.inbox.create({})
            return dict(specs)
        resolved = self.inbox.create(notify.environment)
        create_table(
            dynamodb,
            notify.environment["NOTIFICATION_LEDGER_TABLE_NAME"],
            template,
            "NotificationLedgerTable",
        )
        self.inbox.verify_sender(notify.environment["SENDER_EMAIL"] or LOCAL_OWNER)
        if notify.environment.get("WEBHOOK_SECRET_ID"):
            create_webhook_secret(
                self.aws_client("secretsmanager"),
                notify.environment["WEBHOOK_SECRET_ID"],
                template,
                f"{self.url('site')}/webhook",
            )
            self.inbox.forward_to = self.webhook_url
        return {
            **specs,
            NOTIFICATIONS_FUNCTION: replace(notify, environment={**notify.environment, **resolved}),
        }

    def _start_notifications(self, runner: ProcessLambdaRunner) -> None:
        """The channels' pollers, invoking the notifications function as its event sources would."""
        if self.inbox is None or NOTIFICATIONS_FUNCTION not in runner.workers:
            return
        worker = runner.workers[NOTIFICATIONS_FUNCTION]
        batch_size = int(load_template()["Resources"]["EmailEventSource"]["Properties"]["BatchSize"])
        self._stops.append(self.inbox.start(worker.invoke, batch_size))

    def _create_rate_limit(self, specs: Mapping[str, FunctionSpec]) -> None:
        """The per-client counter table and its HMAC key, so the limit is enforced as deployed."""
        environment = next(iter(specs.values())).environment
        template = load_template()
        self.rate_limit_table_name = environment["RATE_LIMIT_TABLE_NAME"]
        create_rate_limit_table(self.aws_client("dynamodb"), self.rate_limit_table_name, template)
        create_generated_secret(
            self.aws_client("secretsmanager"),
            environment["RATE_LIMIT_KEY_SECRET_ID"],
            template,
            "RateLimitKeySecret",
        )

    def _serve(self, name: str, app: Any) -> BaseWSGIServer:
        server = make_server(self.host, getattr(self.ports, name), app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
        thread.start()
        self._stops.append(server.shutdown)
        return server

    def _start_site(self) -> None:
        config = {
            "apiUrl": self.url("api"),
            "providers": demo_providers(),
            "widgetScripts": widget_scripts(self.url("sandbox"), self.real is not None),
            "sitekeys": {p: c.sitekey for p, c in self.credentials.items()},
            "friendlyApiVersion": self.friendly_api_version,
            "sandbox": self.real is None,
            "explanations": EXPLANATIONS,
        }
        handler = partial(
            InboxSiteHandler,
            config_js=f"window.CAPTCHA_DEMO = {json.dumps(config)};\n",
            inbox=self.inbox,
            directory=str(SITE_DIR),
        )
        server = ThreadingHTTPServer((self.host, self.ports.site), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="site", daemon=True).start()
        self._stops.append(server.server_close)
        self._stops.append(server.shutdown)

    def _start_api(self, stacks: list[Any], runner: ProcessLambdaRunner, cors: Mapping[str, Any]) -> None:
        app = http_api_app(
            stacks,
            runner,
            host=self.host,
            port=self.ports.api,
            on_request=self.on_request,
            expose_headers=cors.get("ExposeHeaders", ()),
        )
        self._serve("api", app)

    def _start_relay(self, runner: ProcessLambdaRunner, specs: Mapping[str, FunctionSpec]) -> None:
        """The relay function, fed from moto's stream of the submission store as Lambda's event
        source mapping would feed it (stream_relay.py), so the inbox shows each submission."""
        worker = runner.workers[RELAY_FUNCTION]

        def invoke(event: dict[str, Any]) -> Any:
            result = worker.invoke(json.dumps(event))
            if "ok" not in result:
                raise RuntimeError(result.get("error", "relay failed"))
            return result["ok"]

        self.relay = StreamRelay.from_template(
            load_template(),
            self.aws_client("dynamodb"),
            self.aws_client("dynamodbstreams"),
            specs[RELAY_FUNCTION].environment["IDEMPOTENCY_TABLE_NAME"],
            invoke,
        )
        self._stops.append(self.relay.start())


def sandbox_verify_path(provider: str, friendly_api_version: str) -> str:
    """The sandbox route standing in for the provider's verify URL (Friendly has one per API version)."""
    paths = [path for name, path, _ in sandbox.VERIFY_ROUTES if name == provider]
    if len(paths) == 1:
        return paths[0]
    return next(path for path in paths if f"/api/{friendly_api_version}/" in path)


def demo_providers() -> list[dict[str, str | None]]:
    """The demo page's forms, one per provider, and the widget element each one holds."""
    return [
        {
            "id": provider.name,
            "title": provider.title,
            "className": provider.widget.css_class,
            "sitekeyAttribute": provider.widget.sitekey_attribute,
            "versionAttribute": provider.widget.version_attribute,
        }
        for provider in REGISTRY
    ]


def widget_scripts(sandbox_url: str, real: bool) -> dict[str, str]:
    if real:
        return {provider.name: provider.widget.script_url for provider in REGISTRY}
    return {provider: f"{sandbox_url}/{provider}/widget.js" for provider in FUNCTIONS}


class SiteHandler(SimpleHTTPRequestHandler):
    """The demo site's static files, plus /config.js telling the page where the API and widgets are."""

    def __init__(self, *args: Any, config_js: str, **kwargs: Any) -> None:
        self.config_js = config_js.encode()
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/config.js":
            super().do_GET()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/javascript; charset=utf-8")
        self.send_header("Content-Length", str(len(self.config_js)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(self.config_js)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class InboxSiteHandler(SiteHandler):
    """The site, plus /inbox.json (what reached a person, for the demo page's inbox) and
    POST /webhook, the local stand-in for a Slack, Discord or JSON webhook receiver."""

    def __init__(self, *args: Any, inbox: NotificationInbox | None, **kwargs: Any) -> None:
        self.inbox = inbox
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/inbox.json":
            super().do_GET()
            return
        body = json.dumps(self.inbox.snapshot() if self.inbox else []).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        path, _, query = self.path.partition("?")
        if path != "/webhook" or self.inbox is None or length > MAX_WEBHOOK_BYTES:
            self.send_error(404 if length <= MAX_WEBHOOK_BYTES else 413)
            return
        answer = self.inbox.receive_webhook(dict(self.headers.items()), self.rfile.read(length), query)
        self.send_response(answer.status)
        if answer.retry_after:
            self.send_header("Retry-After", answer.retry_after)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)


def real_credentials(path: Path) -> dict[str, sandbox.Credentials]:
    """{"byebot": {"secret": "...", "sitekey": "..."}, ...} for every provider."""
    document = json.loads(path.read_text())
    missing = [p for p in FUNCTIONS if not isinstance(document.get(p), dict) or not document[p].get("secret")]
    if missing:
        raise SystemExit(f"{path}: no secret for {', '.join(missing)}")
    return {p: sandbox.Credentials(document[p]["secret"], document[p].get("sitekey", "")) for p in FUNCTIONS}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=Ports.api, help="API port (default: %(default)s)")
    parser.add_argument("--sandbox-port", type=int, default=Ports.sandbox)
    parser.add_argument("--site-port", type=int, default=Ports.site)
    parser.add_argument("--aws-port", type=int, default=Ports.aws, help="moto server port")
    parser.add_argument("--friendly-api-version", choices=("v1", "v2"), default="v1")
    parser.add_argument("--failure-policy", choices=("closed", "open"), default="closed")
    parser.add_argument(
        "--rate-limit",
        type=int,
        metavar="N",
        help="requests one client may make per minute (ClientRateLimitPerMinute; 0 = off; "
        "default: the template's)",
    )
    parser.add_argument(
        "--webhook-url",
        metavar="URL",
        help="post each submission to this webhook (WebhookUrl), as the deployed stack would "
        "(default: the demo site's own sink, shown in the inbox)",
    )
    parser.add_argument(
        "--webhook-format",
        choices=("slack", "discord", "json"),
        default="",
        help="WebhookFormat (default: chosen from the URL's host, as deployed)",
    )
    parser.add_argument(
        "--autoresponse",
        metavar="TEXT",
        default="",
        help="AutoresponseText: email the visitor's valid email field this fixed confirmation",
    )
    parser.add_argument(
        "--raw-logs",
        action="store_true",
        help="print every function log line (JSON, EMF) as CloudWatch receives it, not only warnings",
    )
    parser.add_argument(
        "--real",
        type=Path,
        metavar="SECRETS_JSON",
        help="verify against the real providers with the secrets and site keys in this file (needs internet)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    terminal = Terminal(raw=args.raw_logs)
    stack = LocalDeployment(
        ports=Ports(args.port, args.sandbox_port, args.site_port, args.aws_port),
        real=real_credentials(args.real) if args.real else None,
        friendly_api_version=args.friendly_api_version,
        failure_policy=args.failure_policy,
        client_rate_limit=args.rate_limit,
        webhook_url=args.webhook_url,
        webhook_format=args.webhook_format,
        autoresponse_text=args.autoresponse,
        log=terminal.function_line,
        on_request=terminal.request,
        announce=terminal.notice,
    )
    stopped = threading.Event()
    # Installed explicitly: a shell that starts us in the background leaves SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    stack.start()
    try:
        print(ready_banner(stack), flush=True)
        stopped.wait()
    finally:
        print("stopping…", file=sys.stderr, flush=True)
        stack.stop()
    return 0


def ready_banner(stack: LocalDeployment) -> str:
    routes = "\n".join(f"    POST {stack.url('api')}/verify/{provider}" for provider in FUNCTIONS)
    providers = "the real providers (--real)" if stack.real else f"provider sandbox  {stack.url('sandbox')}"
    # The URL itself is a credential (Slack, Discord): never printed.
    webhook = (
        "your --webhook-url (through the inbox)" if stack.webhook_url else f"{stack.url('site')}/webhook"
    )
    return (
        "captcha-verify is running locally (Ctrl-C stops every part)\n"
        f"  demo site         {stack.url('site')}/   <- open this\n"
        f"  API               {stack.url('api')}\n{routes}\n"
        f"  {providers}\n"
        f"  AWS (moto)        {stack.url('aws')}  table {stack.table_name}\n"
        f"  notifications     email to {LOCAL_OWNER} via SES (moto), webhook to {webhook}"
        f"{', autoresponse on' if stack.autoresponse_text else ''}; both in the inbox\n"
        "  stats             make stats-local   (in another terminal)\n"
        "One line per request follows, with any warning or error the function logs\n"
        "(make local ARGS=--raw-logs prints every log line, as CloudWatch receives it)."
    )


if __name__ == "__main__":
    raise SystemExit(main())
