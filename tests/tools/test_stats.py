"""Tests for the captcha-stats command against a moto DynamoDB table."""

import json
import random
import runpy
import statistics
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from captcha_stats import cli
from captcha_stats.figures import Attempt, compute, nearest_rank
from captcha_stats.query import query_attempts, sort_key_bounds
from captcha_verify.providers import PROVIDERS
from moto import mock_aws

TABLE = "challenge-log"
REGION = "us-east-1"
SINCE = "2026-11-21T10:00:00Z"
UNTIL = "2026-11-21T11:00:00Z"
T0 = datetime(2026, 11, 21, 10, tzinfo=UTC)


class QueryOnlyClient:
    """Passes Query through to the real client and fails the test on any other call."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[dict[str, Any]] = []

    def query(self, **kwargs: Any) -> Mapping[str, Any]:
        self.calls.append(kwargs)
        return self._client.query(**kwargs)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"captcha-stats may only call Query, it asked for {name!r}")


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION", "CHALLENGE_TABLE_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "provider", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "provider", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


@pytest.fixture
def query_only(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> QueryOnlyClient:
    """Route the CLI's client through the Query-only guard."""
    guard = QueryOnlyClient(dynamodb)
    monkeypatch.setattr(cli, "make_client", lambda region: guard)
    return guard


def put(
    client: Any,
    provider: str,
    at: datetime,
    *,
    success: bool,
    error_codes: tuple[str, ...] = (),
    degraded: bool | None = None,
    solve: float | None = None,
    age: float | None = None,
    latency: float | None = None,
) -> None:
    """Write a record the way the writer does, optional attributes left out when None."""
    created_at = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    request_id = f"req-{random.getrandbits(64):016x}"
    item: dict[str, Any] = {
        "provider": {"S": provider},
        "sk": {"S": f"{created_at}#{request_id}"},
        "success": {"BOOL": success},
        "error_codes": {"L": [{"S": code} for code in error_codes]},
        "token_sha256": {"S": "ab" * 32},
        "request_id": {"S": request_id},
        "created_at": {"S": created_at},
        "expires_at": {"N": str(int(at.timestamp()) + 30 * 86400)},
    }
    for name, value in (("solve_time_ms", solve), ("token_age_ms", age), ("provider_latency_ms", latency)):
        if value is not None:
            item[name] = {"N": str(value)}
    if degraded is not None:
        item["degraded"] = {"BOOL": degraded}
    client.put_item(TableName=TABLE, Item=item)


def seed_fixed(client: Any) -> None:
    """A small set whose figures are worked out by hand in the tests below."""
    ms = timedelta(milliseconds=1)
    # byebot, in range; the first and last sit exactly on the range's ends.
    put(client, "byebot", T0, success=True, degraded=False, solve=1000, age=5000, latency=100)
    put(client, "byebot", T0 + timedelta(minutes=10), success=True, solve=2000, age=6000, latency=200)
    put(
        client,
        "byebot",
        T0 + timedelta(minutes=20),
        success=False,
        error_codes=("invalid-input-response",),
        solve=3000,
        age=7000,
        latency=300,
    )
    # Degraded acceptance after a provider timeout: no solve time, no token age.
    put(client, "byebot", T0 + timedelta(minutes=30), success=True, degraded=True, latency=3000)
    put(
        client,
        "byebot",
        T0 + timedelta(hours=1),
        success=False,
        error_codes=("timeout-or-duplicate",),
        solve=4000,
        age=400000,
        latency=150,
    )
    # byebot, just outside the range on either side.
    put(client, "byebot", T0 - ms, success=False, error_codes=("internal-error",), latency=1)
    put(client, "byebot", T0 + timedelta(hours=1) + ms, success=False, degraded=True, latency=99999)
    # captchacat, in range.
    put(client, "captchacat", T0 + timedelta(minutes=5), success=True, solve=500, age=1000, latency=50)
    put(
        client,
        "captchacat",
        T0 + timedelta(minutes=6),
        success=False,
        error_codes=("invalid-input-response",),
        solve=700,
        age=2000,
        latency=60,
    )
    # ycaptcha, in range, with only the attributes every record has.
    put(client, "ycaptcha", T0 + timedelta(minutes=7), success=True)


