"""`make bench`: this project's built function against naive docs-style handlers, side by side.

Two baselines: the naive handler that only verifies and logs, and the same handler that also
delivers the form (one PutEvents), which is what this project's function does too.

Both are built by `sam build` exactly as a deploy builds them, then run the way Lambda runs them:
the artifact on a read-only location with bytecode writing off (a deployment zip cannot take a
`__pycache__`), the simulated runtime's precompiled boto3 after the layer on sys.path, a fresh
interpreter per cold start. The provider is a loopback HTTP server that answers after a fixed
delay; AWS is moto on loopback. Medians, because the machine is shared: rerun for stable figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from captcha_local.resources import create_table, load_template

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHILD = HERE / "lambda_child.py"
NAIVE_TEMPLATE = HERE / "naive" / "template.yaml"
EVENT = ROOT / "events" / "byebot" / "fetch-json.json"
FUNCTION = "ByeBotFunction"
TABLE = "BenchChallengeTable"
IDEMPOTENCY_TABLE = "BenchSubmissionTable"
RATE_LIMIT_TABLE = "BenchRateLimitTable"
RATE_LIMIT_KEY = "bench/rate-limit-key"
BUS = "bench-submissions"
SECRET = "bench/byebot"
# What the python3.13 runtime ships next to the interpreter (precompiled, as in Lambda).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")
# The floor: the provider round trip and two DynamoDB writes (the claim, the commit).
FLOOR_WRITES = 2
GOALS = {"cold_ratio": 1.0, "warm_speedup": 1.5, "warm_overhead_ms": 3.0, "layer_mb": 12.0, "aws_rounds": 2}
CONTENDERS = ("project", "naive", "naive_delivers")


@dataclass(frozen=True)
class Contender:
    name: str
    task: Path
    layer: Path | None
    handler: str


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def sam_build(template: Path, build_dir: Path, targets: list[str], work: Path) -> None:
    shutil.rmtree(build_dir, ignore_errors=True)
    sam = Path(sys.executable).with_name("sam")
    command = [
        str(sam) if sam.exists() else "sam",
        "build",
        *targets,
        "--template",
        str(template),
        "--build-dir",
        str(build_dir),
    ]
    command += ["--base-dir", str(template.parent), "--region", "us-east-1"]
    work.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=1200, check=False)
    if result.returncode != 0:
        raise SystemExit(f"sam build failed:\n{result.stdout}\n{result.stderr}")


def simulated_runtime(target: Path) -> Path:
    """boto3 and its dependencies from the dev environment, precompiled like the runtime's."""
    if not target.is_dir():
        site = Path(sysconfig.get_paths()["purelib"])
        target.mkdir(parents=True)
        for name in RUNTIME_PACKAGES:
            source = site / name
            if source.is_dir():
                shutil.copytree(source, target / name)
            else:
                shutil.copy2(source, target / name)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(target)], check=True)
    return target


def read_only_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    return target


def pyc_count(path: Path) -> int:
    return sum(1 for _ in path.rglob("*.pyc"))


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def zipped_bytes(path: Path, scratch: Path) -> int:
    archive = scratch / f"{path.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            zipped.write(file, file.relative_to(path))
    size = archive.stat().st_size
    archive.unlink()
    return size


class ProviderHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, a kept-alive client's delayed ACK
    # would add ~40 ms to every warm call, which no real provider does.
    disable_nagle_algorithm = True
    delay = 0.02

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(self.delay)
        body = json.dumps({"success": True, "challenged_at": int(time.time()), "solve_time_ms": 900}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _client(service: str, environment: dict[str, str]) -> Any:
    import boto3

    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


@contextmanager
def loopback_services(provider_delay: float) -> Iterator[dict[str, str]]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    aws = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    aws.start()
    ProviderHandler.delay = provider_delay
    provider = ThreadingHTTPServer(("127.0.0.1", 0), ProviderHandler)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    try:
        host, port = aws.get_host_and_port()
        environment = {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_SESSION_TOKEN": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "CHALLENGE_TABLE_NAME": TABLE,
            "IDEMPOTENCY_TABLE_NAME": IDEMPOTENCY_TABLE,
            "RATE_LIMIT_TABLE_NAME": RATE_LIMIT_TABLE,
            "RATE_LIMIT_KEY_SECRET_ID": RATE_LIMIT_KEY,
            "CLIENT_RATE_LIMIT_PER_MINUTE": "20",
            "SUBMISSION_BUS_NAME": BUS,
            "PROVIDER_SECRET_ID": SECRET,
            "PROVIDER_VERIFY_URL": f"http://127.0.0.1:{provider.server_address[1]}/validate_token",
        }
        # The stack's own tables, with the template's key schemas, for the parts that use them.
        template = load_template()
        for table, logical_id in (
            (TABLE, "ChallengeTable"),
            (IDEMPOTENCY_TABLE, "SubmissionTable"),
            (RATE_LIMIT_TABLE, "RateLimitTable"),
        ):
            create_table(_client("dynamodb", environment), table, template, logical_id)
        _client("secretsmanager", environment).create_secret(Name=RATE_LIMIT_KEY, SecretString="bench-key")
        _client("events", environment).create_event_bus(Name=BUS)
        _client("secretsmanager", environment).create_secret(
            Name=SECRET, SecretString=json.dumps({"secret": "bench-secret"})
        )
        yield environment
    finally:
        provider.shutdown()
        aws.stop()


def lambda_environment(services: dict[str, str], contender: Contender) -> dict[str, str]:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(contender.task),
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        # As Lambda sets it for an unsampled request (the stack's default, tracing PassThrough).
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
        # The stack's default (TracingMode Disabled).
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "captcha-verify",
        "POWERTOOLS_METRICS_NAMESPACE": "CaptchaVerify",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        **services,
    }
    return environment


