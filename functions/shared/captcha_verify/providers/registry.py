"""Every provider the project verifies, defined once: the one list the layer, tools and tests derive from.

A provider's protocol facts (its token form fields, default verify URL, token and secret shapes)
belong to its adapter class; this registry names the provider, binds it to its adapter(s), and adds
what the rest of the project needs: the template's name prefix and the widget the demo page shows.
The template cannot import Python, so tests/template checks its Providers mapping, parameters and
outputs against this registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from captcha_verify.config import FriendlyApiVersion
from captcha_verify.providers.base import Adapter
from captcha_verify.providers.friendly import FriendlyV1Adapter, FriendlyV2Adapter
from captcha_verify.providers.rayengine import ByeBotAdapter, CaptchaCatAdapter
from captcha_verify.providers.swetrix import SwetrixAdapter
from captcha_verify.providers.turnstile import TurnstileAdapter
from captcha_verify.providers.ycaptcha import YCaptchaAdapter


@dataclass(frozen=True)
class Widget:
    """How a page embeds the provider's widget: its script and the element the script fills in."""

    script_url: str
    css_class: str
    sitekey_attribute: str
    # The attribute that picks the widget's API generation, for a provider that has two.
    version_attribute: str | None = None


@dataclass(frozen=True)
class Provider:
    name: str  # route /verify/<name>, function folder, metric dimension, secret suffix, events/<name>
    title: str
    prefix: str  # template names: Enable<prefix>, <prefix>SecretArn, <prefix>Function, ...
    adapter: type[Adapter]
    widget: Widget
    # The adapter for FriendlyApiVersion v2, for the one provider with two API generations.
    v2_adapter: type[Adapter] | None = None

    @property
    def adapters(self) -> tuple[type[Adapter], ...]:
        return (self.adapter,) if self.v2_adapter is None else (self.adapter, self.v2_adapter)

    @property
    def token_fields(self) -> tuple[str, ...]:
        """Every form field a widget of this provider fills (of each API generation)."""
        return tuple(dict.fromkeys(field for kind in self.adapters for field in kind.token_fields))

    @property
    def default_verify_urls(self) -> tuple[str, ...]:
        return tuple(kind.default_url for kind in self.adapters)

    def adapter_class(self, api_version: FriendlyApiVersion) -> type[Adapter]:
        if api_version is FriendlyApiVersion.V2 and self.v2_adapter is not None:
            return self.v2_adapter
        return self.adapter


REGISTRY: tuple[Provider, ...] = (
    Provider(
        "captchacat",
        "Captcha Cat",
        "CaptchaCat",
        CaptchaCatAdapter,
        Widget("https://challenge.captchacat.com/ray/widget.js", "captcha-widget", "data-sitekey"),
    ),
    Provider(
        "byebot",
        "ByeBot",
        "ByeBot",
        ByeBotAdapter,
        Widget("https://challenge.byebot.de/ray/widget.js", "captcha-widget", "data-sitekey"),
    ),
    Provider(
        "swetrix",
        "Swetrix Captcha",
        "Swetrix",
        SwetrixAdapter,
        Widget("https://cdn.swetrixcaptcha.com/captcha-loader.js", "swecaptcha", "data-project-id"),
    ),
    Provider(
        "ycaptcha",
        "yCAPTCHA",
        "YCaptcha",
        YCaptchaAdapter,
        Widget("https://ycaptcha.xyspg.moe/captcha.js", "y-captcha", "data-sitekey"),
    ),
    Provider(
        "friendlycaptcha",
        "Friendly Captcha",
        "FriendlyCaptcha",
        FriendlyV1Adapter,
        Widget(
            "https://cdn.jsdelivr.net/npm/friendly-challenge@0.9.18/widget.min.js",
            "frc-captcha",
            "data-sitekey",
            "data-api-version",
        ),
        v2_adapter=FriendlyV2Adapter,
    ),
    Provider(
        "turnstile",
        "Cloudflare Turnstile",
        "Turnstile",
        TurnstileAdapter,
        Widget("https://challenges.cloudflare.com/turnstile/v0/api.js", "cf-turnstile", "data-sitekey"),
    ),
)

BY_NAME: dict[str, Provider] = {provider.name: provider for provider in REGISTRY}
PROVIDERS: tuple[str, ...] = tuple(BY_NAME)


def provider(name: str) -> Provider:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r}; expected one of {', '.join(PROVIDERS)}") from None
