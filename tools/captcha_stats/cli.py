"""``captcha-stats``: verification figures per provider from the challenge log table.

Reads the table with DynamoDB Query only. The endpoint follows boto3's own configuration,
so ``AWS_ENDPOINT_URL`` points it at the local moto server of ``make local``.
"""

import argparse
import json
import os
import re
import sys
import tomllib
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from captcha_verify.providers import PROVIDERS

from captcha_stats.figures import Distribution, Figures, Number, Summary, summarise
from captcha_stats.query import QueryClient, iso_millis, query_attempts

PROG = "captcha-stats"
FALLBACK_REGION = "us-east-1"
TABLE_OUTPUT = "ChallengeTableName"
NOT_IN_TABLE = (
    "Not in the table: requests refused by the cheap checks before the secret and the provider "
    "(origin, size, media type, body, missing or malformed token); see the functions' logs and metrics."
)

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

type TimeSpec = datetime | timedelta


def parse_time(value: str) -> TimeSpec:
    """argparse type: a duration ago (``30m``, ``24h``, ``7d``) or an ISO 8601 time.

    A time without an offset is taken as UTC, the zone the table's keys are written in.
    """
    match = _DURATION.fullmatch(value.strip())
    try:
        if match:
            return timedelta(**{_UNITS[match[2]]: int(match[1])})
        moment = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 30m, 24h, 7d or an ISO 8601 time, got {value!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def resolve_time(spec: TimeSpec, now: datetime) -> datetime:
    """Turn a duration into the moment that long before ``now``; times pass through."""
    return now - spec if isinstance(spec, timedelta) else spec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Summarise CAPTCHA verification attempts from the challenge log table.",
        epilog="Times: a duration ago (30m, 24h, 7d, 2w) or ISO 8601 (UTC unless it has an offset).",
    )
    parser.add_argument(
        "--table",
        help="challenge log table name (default: $CHALLENGE_TABLE_NAME, else the stack's table)",
    )
    parser.add_argument(
        "--stack",
        help=f"CloudFormation stack whose {TABLE_OUTPUT} output names the table "
        "(default: the stack_name in ./samconfig.toml, which `make deploy` writes)",
    )
    parser.add_argument(
        "--provider",
        action="append",
        choices=PROVIDERS,
        help="provider to report on; repeatable (default: every provider)",
    )
    parser.add_argument(
        "--since", type=parse_time, default=timedelta(hours=24), help="start of the range (default: 24h)"
    )
    parser.add_argument("--until", type=parse_time, help="end of the range, inclusive (default: now)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument(
        "--region", help=f"AWS region (default: boto3's configured region, else {FALLBACK_REGION})"
    )
    return parser


def resolve_region(explicit: str | None, saved: str | None = None) -> str:
    """--region, else the region `make deploy` saved (where the stack is), else boto3's own."""
    return explicit or saved or boto3.session.Session().region_name or FALLBACK_REGION


def make_client(region: str) -> QueryClient:
    return boto3.client("dynamodb", region_name=region)


class TableNotFound(Exception):
    """The table cannot be named: no stack, or a stack without the output."""


def saved_deploy_settings(path: Path = Path("samconfig.toml")) -> tuple[str | None, str | None]:
    """(stack name, region) of the default environment, as `make deploy` saves them."""
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8")).get("default", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None, None
    deploy = config.get("deploy", {}).get("parameters", {})
    common = config.get("global", {}).get("parameters", {})
    return deploy.get("stack_name") or common.get("stack_name"), deploy.get("region") or common.get("region")


