"""Each function's configuration, parsed once from its environment into a typed object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit


class FailurePolicy(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


class FriendlyApiVersion(StrEnum):
    V1 = "v1"
    V2 = "v2"


class ConfigurationError(ValueError):
    """The function's environment is unusable; raised at cold start so a bad deploy fails loudly."""


@dataclass(frozen=True)
class Settings:
    challenge_table_name: str
    provider_secret_id: str
    submission_bus_name: str
    idempotency_table_name: str
    provider_verify_url: str | None = None
    expected_sitekey: str | None = None
    allowed_origins: frozenset[str] = frozenset()
    failure_policy: FailurePolicy = FailurePolicy.CLOSED
    verify_timeout_seconds: float = 3.0
    record_ttl_days: int = 30
    success_redirect_url: str | None = None
    failure_redirect_url: str | None = None
    friendly_api_version: FriendlyApiVersion = FriendlyApiVersion.V1
    idempotency_window_seconds: int = 600
    honeypot_field: str = "_gotcha"
    required_fields: tuple[str, ...] = ()
    client_rate_limit_per_minute: int = 20
    # Where the per-client counters live and the HMAC key of the client (docs/operations.md, Configuration).
    rate_limit_table_name: str | None = None
    rate_limit_key_secret_id: str | None = None
    # The template's SubmissionRetentionDays: how long the store keeps a committed submission.
    submission_retention_days: int = 90

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        def optional(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def required(name: str) -> str:
            value = optional(name)
            if value is None:
                raise ConfigurationError(f"{name} is required")
            return value

        return cls(
            challenge_table_name=required("CHALLENGE_TABLE_NAME"),
            provider_secret_id=required("PROVIDER_SECRET_ID"),
            provider_verify_url=_url_or_none(optional("PROVIDER_VERIFY_URL"), "PROVIDER_VERIFY_URL"),
            expected_sitekey=optional("EXPECTED_SITEKEY"),
            allowed_origins=parse_origins(env.get("ALLOWED_ORIGINS", "")),
            failure_policy=_choice(env, "FAILURE_POLICY", FailurePolicy, FailurePolicy.CLOSED),
            verify_timeout_seconds=_number(env, "VERIFY_TIMEOUT_SECONDS", 3.0, float, minimum=0.1),
            record_ttl_days=_number(env, "RECORD_TTL_DAYS", 30, int, minimum=1),
            success_redirect_url=_url_or_none(optional("SUCCESS_REDIRECT_URL"), "SUCCESS_REDIRECT_URL"),
            failure_redirect_url=_url_or_none(optional("FAILURE_REDIRECT_URL"), "FAILURE_REDIRECT_URL"),
            friendly_api_version=_choice(
                env, "FRIENDLY_API_VERSION", FriendlyApiVersion, FriendlyApiVersion.V1
            ),
            submission_bus_name=required("SUBMISSION_BUS_NAME"),
            idempotency_table_name=required("IDEMPOTENCY_TABLE_NAME"),
            idempotency_window_seconds=_number(env, "IDEMPOTENCY_WINDOW_SECONDS", 600, int, minimum=1),
            honeypot_field=optional("HONEYPOT_FIELD") or "_gotcha",
            required_fields=parse_names(env.get("REQUIRED_FIELDS", "")),
            client_rate_limit_per_minute=_number(env, "CLIENT_RATE_LIMIT_PER_MINUTE", 20, int, minimum=0),
            rate_limit_table_name=optional("RATE_LIMIT_TABLE_NAME"),
            rate_limit_key_secret_id=optional("RATE_LIMIT_KEY_SECRET_ID"),
            submission_retention_days=_number(env, "SUBMISSION_RETENTION_DAYS", 90, int, minimum=1),
        )


def normalize_origin(origin: str) -> str:
    """Origins compare by scheme, host and port only, case-insensitively, as browsers send them."""
    return origin.strip().rstrip("/").lower()


def origin_host(origin: object) -> str | None:
    """The host an origin names (lowercase, IPv6 without brackets), or None when it names none."""
    if not isinstance(origin, str):
        return None
    try:
        return urlsplit(origin).hostname
    except ValueError:
        return None  # e.g. "https://[x": urlsplit raises on a malformed IPv6 host


def parse_origins(raw: str) -> frozenset[str]:
    return frozenset(normalize_origin(part) for part in raw.split(",") if part.strip())


def parse_names(raw: str) -> tuple[str, ...]:
    """A comma-separated list of field names, in order, without blanks or repeats."""
    return tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def _url_or_none(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{name} must be an absolute http(s) URL")
    return value


def _choice[E: StrEnum](env: Mapping[str, str], name: str, kind: type[E], default: E) -> E:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ConfigurationError(f"{name} must be one of: {allowed}") from None


def _number[N: (int, float)](
    env: Mapping[str, str], name: str, default: N, kind: type[N], *, minimum: N
) -> N:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}")
    return value
