"""`make deploy`: check the AWS credentials, the first time ask only what a user must decide and
save it to samconfig.toml, then `sam build` and `sam deploy`; every later time, the same with the
saved answers.

`sam deploy --guided` asks about every template parameter and more (35 questions here); the
answers here are at most seven, and everything else keeps the template's documented default,
changeable as a parameter override (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from captcha_local.resources import FUNCTIONS, TEMPLATE, load_template
from captcha_stats.cli import saved_deploy_settings
from captcha_verify.providers import provider as registered
from samcli.lib.config.samconfig import DEFAULT_CONFIG_FILE_NAME, SamConfig

DEFAULT_STACK = "captcha-verify"
DEFAULT_REGION = "us-east-1"
# Stack name and region serve every `sam` command (deploy, delete, logs): SAM CLI's global table.
# The answers that only a deploy uses go to the deploy table.
GLOBAL = ["global"]
DEPLOY = ["deploy"]
Ask = Callable[[str, str], str]
CheckCredentials = Callable[[str], str | None]

NO_TERMINAL = """\
make deploy asks its questions on a terminal, and there is none here. Answer them with options
instead, e.g.:
  make deploy ARGS='--stack-name captcha-verify --region eu-west-1 --providers byebot \\
    --origins https://www.example.com --email ops@example.com'