def stats(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--table", TABLE, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def row(out: str, name: str) -> str:
    """``name``'s row in the figures table (above the error codes), cells single-spaced."""
    figures_table = out.split("error codes")[0]
    (line,) = [line for line in figures_table.splitlines() if line.split()[:1] == [name]]
    return " ".join(line.split())


# --- pure figures -------------------------------------------------------------------------


def test_nearest_rank_by_hand() -> None:
    values = [15, 20, 35, 40, 50]
    assert [nearest_rank(values, p) for p in (5, 30, 40, 50, 100)] == [15, 20, 20, 35, 50]
    assert nearest_rank(list(range(1, 21)), 95) == 19
    assert nearest_rank(list(range(1, 41)), 95) == 38
    assert nearest_rank([], 50) is None
    with pytest.raises(ValueError):
        nearest_rank(values, 0)


def test_compute_without_measurements_reports_none() -> None:
    figures = compute([Attempt("ycaptcha", success=False, degraded=False)])
    assert (figures.count, figures.verified_count, figures.verified_rate) == (1, 0, 0.0)
    assert figures.solve_time_ms.samples == 0
    assert figures.solve_time_ms.p50 is None and figures.provider_latency_ms.max is None
    assert compute([]).verified_rate is None


def test_error_code_counted_once_per_record() -> None:
    attempts = [
        Attempt("swetrix", success=False, degraded=False, error_codes=("bad-request", "bad-request")),
        Attempt("swetrix", success=False, degraded=False, error_codes=("internal-error", "bad-request")),
    ]
    assert compute(attempts).error_codes == (("bad-request", 2), ("internal-error", 1))


# --- time arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2026-11-21T10:00:00Z", T0),
        ("2026-11-21T10:00", T0),
        ("2026-11-21T12:00:00+02:00", T0),
    ],
)
def test_parse_time(text: str, expected: datetime | timedelta) -> None:
    assert cli.parse_time(text) == expected


def test_sort_key_bounds_cover_whole_end_milliseconds() -> None:
    lower, upper = sort_key_bounds(T0, T0 + timedelta(hours=1, microseconds=999))
    assert lower == "2026-11-21T10:00:00.000Z"
    inside = ["2026-11-21T10:00:00.000Z#0", "2026-11-21T11:00:00.000Z#ffff-zz"]
    outside = ["2026-11-21T09:59:59.999Z#f", "2026-11-21T11:00:00.001Z#0"]
    assert all(lower <= key <= upper for key in inside)
    assert not any(lower <= key <= upper for key in outside)


# --- reading the table --------------------------------------------------------------------


def test_query_paginates_newest_first_with_query_only(dynamodb: Any) -> None:
    for minute in range(25):
        put(dynamodb, "swetrix", T0 + timedelta(minutes=minute), success=True, solve=minute)
    put(dynamodb, "friendlycaptcha", T0, success=True, solve=999)
    guard = QueryOnlyClient(dynamodb)

    attempts = list(query_attempts(guard, TABLE, "swetrix", T0, T0 + timedelta(hours=1), page_size=4))

    assert [attempt.solve_time_ms for attempt in attempts] == list(range(24, -1, -1))
    assert len(guard.calls) == 7
    assert "ExclusiveStartKey" not in guard.calls[0]
    assert all("ExclusiveStartKey" in call for call in guard.calls[1:])
    assert all(call["ScanIndexForward"] is False for call in guard.calls)
    assert all("BETWEEN" in call["KeyConditionExpression"] for call in guard.calls)


def test_fractional_and_missing_numbers(dynamodb: Any) -> None:
    put(dynamodb, "ycaptcha", T0, success=True, latency=12.5)
    (attempt,) = query_attempts(dynamodb, TABLE, "ycaptcha", T0, T0 + timedelta(minutes=1))
    assert attempt == Attempt("ycaptcha", success=True, degraded=False, provider_latency_ms=12.5)


# --- command line, hand-computed figures --------------------------------------------------