def sys_path(contender: Contender, runtime: Path) -> list[str]:
    layer = [str(contender.layer / "python")] if contender.layer else []
    return [str(contender.task), *layer, str(runtime)]


def spawn(
    python: str, contender: Contender, runtime: Path, services: dict[str, str], mode: str, warm: int
) -> dict[str, Any]:
    """A fresh interpreter: ms from spawn to the first answer, plus the child's own timings."""
    read, write = os.pipe()
    config = {
        "paths": sys_path(contender, runtime),
        "handler": contender.handler,
        "mode": mode,
        "warm": warm,
        "event": json.loads(EVENT.read_text(encoding="utf-8"))
        | {"headers": {"content-type": "application/json"}},
    }
    environment = lambda_environment(services, contender) | {"BENCH_RESULT_FD": str(write)}
    started = time.perf_counter()
    child = subprocess.Popen(
        [python, "-I", "-B", str(CHILD), json.dumps(config)],
        env=environment,
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=contender.task,
    )
    os.close(write)
    with os.fdopen(read) as results:
        first_line = results.readline()
        answered = time.perf_counter()
        rest = results.readline()
    _, errors = child.communicate(timeout=600)
    if child.returncode != 0 or not first_line:
        raise SystemExit(f"{contender.name} ({mode}) failed:\n{errors.decode(errors='replace')[-4000:]}")
    return {"spawn_to_answer_ms": (answered - started) * 1000} | json.loads(first_line) | json.loads(rest)


def import_profile(
    python: str, contender: Contender, runtime: Path, services: dict[str, str]
) -> dict[str, Any]:
    """`python -X importtime` of the handler module: total, and self time by top-level package."""
    module = contender.handler.rsplit(".", 1)[0]
    script = f"import sys; sys.path[0:0] = {sys_path(contender, runtime)!r}; import {module}"
    result = subprocess.run(
        [python, "-I", "-B", "-X", "importtime", "-c", script],
        env=lambda_environment(services, contender),
        capture_output=True,
        text=True,
        cwd=contender.task,
        check=True,
    )
    by_package: dict[str, float] = defaultdict(float)
    total_us = 0
    pattern = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    for line in result.stderr.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        self_us, cumulative_us, indent, name = match.groups()
        by_package[name.split(".")[0]] += int(self_us) / 1000
        if len(indent) == 1:
            total_us += int(cumulative_us)
    top = sorted(by_package.items(), key=lambda item: -item[1])[:12]
    return {"total_ms": total_us / 1000, "by_package_ms": {name: round(ms, 1) for name, ms in top}}


def interpreter() -> str:
    """The plain python3.13 the venv was made from: no venv site-packages on the path."""
    base = Path(sys.base_prefix) / "bin" / "python3.13"
    return str(base if base.exists() else shutil.which("python3.13"))