def table_from_stack(cloudformation: Any, stack: str) -> str:
    """The table named by the stack's ChallengeTableName output (DescribeStacks)."""
    try:
        (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        raise TableNotFound(
            f"stack {stack!r}: {error.response.get('Error', {}).get('Message', error)}"
        ) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    if TABLE_OUTPUT not in outputs:
        raise TableNotFound(f"stack {stack!r} has no {TABLE_OUTPUT} output (is it a captcha-verify stack?)")
    return str(outputs[TABLE_OUTPUT])


def resolve_table(args: argparse.Namespace, region: str, saved_stack: str | None) -> str:
    """--table, else --stack's output, else $CHALLENGE_TABLE_NAME, else the saved stack's output."""
    if args.table:
        return str(args.table)
    if not args.stack and os.environ.get("CHALLENGE_TABLE_NAME"):
        return os.environ["CHALLENGE_TABLE_NAME"]
    stack = args.stack or saved_stack
    if not stack:
        raise TableNotFound("name the table with --table, --stack or CHALLENGE_TABLE_NAME")
    return table_from_stack(boto3.client("cloudformation", region_name=region), stack)


def _number(value: Number | None) -> str:
    if value is None:
        return "n/a"
    return str(value) if isinstance(value, int) else f"{value:.1f}"


def _spread(dist: Distribution, with_max: bool = True) -> str:
    if not dist.samples:
        return "n/a"
    parts = [dist.p50, dist.p95, dist.max] if with_max else [dist.p50, dist.p95]
    return "/".join(_number(part) for part in parts)


def _align(rows: list[list[str]], left_columns: int = 1) -> list[str]:
    """Pad cells into columns: the first ``left_columns`` flush left (names), the rest right (numbers)."""
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(width) if col < left_columns else cell.rjust(width)
            for col, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _figures_row(name: str, figures: Figures) -> list[str]:
    rate = "n/a" if figures.verified_rate is None else f"{figures.verified_rate:.1%}"
    return [
        name,
        str(figures.count),
        str(figures.verified_count),
        rate,
        str(figures.degraded_count),
        _spread(figures.solve_time_ms),
        _spread(figures.token_age_ms),
        _spread(figures.provider_latency_ms, with_max=False),
    ]


def render_text(summary: Summary, *, table: str, region: str, since: datetime, until: datetime) -> str:
    """The human report: one aligned row per provider, then the error codes seen."""
    span = f"between {iso_millis(since)} and {iso_millis(until)}"
    if not summary.overall.count:
        names = ", ".join(name for name, _ in summary.providers)
        return f"no verifications for {names} {span}\n{NOT_IN_TABLE}"
    sections = list(summary.providers)
    # With a single provider the overall figures would only repeat it.
    if len(sections) > 1:
        sections.append(("all", summary.overall))
    header = [
        "provider",
        "count",
        "verified",
        "rate",
        "degraded",
        "solve ms p50/p95/max",
        "token age ms p50/p95/max",
        "provider latency ms p50/p95",
    ]
    lines = [
        f"table {table} ({region}), {span}",
        "",
        *_align([header, *(_figures_row(name, figures) for name, figures in sections)]),
    ]
    code_rows = [
        [name, code, str(count)] for name, figures in sections for code, count in figures.error_codes
    ]
    if code_rows:
        lines += ["", "error codes (records)", *_align([["provider", "code", "count"], *code_rows], 2)]
    lines += [
        "",
        "verified: the provider verified the token; degraded: accepted unverified (open policy),",
        "counted apart and not in the rate.",
        NOT_IN_TABLE,
    ]
    return "\n".join(lines)


def _figures_json(figures: Figures) -> dict[str, Any]:
    document = asdict(figures)
    document["error_codes"] = dict(figures.error_codes)
    return document


def render_json(summary: Summary, *, table: str, region: str, since: datetime, until: datetime) -> str:
    """The machine report; every requested provider is present, zeros and nulls included."""
    return json.dumps(
        {
            "table": table,
            "region": region,
            "since": iso_millis(since),
            "until": iso_millis(until),
            "providers": {name: _figures_json(figures) for name, figures in summary.providers},
            "overall": _figures_json(summary.overall),
            "not_in_table": NOT_IN_TABLE,
        },
        indent=2,
    )


def _fail(message: str, code: int) -> int:
    # One line, whatever the service put in its message.
    print(f"{PROG}: {' '.join(message.split())}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    try:
        since = resolve_time(args.since, now)
        until = resolve_time(args.until or timedelta(0), now)
    except OverflowError:
        parser.error("--since/--until reaches outside the representable years")
    if since >= until:
        parser.error(f"--since ({iso_millis(since)}) must be before --until ({iso_millis(until)})")
    providers = tuple(dict.fromkeys(args.provider or PROVIDERS))
    saved_stack, saved_region = saved_deploy_settings()
    region = resolve_region(args.region, saved_region)
    try:
        args.table = resolve_table(args, region, saved_stack)
    except TableNotFound as error:
        return _fail(str(error), 2)
    except BotoCoreError as error:
        return _fail(f"reading stack {args.stack or saved_stack!r} in region {region} failed: {error}", 1)

    try:
        client = make_client(region)
        attempts = {
            provider: list(query_attempts(client, args.table, provider, since, until))
            for provider in providers
        }
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return _fail(f"table {args.table!r} not found in region {region}", 2)
        return _fail(f"querying table {args.table!r} in region {region} failed: {error}", 1)
    except BotoCoreError as error:  # no credentials, endpoint unreachable, ...
        return _fail(f"querying table {args.table!r} in region {region} failed: {error}", 1)

    render = render_json if args.json else render_text
    print(render(summarise(attempts), table=args.table, region=region, since=since, until=until))
    return 0
