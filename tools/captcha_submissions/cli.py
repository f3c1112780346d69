"""``captcha-submissions``: list, export (CSV) and erase the submissions in the submission store.

The table is named by ``--table``, ``$SUBMISSION_TABLE_NAME`` or the stack's SubmissionTableName
output (``--stack``, else the stack `make deploy` saved). The endpoint follows boto3's own
configuration, so ``AWS_ENDPOINT_URL`` points it at the moto server of ``make local``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from captcha_stats.cli import parse_time, resolve_region, resolve_time, saved_deploy_settings
from captcha_stats.query import iso_millis

from captcha_submissions.export import to_csv, to_table
from captcha_submissions.store import erase, ids_of_email, newest_first

PROG = "captcha-submissions"
TABLE_OUTPUT = "SubmissionTableName"


@dataclass(frozen=True)
class Where:
    """The store, and where copies of a submission live besides it (from the stack's outputs)."""

    table: str
    archive: str | None = None
    archive_days: str | None = None
    dead_letter_queues: list[str] = field(default_factory=list)


class NotFound(Exception):
    """The table cannot be named: no stack, or a stack without the output."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="List, export and erase the form submissions kept in the submission store.",
        epilog="Times: a duration ago (30m, 24h, 7d, 2w) or ISO 8601 (UTC unless it has an offset).",
    )
    parser.add_argument(
        "--table", help="submission store table (default: $SUBMISSION_TABLE_NAME, else the stack's)"
    )
    parser.add_argument(
        "--stack",
        help=f"CloudFormation stack whose {TABLE_OUTPUT} output names the table "
        "(default: the stack_name in ./samconfig.toml, which `make deploy` writes)",
    )
    parser.add_argument("--region", help="AWS region (default: the deployed stack's, else boto3's)")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("list", "list submissions, newest first"), ("export", "write submissions as CSV")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--since", type=parse_time, default=timedelta(days=30), help="default: 30d")
        command.add_argument("--until", type=parse_time, help="default: now")
        if name == "list":
            command.add_argument("--limit", type=int, default=100, help="at most this many (default: 100)")
            command.add_argument("--json", action="store_true", help="print each event detail as JSON")
        else:
            command.add_argument("--output", "-o", help="file to write (default: standard output)")
    erase_command = commands.add_parser("erase", help="delete submissions by id or by email address")
    target = erase_command.add_mutually_exclusive_group(required=True)
    target.add_argument("--id", action="append", dest="ids", help="a submission id; repeatable")
    target.add_argument("--email", help="every submission whose email (or _replyto) field is this address")
    return parser


def locate(args: argparse.Namespace, region: str, saved_stack: str | None) -> Where:
    """--table or $SUBMISSION_TABLE_NAME (copies unknown), else the stack's outputs."""
    if args.table or (not args.stack and os.environ.get("SUBMISSION_TABLE_NAME")):
        return Where(args.table or os.environ["SUBMISSION_TABLE_NAME"])
    stack = args.stack or saved_stack
    if not stack:
        raise NotFound("name the table with --table, --stack or SUBMISSION_TABLE_NAME")
    cloudformation = boto3.client("cloudformation", region_name=region)
    try:
        (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        raise NotFound(f"stack {stack!r}: {error.response.get('Error', {}).get('Message', error)}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    if TABLE_OUTPUT not in outputs:
        raise NotFound(f"stack {stack!r} has no {TABLE_OUTPUT} output (is it a captcha-verify stack?)")
    return Where(
        table=outputs[TABLE_OUTPUT],
        archive=outputs.get("SubmissionArchiveName"),
        archive_days=outputs.get("SubmissionArchiveRetentionDays"),
        dead_letter_queues=sorted(v for k, v in outputs.items() if k.endswith("DeadLetterQueueUrl")),
    )


def copies_report(where: Where) -> list[str]:
    """Where copies of erased submissions may still live: nothing here can delete them one by one."""
    if where.archive is None:
        return [
            "copies elsewhere: unknown without --stack (the bus archive keeps every event until its",
            "retention; dead-letter queues keep what they hold for 14 days; notifications sent stay sent)",
        ]
    days = "forever" if where.archive_days == "0" else f"for {where.archive_days} days after it was received"
    lines = [
        f"copies remain in the bus archive {where.archive!r}, {days}",
        "  (an archive cannot delete single events; to purge them, delete and recreate the archive)",
    ]
    for queue in where.dead_letter_queues:
        lines.append(f"copies may remain in the dead-letter queue {queue} (messages live 14 days)")
    lines.append("notifications already sent (emails, webhooks) are outside this stack")
    return lines


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: {' '.join(message.split())}", file=sys.stderr)
    return code


def run(args: argparse.Namespace, dynamodb: Any, where: Where, now: datetime) -> int:
    if args.command == "erase":
        ids = args.ids or ids_of_email(dynamodb, where.table, args.email)
        deleted = erase(dynamodb, where.table, ids)
        print(f"deleted {len(deleted)} submission(s) from {where.table}" + (":" if deleted else ""))
        for submission_id in deleted:
            print(f"  {submission_id}")
        missing = [i for i in ids if i not in deleted]
        if missing:
            print(f"not found: {', '.join(missing)}")
        print("\n".join(copies_report(where)))
        return 0
    since, until = resolve_time(args.since, now), resolve_time(args.until or timedelta(0), now)
    if since >= until:
        return _fail(f"--since ({iso_millis(since)}) must be before --until ({iso_millis(until)})", 2)
    if args.command == "list":
        found = list(newest_first(dynamodb, where.table, since, until, args.limit))
        if args.json:
            print(json.dumps([s.detail for s in found], indent=2))
        else:
            print(
                to_table(found)
                if found
                else f"no submissions between {iso_millis(since)} and {iso_millis(until)}"
            )
        return 0
    text = to_csv(list(newest_first(dynamodb, where.table, since, until)))
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    saved_stack, saved_region = saved_deploy_settings()
    region = resolve_region(args.region, saved_region)
    try:
        where = locate(args, region, saved_stack)
        return run(args, boto3.client("dynamodb", region_name=region), where, datetime.now(UTC))
    except NotFound as error:
        return _fail(str(error), 2)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return _fail(f"table not found in region {region}", 2)
        return _fail(f"{error}", 1)
    except BotoCoreError as error:  # no credentials, endpoint unreachable, ...
        return _fail(f"{error}", 1)