def run(arguments: argparse.Namespace) -> dict[str, Any]:
    work = Path(arguments.work_dir).resolve()
    if not arguments.skip_build:
        sam_build(ROOT / "template.yaml", work / "project-build", [FUNCTION], work / "project-sam")
        sam_build(NAIVE_TEMPLATE, work / "naive-build", ["NaiveFunction"], work / "naive-sam")
    runtime = simulated_runtime(work / "runtime")
    layer_dir = work / "project-build" / "SharedLayer"
    python = interpreter()
    with tempfile.TemporaryDirectory(prefix="captcha-bench-") as scratch_name:
        scratch = Path(scratch_name)
        project = Contender(
            "project",
            read_only_copy(work / "project-build" / FUNCTION, scratch / "project" / "task"),
            read_only_copy(layer_dir, scratch / "project" / "opt"),
            "app.lambda_handler",
        )
        naive_task = read_only_copy(work / "naive-build" / "NaiveFunction", scratch / "naive" / "task")
        naive = Contender("naive", naive_task, None, "app.lambda_handler")
        naive_delivers = Contender("naive_delivers", naive_task, None, "app.deliver_handler")
        contenders = (project, naive, naive_delivers)
        pycs_before = {c.name: pyc_count(scratch / c.name) for c in (project, naive)}
        with loopback_services(arguments.provider_ms / 1000) as services:
            cold: dict[str, list[dict[str, Any]]] = {c.name: [] for c in contenders}
            for _ in range(arguments.spawns):
                for contender in contenders:
                    cold[contender.name].append(spawn(python, contender, runtime, services, "handler", 0))
            warm = {
                c.name: spawn(python, c, runtime, services, "handler", arguments.warm) for c in contenders
            }
            floor = spawn(python, naive, runtime, services, "floor", arguments.warm)
            imports = {c.name: import_profile(python, c, runtime, services) for c in contenders}
        pycs_after = {c.name: pyc_count(scratch / c.name) for c in (project, naive)}
        if pycs_after != pycs_before:
            raise SystemExit(
                f"bytecode was written during the run ({pycs_before} -> {pycs_after}): not Lambda-like"
            )
        for path in scratch.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
        scratch.chmod(0o700)
        layer_bytes = tree_bytes(layer_dir)
        layer_zip = zipped_bytes(layer_dir, scratch)
    return summarize(arguments, cold, warm, floor, imports, layer_bytes, layer_zip, pycs_before)


def summarize(
    arguments: argparse.Namespace,
    cold: dict[str, list[dict[str, Any]]],
    warm: dict[str, dict[str, Any]],
    floor: dict[str, Any],
    imports: dict[str, dict[str, Any]],
    layer_bytes: int,
    layer_zip: int,
    pycs: dict[str, int],
) -> dict[str, Any]:
    figures: dict[str, Any] = {"settings": vars(arguments) | {"pyc_files_shipped": pycs}}
    for name in CONTENDERS:
        figures[name] = {
            "cold_first_answer_ms": statistics.median(s["spawn_to_answer_ms"] for s in cold[name]),
            "cold_import_ms": statistics.median(s["import_ms"] for s in cold[name]),
            "cold_first_call_ms": statistics.median(s["first_call_ms"] for s in cold[name]),
            "cold_samples_ms": [round(s["spawn_to_answer_ms"], 1) for s in cold[name]],
            "warm_p50_ms": statistics.median(warm[name]["warm_ms"]),
            "warm_p95_ms": percentile(warm[name]["warm_ms"], 0.95),
            "warm_own_p50_ms": statistics.median(warm[name]["own_ms"]),
            "aws_rounds_p50": statistics.median(warm[name]["aws_rounds"]),
            "warm_aws_p50_ms": statistics.median(warm[name]["aws_ms"]),
            "warm_provider_p50_ms": statistics.median(warm[name]["http_ms"]),
            "aws_rounds_max": max(warm[name]["aws_rounds"]),
            "import_time": imports[name],
        }
    parts = floor["parts_ms"]
    provider, writes = parts["provider"], parts["put_item"]
    floor_p50 = statistics.median(
        p + sum(writes[i * FLOOR_WRITES : (i + 1) * FLOOR_WRITES]) for i, p in enumerate(provider)
    )
    project, delivers = figures["project"], figures["naive_delivers"]
    figures["floor_p50_ms"] = floor_p50
    figures["floor_parts_p50_ms"] = {name: statistics.median(ms) for name, ms in parts.items()}
    figures["layer"] = {"unzipped_mb": layer_bytes / 1e6, "zipped_mb": layer_zip / 1e6}
    figures["ratios"] = {
        f"{key}_vs_{baseline}": project[f"{key}_ms"] / figures[baseline][f"{key}_ms"]
        for baseline in ("naive", "naive_delivers")
        for key in ("cold_first_answer", "warm_p50", "warm_p95")
    }
    figures["warm_speedup_vs_naive_delivers"] = delivers["warm_p50_ms"] / project["warm_p50_ms"]
    figures["warm_overhead_ms"] = project["warm_p50_ms"] - floor_p50
    figures["goals"] = {
        "warm p50 >= 1.5x faster than naive that delivers": figures["warm_speedup_vs_naive_delivers"]
        >= GOALS["warm_speedup"],
        "warm overhead above floor <= 3 ms": figures["warm_overhead_ms"] <= GOALS["warm_overhead_ms"],
        "cold no slower than naive that delivers": figures["ratios"]["cold_first_answer_vs_naive_delivers"]
        <= GOALS["cold_ratio"],
        "sequential AWS round trips <= 2 (p50)": project["aws_rounds_p50"] <= GOALS["aws_rounds"],
        "layer <= 12 MB": figures["layer"]["unzipped_mb"] <= GOALS["layer_mb"],
    }
    return figures


