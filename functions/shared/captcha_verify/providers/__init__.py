"""One adapter per provider protocol; `adapter_for` binds a function's provider name to one."""

from __future__ import annotations

from captcha_verify.config import FriendlyApiVersion, Settings
from captcha_verify.providers.base import Adapter, OutboundCall
from captcha_verify.providers.friendly import FriendlyV1Adapter, FriendlyV2Adapter
from captcha_verify.providers.rayengine import ByeBotAdapter, CaptchaCatAdapter
from captcha_verify.providers.swetrix import SwetrixAdapter
from captcha_verify.providers.ycaptcha import YCaptchaAdapter

PROVIDERS = ("captchacat", "byebot", "swetrix", "ycaptcha", "friendlycaptcha")

_ADAPTERS: dict[str, type[Adapter]] = {
    "captchacat": CaptchaCatAdapter,
    "byebot": ByeBotAdapter,
    "swetrix": SwetrixAdapter,
    "ycaptcha": YCaptchaAdapter,
}


def adapter_for(provider: str, settings: Settings) -> Adapter:
    if provider == "friendlycaptcha":
        kind: type[Adapter] = (
            FriendlyV2Adapter if settings.friendly_api_version is FriendlyApiVersion.V2 else FriendlyV1Adapter
        )
    elif provider in _ADAPTERS:
        kind = _ADAPTERS[provider]
    else:
        raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    return kind(settings.provider_verify_url or kind.default_url)


__all__ = ["PROVIDERS", "Adapter", "OutboundCall", "adapter_for"]
