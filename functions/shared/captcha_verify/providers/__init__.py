"""One adapter per provider protocol; `adapter_for` binds a function's provider name to one."""

from __future__ import annotations

from captcha_verify.config import Settings
from captcha_verify.providers.base import Adapter, OutboundCall
from captcha_verify.providers.registry import PROVIDERS, REGISTRY, Provider, provider


def adapter_for(name: str, settings: Settings) -> Adapter:
    kind = provider(name).adapter_class(settings.friendly_api_version)
    return kind(settings.provider_verify_url or kind.default_url)


__all__ = ["PROVIDERS", "REGISTRY", "Adapter", "OutboundCall", "Provider", "adapter_for", "provider"]
