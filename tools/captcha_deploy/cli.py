"""`make deploy`: the first time, ask only what a user must decide, save it to samconfig.toml,
then run `sam deploy`; every later time, just `sam deploy` with the saved answers.

`sam deploy --guided` asks about every template parameter and more (35 questions here); the
answers here are at most five, and everything else keeps the template's documented default,
changeable as a parameter override (README, "Deploy").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from captcha_local.resources import FUNCTIONS, TEMPLATE, load_template
from samcli.lib.config.samconfig import SamConfig

DEFAULT_STACK = "captcha-verify"
DEFAULT_REGION = "us-east-1"
DEPLOY = ["deploy"]
Ask = Callable[[str, str], str]


@dataclass(frozen=True)
class Answers:
    stack_name: str
    region: str
    providers: tuple[str, ...]
    allowed_origins: str
    email: str


def parameter_prefix(provider: str) -> str:
    return FUNCTIONS[provider].removesuffix("Function")


def parse_providers(text: str) -> tuple[str, ...]:
    """'byebot, swetrix' -> ('byebot', 'swetrix'); 'all' or empty -> every provider."""
    names = [name.strip().lower() for name in text.replace(" ", ",").split(",") if name.strip()]
    if not names or names == ["all"]:
        return tuple(FUNCTIONS)
    unknown = [name for name in names if name not in FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown provider(s) {', '.join(unknown)}; choose from {', '.join(FUNCTIONS)}")
    return tuple(provider for provider in FUNCTIONS if provider in names)


def parameter_overrides(answers: Answers, template_parameters: Mapping[str, object]) -> list[str]:
    """The answers as `Name=value` overrides; the email goes to every email parameter the template has."""
    overrides = [
        f"Enable{parameter_prefix(provider)}={'true' if provider in answers.providers else 'false'}"
        for provider in FUNCTIONS
    ]
    overrides.append(f"AllowedOrigins={answers.allowed_origins}")
    overrides += [
        f"{name}={answers.email}"
        for name in ("AlarmEmail", "NotificationEmail")
        if name in template_parameters
    ]
    return overrides


def ask_until_valid(ask: Ask, question: str, default: str, parse: Callable[[str], object]) -> str:
    while True:
        answer = ask(question, default)
        try:
            parse(answer)
        except ValueError as error:
            print(f"  {error}", file=sys.stderr)
            continue
        return answer


def _origins(text: str) -> None:
    for origin in filter(None, text.split(",")):
        if not origin.startswith(("https://", "http://")) or origin.count("/") != 2:
            raise ValueError(f"{origin!r} is not an origin such as https://www.example.com (no path)")


def _email(text: str) -> None:
    if text and ("@" not in text or " " in text):
        raise ValueError(f"{text!r} is not an email address")


def guided(ask: Ask, region_default: str) -> Answers:
    stack_name = ask("Stack name", DEFAULT_STACK)
    region = ask("AWS Region", region_default)
    providers = ask_until_valid(
        ask, f"Providers to deploy ({', '.join(FUNCTIONS)}, or all)", "all", parse_providers
    )
    origins = ask_until_valid(
        ask, "Allowed origins of your site, comma-separated (empty: any)", "", _origins
    ).replace(" ", "")
    email = ask_until_valid(ask, "Email for form submissions and alarms (empty: none)", "", _email)
    return Answers(stack_name, region, parse_providers(providers), origins, email)


def save(config: SamConfig, answers: Answers, template_parameters: Mapping[str, object]) -> None:
    config.put(DEPLOY, "parameters", "stack_name", answers.stack_name)
    config.put(DEPLOY, "parameters", "region", answers.region)
    config.put(DEPLOY, "parameters", "parameter_overrides", parameter_overrides(answers, template_parameters))
    config.flush()


def is_configured(config: SamConfig) -> bool:
    """A region saved for `sam deploy` means the guided questions were answered once."""
    return "region" in config.get_all(DEPLOY, "parameters")


def terminal_ask(question: str, default: str) -> str:
    shown = f" [{default}]" if default else ""
    return input(f"{question}{shown}: ").strip() or default


def default_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def main(
    argv: Sequence[str] | None = None,
    ask: Ask = terminal_ask,
    run: Callable[[list[str]], int] = lambda command: subprocess.call(command),
    config_dir: Path = TEMPLATE.parent,
) -> int:
    parser = argparse.ArgumentParser(prog="make deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--guided", action="store_true", help="ask again, even if samconfig.toml has answers")
    parser.add_argument("sam_args", nargs="*", help="passed on to sam deploy")
    args = parser.parse_args(argv)

    config = SamConfig(str(config_dir))
    if args.guided or not is_configured(config):
        print("First deploy: five questions; everything else keeps its documented default.")
        answers = guided(ask, default_region())
        save(config, answers, load_template()["Parameters"])
        print(f"Saved to {config.path()} ([default.deploy.parameters]); `make deploy` reuses it.")
    return run(["sam", "deploy", *args.sam_args])