def test_text_output_for_one_provider(
    dynamodb: Any, query_only: QueryOnlyClient, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_fixed(dynamodb)
    code, out, err = stats(capsys, "--provider", "byebot", "--since", SINCE, "--until", UNTIL)

    assert (code, err) == (0, "")
    assert "between 2026-11-21T10:00:00.000Z and 2026-11-21T11:00:00.000Z" in out
    # 3 accepted, one of them degraded: 2 verified (40%), the degraded one counted apart.
    assert row(out, "byebot") == "byebot 5 2 40.0% 1 2000/4000/4000 6000/400000/400000 200/3000"
    codes = [line.split() for line in out.split("error codes")[1].split("\n\n")[0].splitlines()[2:]]
    assert codes == [["byebot", "invalid-input-response", "1"], ["byebot", "timeout-or-duplicate", "1"]]
    # A single provider gets no redundant overall row.
    assert not any(line.startswith("all") for line in out.splitlines())
    assert {call["ExpressionAttributeValues"][":provider"]["S"] for call in query_only.calls} == {"byebot"}


def test_text_output_for_all_providers(
    dynamodb: Any, query_only: QueryOnlyClient, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_fixed(dynamodb)
    code, out, _ = stats(capsys, "--since", SINCE, "--until", UNTIL)

    assert code == 0
    assert row(out, "captchacat") == "captchacat 2 1 50.0% 0 500/700/700 1000/2000/2000 50/60"
    assert row(out, "ycaptcha") == "ycaptcha 1 1 100.0% 0 n/a n/a n/a"
    assert row(out, "swetrix") == "swetrix 0 0 n/a 0 n/a n/a n/a"
    # Overall: 8 records; solve [500, 700, 1000, 2000, 3000, 4000] (p50 = 3rd of 6),
    # age [1000, 2000, 5000, 6000, 7000, 400000], latency [50, 60, 100, 150, 200, 300, 3000]
    # (p50 = 4th of 7, p95 = 7th of 7).
    assert row(out, "all") == "all 8 4 50.0% 1 1000/4000/4000 5000/400000/400000 150/3000"
    assert ["all", "invalid-input-response", "2"] in [line.split() for line in out.splitlines()]
    assert {call["ExpressionAttributeValues"][":provider"]["S"] for call in query_only.calls} == set(
        PROVIDERS
    )


def test_json_output(dynamodb: Any, query_only: QueryOnlyClient, capsys: pytest.CaptureFixture[str]) -> None:
    seed_fixed(dynamodb)
    code, out, _ = stats(
        capsys, "--provider", "byebot", "--provider", "ycaptcha", "--since", SINCE, "--until", UNTIL, "--json"
    )

    assert code == 0
    document = json.loads(out)
    assert set(document) == {"table", "region", "since", "until", "providers", "overall", "not_in_table"}
    assert "cheap checks" in document["not_in_table"]
    assert (document["table"], document["region"]) == (TABLE, REGION)
    assert (document["since"], document["until"]) == ("2026-11-21T10:00:00.000Z", "2026-11-21T11:00:00.000Z")
    assert list(document["providers"]) == ["byebot", "ycaptcha"]
    assert document["providers"]["byebot"] == {
        "count": 5,
        "verified_count": 2,
        "verified_rate": 0.4,
        "degraded_count": 1,
        "error_codes": {"invalid-input-response": 1, "timeout-or-duplicate": 1},
        "solve_time_ms": {"samples": 4, "p50": 2000, "p95": 4000, "max": 4000},
        "token_age_ms": {"samples": 4, "p50": 6000, "p95": 400000, "max": 400000},
        "provider_latency_ms": {"samples": 5, "p50": 200, "p95": 3000, "max": 3000},
    }
    ycaptcha = document["providers"]["ycaptcha"]
    assert ycaptcha["solve_time_ms"] == {"samples": 0, "p50": None, "p95": None, "max": None}
    assert ycaptcha["error_codes"] == {}
    assert (document["overall"]["count"], document["overall"]["verified_count"]) == (6, 3)


# --- command line, a larger random set checked independently -----------------------------


def test_figures_match_independent_computation(
    dynamodb: Any, query_only: QueryOnlyClient, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(20261121)
    codes = ["invalid-input-response", "timeout-or-duplicate", "sitekey-mismatch", "internal-error"]
    seeded: list[dict[str, Any]] = []
    for _ in range(90):
        # Three days around the one-day range asked for below, so about a third falls in it.
        at = T0 - timedelta(days=1) + timedelta(seconds=rng.randrange(3 * 86400))
        success = rng.random() < 0.7
        record: dict[str, Any] = {
            "provider": rng.choice(PROVIDERS),
            "at": at,
            "success": success,
            "error_codes": () if success else tuple(rng.sample(codes, rng.randint(1, 2))),
            "degraded": rng.choice([None, False, True]),
            "solve": rng.choice([None, rng.randint(300, 20000)]),
            "age": rng.choice([None, rng.randint(1000, 300000)]),
            "latency": rng.choice([None, rng.randint(20, 3000)]),
        }
        seeded.append(record)
        put(
            dynamodb,
            record["provider"],
            at,
            **{k: v for k, v in record.items() if k not in ("provider", "at")},
        )

    code, out, _ = stats(
        capsys, "--since", "2026-11-21T00:00:00Z", "--until", "2026-11-22T00:00:00Z", "--json"
    )
    assert code == 0
    document = json.loads(out)

    since, until = datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 22, tzinfo=UTC)
    in_range = [record for record in seeded if since <= record["at"] <= until]
    assert 10 < len(in_range) < len(seeded)

    def pct(values: list[int], percent: int) -> int:
        # Definition of nearest rank: the least value with at least percent% of values at or below it.
        return min(v for v in values if sum(x <= v for x in values) * 100 >= percent * len(values))

    def expected(records: list[dict[str, Any]]) -> dict[str, Any]:
        def dist(key: str) -> dict[str, Any]:
            values = [record[key] for record in records if record[key] is not None]
            if not values:
                return {"samples": 0, "p50": None, "p95": None, "max": None}
            return {
                "samples": len(values),
                "p50": statistics.median_low(values),
                "p95": pct(values, 95),
                "max": max(values),
            }

        wins = [record["success"] and record["degraded"] is not True for record in records].count(True)
        return {
            "count": len(records),
            "verified_count": wins,
            "verified_rate": wins / len(records) if records else None,
            "degraded_count": [record["degraded"] for record in records].count(True),
            "error_codes": dict(Counter(code for record in records for code in record["error_codes"])),
            "solve_time_ms": dist("solve"),
            "token_age_ms": dist("age"),
            "provider_latency_ms": dist("latency"),
        }

    for provider in PROVIDERS:
        assert document["providers"][provider] == expected(
            [record for record in in_range if record["provider"] == provider]
        ), provider
    assert document["overall"] == expected(in_range)
    assert all(set(call) >= {"KeyConditionExpression", "TableName"} for call in query_only.calls)


# --- defaults, empty range, errors --------------------------------------------------------


def test_default_range_is_last_24_hours_and_table_from_env(
    dynamodb: Any,
    query_only: QueryOnlyClient,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime.now(UTC)
    put(dynamodb, "swetrix", now - timedelta(hours=1), success=True)
    put(dynamodb, "swetrix", now - timedelta(hours=25), success=True)
    monkeypatch.setenv("CHALLENGE_TABLE_NAME", TABLE)

    assert cli.main(["--provider", "swetrix", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)

    assert document["table"] == TABLE
    assert document["overall"]["count"] == 1
    since = datetime.fromisoformat(document["since"])
    until = datetime.fromisoformat(document["until"])
    assert until - since == timedelta(hours=24)
    assert abs(until - now) < timedelta(minutes=1)


def test_until_as_duration_ago(
    dynamodb: Any, query_only: QueryOnlyClient, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    put(dynamodb, "swetrix", now - timedelta(hours=3), success=True)
    put(dynamodb, "swetrix", now - timedelta(minutes=30), success=True)
    code, out, _ = stats(capsys, "--provider", "swetrix", "--since", "4h", "--until", "2h", "--json")
    assert code == 0
    assert json.loads(out)["overall"]["count"] == 1


def test_empty_range(dynamodb: Any, query_only: QueryOnlyClient, capsys: pytest.CaptureFixture[str]) -> None:
    seed_fixed(dynamodb)
    code, out, err = stats(
        capsys, "--provider", "byebot", "--since", "2026-11-20T10:00:00Z", "--until", "2026-11-20T11:00:00Z"
    )
    assert (code, err) == (0, "")
    assert out == (
        "no verifications for byebot between 2026-11-20T10:00:00.000Z and 2026-11-20T11:00:00.000Z\n"
        f"{cli.NOT_IN_TABLE}\n"
    )


def test_missing_table(dynamodb: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--table", "no-such-table", "--region", REGION, "--since", SINCE, "--until", UNTIL])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err == f"captcha-stats: table 'no-such-table' not found in region {REGION}\n"


def test_missing_table_names_the_region_asked_for(dynamodb: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = stats(capsys, "--region", "eu-west-1", "--since", SINCE, "--until", UNTIL)
    assert code == 2
    assert err == f"captcha-stats: table '{TABLE}' not found in region eu-west-1\n"


def test_other_aws_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Denied:
        def query(self, **kwargs: Any) -> Mapping[str, Any]:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not allowed\nto query"}}, "Query"
            )

    monkeypatch.setattr(cli, "make_client", lambda region: Denied())
    code, out, err = stats(capsys, "--provider", "ycaptcha")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith(f"captcha-stats: querying table '{TABLE}' in region {REGION} failed:")
    assert "AccessDeniedException" in err and "Traceback" not in err


def test_default_region_falls_back_to_us_east_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent"))
    assert cli.resolve_region(None) == "us-east-1"
    assert cli.resolve_region("ap-south-1") == "ap-south-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert cli.resolve_region(None) == "eu-central-1"


@pytest.mark.parametrize(
    "argv",
    [
        ["--table", TABLE, "--since", "yesterday"],
        ["--table", TABLE, "--provider", "recaptcha"],
        ["--table", TABLE, "--since", SINCE, "--until", "2026-11-21T09:00:00Z"],
        ["--table", TABLE, "--since", "99999999999d"],
        ["--table", TABLE, "--since", "999999d"],
    ],
    ids=["bad-time", "bad-provider", "since-after-until", "huge-duration", "before-year-1"],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert "usage: captcha-stats" in capsys.readouterr().err


def test_module_entry_point(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.argv", ["captcha-stats", "--help"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("captcha_stats", run_name="__main__")
    assert exited.value.code == 0
    assert "--since" in capsys.readouterr().out


def test_missing_credentials_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "absent"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, out, err = stats(capsys, "--provider", "byebot")
    assert (code, out) == (1, "")
    assert err == (
        f"captcha-stats: querying table '{TABLE}' in region {REGION} failed: Unable to locate credentials\n"
    )


# --- the table from the stack -------------------------------------------------------------

STACK_TEMPLATE = json.dumps(
    {
        "Resources": {
            "ChallengeTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TableName": TABLE,
                    "BillingMode": "PAY_PER_REQUEST",
                    "KeySchema": [
                        {"AttributeName": "provider", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "AttributeDefinitions": [
                        {"AttributeName": "provider", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "S"},
                    ],
                },
            }
        },
        "Outputs": {"ChallengeTableName": {"Value": {"Ref": "ChallengeTable"}}},
    }
)


@pytest.fixture
def deployed_stack() -> Iterator[Any]:
    """A stack (moto's CloudFormation) that made the table and names it in its Outputs."""
    with mock_aws():
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="my-forms", TemplateBody=STACK_TEMPLATE
        )
        yield boto3.client("dynamodb", region_name=REGION)


def test_stack_names_the_table_through_its_output(
    deployed_stack: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    put(deployed_stack, "byebot", T0 + timedelta(minutes=1), success=True)
    code = cli.main(["--stack", "my-forms", "--since", SINCE, "--until", UNTIL, "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["table"] == TABLE
    assert document["providers"]["byebot"]["verified_count"] == 1


def test_without_arguments_the_stack_saved_by_make_deploy_is_used(
    deployed_stack: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    (tmp_path / "samconfig.toml").write_text(
        'version = 0.1\n[default.deploy.parameters]\nstack_name = "my-forms"\nregion = "us-east-1"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")  # the saved region wins: the stack is there
    put(deployed_stack, "swetrix", datetime.now(UTC) - timedelta(hours=1), success=True, degraded=True)
    code = cli.main(["--since", "24h"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"table {TABLE} (us-east-1)")
    assert row(out, "swetrix") == "swetrix 1 0 0.0% 1 n/a n/a n/a"
    assert cli.NOT_IN_TABLE in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stack", "nope"], "captcha-stats: stack 'nope': Stack with id nope does not exist"),
        ([], "captcha-stats: name the table with --table, --stack or CHALLENGE_TABLE_NAME"),
    ],
)
def test_no_table_to_be_found_exits_2_with_one_line(
    deployed_stack: Any,
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == message + "\n"


def test_a_stack_without_the_output_is_named_in_the_error(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(
            StackName="other", TemplateBody=json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}})
        )
        with pytest.raises(cli.TableNotFound, match="stack 'other' has no ChallengeTableName output"):
            cli.table_from_stack(cloudformation, "other")
