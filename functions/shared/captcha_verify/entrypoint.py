"""Binds a provider to a Lambda handler: each function's app.py is one call to `build_handler`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import EphemeralMetrics
from aws_lambda_powertools.shared.constants import TRACER_DISABLED_ENV
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice
from aws_lambda_powertools.utilities.typing import LambdaContext

from captcha_verify.config import Settings
from captcha_verify.delivery import SubmissionBus
from captcha_verify.providers import adapter_for
from captcha_verify.rate_limit import RateLimiter
from captcha_verify.records import ChallengeLog
from captcha_verify.responses import (
    ANSWER_HEADERS,
    html_response,
    json_response,
    prefers_html,
    redirect_target,
)
from captcha_verify.secret_store import SecretStore
from captcha_verify.submission_store import SubmissionStore
from captcha_verify.telemetry import bounded_logger
from captcha_verify.transport import Transport
from captcha_verify.verification import Inbound, Verifier

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def build_handler(
    provider: str,
    *,
    settings: Settings | None = None,
    secrets: SecretStore | None = None,
    transport: Transport | None = None,
    challenge_log: ChallengeLog | None = None,
    bus: SubmissionBus | None = None,
    store: SubmissionStore | None = None,
    clock: Callable[[], datetime] | None = None,
    rate_limiter: RateLimiter | None = None,
) -> Handler:
    """The function's handler. Configuration is read here, at cold start, so a bad deploy fails
    on its first invocation with a clear message instead of answering wrongly; AWS clients are
    made on first use. Keyword arguments replace the real collaborators in tests."""
    settings = settings or Settings.from_env()
    adapter = adapter_for(provider, settings)
    logger = bounded_logger()
    # A metric set of its own: Metrics() shares one set (and its dimensions) with every other
    # instance in the process, so each handler built in a process (one per provider in the tests,
    # one in Lambda) would re-add, and overwrite, the others' provider dimension.
    metrics = EphemeralMetrics()
    metrics.set_default_dimensions(provider=provider)
    verifier = Verifier(
        provider=provider,
        adapter=adapter,
        settings=settings,
        secrets=secrets or SecretStore(settings.provider_secret_id),
        transport=transport or Transport(adapter.retry_statuses),
        challenge_log=challenge_log or ChallengeLog(settings.challenge_table_name),
        store=store
        or SubmissionStore(
            settings.idempotency_table_name,
            settings.idempotency_window_seconds,
            settings.submission_retention_days,
        ),
        bus=bus or SubmissionBus(settings.submission_bus_name),
        logger=logger,
        metrics=metrics,
        rate_limiter=rate_limiter or RateLimiter.from_settings(settings, logger, metrics),
        **({"clock": clock} if clock else {}),
    )
    app = APIGatewayHttpResolver()

    @app.post(f"/verify/{provider}")
    def verify() -> Response:
        event = app.current_event
        headers = {name.lower(): value for name, value in (event.headers or {}).items()}
        result = verifier.verify(
            Inbound(
                headers=headers,
                body=event.body,
                is_base64=bool(event.is_base64_encoded),
                request_id=event.request_context.request_id,
                remaining_ms=app.lambda_context.get_remaining_time_in_millis(),
                source_ip=event.request_context.http.source_ip,
            )
        )
        if prefers_html(headers.get("content-type"), headers.get("accept")):
            return html_response(result.attempt, redirect_target(result.attempt, result.fields, settings))
        return json_response(result.attempt)

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response:
        # A bug of ours: the trace goes to CloudWatch, the client gets the contract's shape.
        logger.exception("unhandled error")
        metrics.add_metric(name="UnhandledError", unit="Count", value=1)
        body = {"success": False, "error-codes": ["internal-error"], "provider": provider}
        return Response(
            status_code=500, content_type="application/json", body=json.dumps(body), headers=ANSWER_HEADERS
        )

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @traced
    @metrics.log_metrics(capture_cold_start_metric=True)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    return lambda_handler


def traced(handler: Handler) -> Handler:
    """The handler under Powertools Tracer, which patches requests and botocore so the provider
    call, the secret read and the record write appear as X-Ray subsegments. Only when tracing is
    on (the stack's TracingMode sets POWERTOOLS_TRACE_DISABLED): even a disabled Tracer imports
    the X-Ray SDK to switch it off, which costs every cold start for nothing."""
    if resolve_truthy_env_var_choice(env=os.getenv(TRACER_DISABLED_ENV, "false")):
        return handler
    return Tracer().capture_lambda_handler(capture_response=False)(handler)
