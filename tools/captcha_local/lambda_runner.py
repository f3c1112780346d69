"""Invokes the template's functions without Docker, for SAM CLI's local API Gateway service.

Each function gets a long-lived worker process (its "container") with exactly the environment the
template declares for it, plus the variables the Lambda runtime itself sets. SAM CLI's
`LocalApigwService` only needs `invoke()` and `is_debugging()` of its runner.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from captcha_local.worker import END_OF_LOGS

LogSink = Callable[[str, str], None]
# How long an answer waits for its invocation's log lines to be read.
LOG_DRAIN_SECONDS = 1.0


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    environment: Mapping[str, str]
    timeout_seconds: int
    memory_mb: int


class Worker:
    def __init__(self, spec: FunctionSpec, runtime_env: Mapping[str, str], log: LogSink) -> None:
        self.spec = spec
        self._runtime_env = runtime_env
        self._log = log
        self._lock = threading.Lock()  # one invocation at a time, as in one Lambda execution environment
        self._process: subprocess.Popen[str] | None = None
        self._results: queue.Queue[dict[str, Any]] = queue.Queue()
        self._logs_read = threading.Event()

    def _start(self) -> subprocess.Popen[str]:
        read_fd, write_fd = os.pipe()
        env = {
            **self.spec.environment,
            **self._runtime_env,
            "AWS_LAMBDA_FUNCTION_NAME": self.spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory_mb),
            "PYTHONPATH": os.pathsep.join(str(d) for d in (self.spec.code_dir, *self.spec.layer_dirs)),
            "PYTHONUNBUFFERED": "1",
            "CAPTCHA_LOCAL_RESULT_FD": str(write_fd),
        }
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("worker.py")), self.spec.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        threading.Thread(target=self._pump_logs, args=(process,), daemon=True).start()
        threading.Thread(target=self._pump_results, args=(read_fd,), daemon=True).start()
        return process

    def _pump_logs(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.rstrip("\n") == END_OF_LOGS:
                self._logs_read.set()
                continue
            self._log(self.spec.name, line.rstrip("\n"))

    def _pump_results(self, read_fd: int) -> None:
        with os.fdopen(read_fd) as results:
            for line in results:
                self._results.put(json.loads(line))
        self._results.put({"error": "WorkerExited"})

    def invoke(self, event: str) -> dict[str, Any]:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._results = queue.Queue()
                self._process = self._start()
            assert self._process.stdin is not None
            request = {"event": event, "timeout_seconds": self.spec.timeout_seconds}
            self._logs_read.clear()
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            try:
                result = self._results.get(timeout=self.spec.timeout_seconds + 5)
                self._logs_read.wait(LOG_DRAIN_SECONDS)
                return result
            except queue.Empty:
                self._log(self.spec.name, f"Task timed out after {self.spec.timeout_seconds} seconds")
                self.stop()
                return {"error": "TimeoutError"}

    def terminate(self) -> None:
        """Asks the process to end without waiting for it (see ProcessLambdaRunner.stop)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def stop(self) -> None:
        self.terminate()
        if self._process is not None and self._process.poll() is None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None


class ProcessLambdaRunner:
    """The `lambda_runner` LocalApigwService calls; an unhandled error answers as Lambda's does."""

    def __init__(
        self, specs: Mapping[str, FunctionSpec], runtime_env: Mapping[str, str], log: LogSink
    ) -> None:
        self.workers = {name: Worker(spec, runtime_env, log) for name, spec in specs.items()}

    def is_debugging(self) -> bool:
        return False

    def invoke(
        self, function_identifier: str, event: str, stdout: Any = None, stderr: Any = None, **_: Any
    ) -> None:
        result = self.workers[function_identifier].invoke(event)
        payload = (
            result["ok"]
            if "ok" in result
            else {"errorMessage": result["error"], "errorType": result["error"]}
        )
        stdout.write_str(json.dumps(payload))

    def stop(self) -> None:
        # Every worker is asked first and then waited for, so stopping takes the slowest worker's
        # time rather than the sum of all of theirs (one process per function, on a loaded machine).
        for worker in self.workers.values():
            worker.terminate()
        for worker in self.workers.values():
            worker.stop()