def table(figures: dict[str, Any]) -> str:
    ratios, settings = figures["ratios"], figures["settings"]
    rows = [
        ("cold: spawn to first answer (median)", "cold_first_answer_ms", "cold_first_answer"),
        ("  of which handler import", "cold_import_ms", None),
        ("  of which first request", "cold_first_call_ms", None),
        ("warm p50", "warm_p50_ms", "warm_p50"),
        ("warm p95", "warm_p95_ms", "warm_p95"),
        ("  in AWS calls (p50, concurrent ones once)", "warm_aws_p50_ms", None),
        ("  in the provider call (p50)", "warm_provider_p50_ms", None),
        ("  in the code itself (p50)", "warm_own_p50_ms", None),
        ("sequential AWS round trips (p50)", "aws_rounds_p50", None),
    ]
    lines = [
        f"{settings['spawns']} cold spawns each, {settings['warm']} warm requests, "
        f"provider {settings['provider_ms']:g} ms on loopback, moto on loopback",
        f"{'':40} {'project':>9} {'naive':>9} {'+deliver':>9} {'/naive':>7} {'/+deliv':>7}",
    ]
    for label, key, ratio in rows:
        cells = " ".join(f"{figures[name][key]:9.1f}" for name in CONTENDERS)
        shown = (
            f"{ratios[f'{ratio}_vs_naive']:7.2f} {ratios[f'{ratio}_vs_naive_delivers']:7.2f}" if ratio else ""
        )
        lines.append(f"{label:40} {cells} {shown}".rstrip())
    imports = " ".join(f"{figures[name]['import_time']['total_ms']:9.1f}" for name in CONTENDERS)
    lines.append(f"{'import time (-X importtime, total)':40} {imports}")
    median_parts = figures["floor_parts_p50_ms"]
    lines.append(f"{'floor p50 (provider + 2 DynamoDB writes)':40} {figures['floor_p50_ms']:9.1f}")
    lines.append(f"{'warm overhead above floor (p50)':40} {figures['warm_overhead_ms']:9.1f}")
    lines.append("  each call p50: " + ", ".join(f"{name} {ms:.1f}" for name, ms in median_parts.items()))
    lines.append(
        f"{'warm p50 speed-up over naive + deliver':40} {figures['warm_speedup_vs_naive_delivers']:9.2f}x"
    )
    project = figures["project"]
    lines.append(f"{'sequential AWS round trips (max)':40} {project['aws_rounds_max']:9d}")
    layer = figures["layer"]
    lines.append(
        f"{'layer size MB (unzipped / zipped)':40} {layer['unzipped_mb']:9.1f} {layer['zipped_mb']:9.1f}"
    )
    lines.append(
        "import self time by package, ms (project): "
        + ", ".join(f"{name} {ms}" for name, ms in project["import_time"]["by_package_ms"].items())
    )
    lines.append(
        "goals: "
        + ", ".join(f"{goal}: {'met' if met else 'NOT met'}" for goal, met in figures["goals"].items())
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawns", type=int, default=7, help="cold starts per contender (median)")
    parser.add_argument("--warm", type=int, default=200, help="warm requests per contender")
    parser.add_argument("--provider-ms", type=float, default=20.0, help="simulated provider round trip")
    parser.add_argument("--work-dir", default=str(ROOT / ".aws-sam" / "bench"), help="build and runtime dir")
    parser.add_argument(
        "--json", default=str(ROOT / ".aws-sam" / "bench.json"), help="where to write results"
    )
    parser.add_argument("--skip-build", action="store_true", help="reuse the last build in --work-dir")
    arguments = parser.parse_args(argv)
    figures = run(arguments)
    Path(arguments.json).parent.mkdir(parents=True, exist_ok=True)
    Path(arguments.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(table(figures))
    print(f"results: {arguments.json}")


if __name__ == "__main__":
    main()