(unanswered questions keep their defaults: all providers, any origin, no email, no redirect pages)."""


@dataclass(frozen=True)
class Answers:
    stack_name: str
    region: str
    providers: tuple[str, ...]
    allowed_origins: str
    email: str
    success_url: str = ""
    failure_url: str = ""


def parameter_prefix(provider: str) -> str:
    return registered(provider).prefix


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
    overrides += [
        f"{name}={url}"
        for name, url in (
            ("SuccessRedirectUrl", answers.success_url),
            ("FailureRedirectUrl", answers.failure_url),
        )
        if url
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


def check_origins(text: str) -> None:
    for origin in filter(None, text.split(",")):
        if not origin.startswith(("https://", "http://")) or origin.count("/") != 2:
            raise ValueError(f"{origin!r} is not an origin such as https://www.example.com (no path)")


def check_email(text: str) -> None:
    if text and ("@" not in text or " " in text):
        raise ValueError(f"{text!r} is not an email address")


def check_page(url: str, origins: str) -> None:
    """A thank-you or error page: empty, or an https URL on one of the allowed origins (any
    origin when none is set)."""
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or any(c in url for c in " \"'<>\\"):
        raise ValueError(f"{url!r} is not an https URL such as https://www.example.com/thanks")
    allowed = [origin for origin in origins.split(",") if origin]
    if allowed and f"{parts.scheme}://{parts.netloc}" not in allowed:
        raise ValueError(f"{url!r} is not on an allowed origin ({', '.join(allowed)})")


def check_region(text: str) -> None:
    if not text or not all(part.isalnum() for part in text.split("-")) or text.count("-") < 2:
        raise ValueError(f"{text!r} is not an AWS Region such as eu-west-1")


def guided(ask: Ask, defaults: Answers) -> Answers:
    stack_name = ask("Stack name", defaults.stack_name)
    region = ask_until_valid(ask, "AWS Region", defaults.region, check_region)
    providers = ask_until_valid(
        ask, f"Providers to deploy ({', '.join(FUNCTIONS)}, or all)", "all", parse_providers
    )
    origins = ask_until_valid(
        ask,
        "Allowed origins of your site, comma-separated (empty: any)",
        defaults.allowed_origins,
        check_origins,
    ).replace(" ", "")
    email = ask_until_valid(
        ask, "Email for form submissions and alarms (empty: none)", defaults.email, check_email
    )
    success = ask_until_valid(
        ask,
        "Thank-you page for forms posted without JavaScript (empty: the API's own page)",
        defaults.success_url,
        lambda url: check_page(url, origins),
    )
    failure = ask_until_valid(
        ask,
        "Error page for those forms, given ?error=<code> (empty: the API's own page)",
        defaults.failure_url,
        lambda url: check_page(url, origins),
    )
    return Answers(stack_name, region, parse_providers(providers), origins, email, success, failure)


def from_options(args: argparse.Namespace, region_default: str) -> Answers:
    """The answers given as options, each validated as the question would; defaults elsewhere."""
    origins = (args.origins or "").replace(" ", "")
    answers = Answers(
        stack_name=args.stack_name or DEFAULT_STACK,
        region=args.region or region_default,
        providers=parse_providers(args.providers or "all"),
        allowed_origins=origins,
        email=args.email or "",
        success_url=args.success_url or "",
        failure_url=args.failure_url or "",
    )
    check_region(answers.region)
    check_origins(origins)
    check_email(answers.email)
    check_page(answers.success_url, origins)
    check_page(answers.failure_url, origins)
    return answers


def save(config_dir: Path, answers: Answers, template_parameters: Mapping[str, object]) -> None:
    """Write the answers and nothing else. A SamConfig that has not been read through `get_all`
    is used: `get_all` merges the global table into the command's table in place, and a flush
    after it would write that merge back into the file."""
    config = SamConfig(str(config_dir))
    config.put(GLOBAL, "parameters", "stack_name", answers.stack_name)
    config.put(GLOBAL, "parameters", "region", answers.region)
    config.put(DEPLOY, "parameters", "parameter_overrides", parameter_overrides(answers, template_parameters))
    config.flush()


def saved_region(config_dir: Path) -> str | None:
    """The region a guided deploy saved, read from the file itself (see `save`)."""
    return saved_deploy_settings(config_dir / DEFAULT_CONFIG_FILE_NAME)[1]


def check_credentials(region: str) -> str | None:
    """None when AWS credentials are found and accepted, else what to do about it. One STS call,
    bounded: it needs no permission, so any answer but an error means the credentials work."""
    session = boto3.Session(region_name=region)
    if session.get_credentials() is None:
        return (
            "No AWS credentials found. Run `aws configure` (or `aws sso login --profile NAME` and "
            "export AWS_PROFILE=NAME), then `make deploy` again. See docs/deploy.md, Prerequisites."
        )
    config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1, "mode": "standard"})
    try:
        session.client("sts", config=config).get_caller_identity()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        return (
            f"AWS did not accept your credentials ({code}). Refresh them (`aws configure`, `aws sso login`)."
        )
    except BotoCoreError as error:
        return (
            f"Could not reach AWS STS in {region} ({type(error).__name__}). Check the network and the region."
        )
    return None


def terminal_ask(question: str, default: str) -> str:
    shown = f" [{default}]" if default else ""
    return input(f"{question}{shown}: ").strip() or default


def default_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--guided", action="store_true", help="ask again, even if samconfig.toml has answers")
    answers = parser.add_argument_group("answers, for a deploy without a terminal (each skips its question)")
    answers.add_argument("--stack-name")
    answers.add_argument("--region")
    answers.add_argument("--providers", help="comma-separated, or all")
    answers.add_argument("--origins", help="allowed origins, comma-separated")
    answers.add_argument("--email", help="for form submissions and alarms")
    answers.add_argument("--success-url", help="thank-you page for forms posted without JavaScript")
    answers.add_argument("--failure-url", help="error page for those forms")
    parser.add_argument("sam_args", nargs="*", help="passed on to sam deploy (after --)")
    return parser.parse_args(argv)


def main(
    argv: Sequence[str] | None = None,
    ask: Ask = terminal_ask,
    run: Callable[[list[str]], int] = lambda command: subprocess.call(command),
    config_dir: Path = TEMPLATE.parent,
    credentials: CheckCredentials = check_credentials,
    interactive: Callable[[], bool] = lambda: sys.stdin.isatty(),
) -> int:
    args = parse_args(argv)
    if any(arg.startswith("--config-env") for arg in args.sam_args):
        # A named environment of samconfig.toml is configured there, not by questions.
        return run(["sam", "build"]) or run(["sam", "deploy", *args.sam_args])
    options_given = any(
        getattr(args, name) is not None
        for name in ("stack_name", "region", "providers", "origins", "email", "success_url", "failure_url")
    )
    saved = saved_region(config_dir)
    region = args.region or saved or default_region()
    problem = credentials(region)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    answers: Answers | None = None
    try:
        if options_given:
            answers = from_options(args, region)
        elif args.guided or saved is None:
            if not interactive():
                print(NO_TERMINAL, file=sys.stderr)
                return 2
            print("First deploy: seven questions; everything else keeps its documented default.")
            defaults = Answers(DEFAULT_STACK, region, tuple(FUNCTIONS), "", "")
            answers = guided(ask, defaults)
    except ValueError as error:
        print(f"make deploy: {error}", file=sys.stderr)
        return 2
    except (EOFError, KeyboardInterrupt):
        print("\nmake deploy: stopped before any answer was saved; nothing was deployed.", file=sys.stderr)
        return 130
    if answers is not None:
        if answers.region != region and (problem := credentials(answers.region)):
            print(problem, file=sys.stderr)
            return 2
        save(config_dir, answers, load_template()["Parameters"])
        print(f"Saved to {config_dir / DEFAULT_CONFIG_FILE_NAME}; `make deploy` reuses it.")
    return run(["sam", "build"]) or run(["sam", "deploy", *args.sam_args])
