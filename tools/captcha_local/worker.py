"""One function's warm container: imports its handler once and serves invocations one at a time.

Started by `lambda_runner` with exactly the function's environment and, on PYTHONPATH, its code
folder and the shared layer, as Lambda lays out /var/task and /opt/python. Invocations arrive as
JSON lines on stdin; results leave on a separate pipe so that stdout stays the function's log.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field


@dataclass
class Context:
    """The LambdaContext attributes handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    deadline: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


END_OF_LOGS = "\x00end of invocation logs"


def main() -> None:
    # Ctrl-C in the terminal reaches the whole process group; the parent stops its workers itself
    # (stdin closed or terminate), as Lambda's runtime is never interrupted by a keyboard.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    module_name, _, function_name = sys.argv[1].rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)
    results = os.fdopen(int(os.environ.pop("CAPTCHA_LOCAL_RESULT_FD")), "w", buffering=1)
    name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    for line in sys.stdin:
        request = json.loads(line)
        context = Context(
            function_name=name,
            memory_limit_in_mb=int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
            invoked_function_arn=f"arn:aws:lambda:{os.environ['AWS_REGION']}:000000000000:function:{name}",
            deadline=time.monotonic() + request["timeout_seconds"],
            log_group_name=f"/aws/lambda/{name}",
        )
        try:
            result = {"ok": handler(json.loads(request["event"]), context)}
        except Exception as error:
            traceback.print_exc()
            result = {"error": type(error).__name__}
        # The parent shows an invocation's log lines before its answer (make local's terminal marks
        # a request by what its function logged): this line tells it they have all been read.
        print(END_OF_LOGS, flush=True)
        results.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
