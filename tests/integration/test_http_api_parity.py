"""The local API answers as a deployed HTTP API does: unknown routes, the request id header,
redirects without a body type; and `make local` stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from captcha_local.stack import Ports
from support.local_harness import HTTP_TIMEOUT, Harness

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/verify/recaptcha"), ("GET", "/verify/byebot"), ("GET", "/"), ("POST", "/verify")],
)
def test_a_request_matching_no_route_is_404_not_found(h: Harness, method: str, path: str) -> None:
    response = requests.request(method, f"{h.api}{path}", timeout=HTTP_TIMEOUT)

    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}
    assert response.headers["apigw-requestid"]


def test_every_answer_carries_its_request_id_and_the_record_and_log_use_the_same(h: Harness) -> None:
    token = h.issue("byebot")

    response = h.verify(token)

    assert response.status_code == 200
    request_id = response.headers["apigw-requestid"]
    (line,) = h.log.verification_lines(token.sha256)
    assert line["request_id"] == request_id
    (record,) = h.records("byebot", token.sha256)
    assert record["request_id"] == request_id
    another = h.post_json("byebot", {})
    assert another.headers["apigw-requestid"] not in ("", request_id)


def test_a_redirect_has_no_body_and_no_content_type(h: Harness) -> None:
    token = h.issue("swetrix")

    response = h.post_form("swetrix", {"message": "Hello", token.field: token.value})

    assert response.status_code == 303
    assert response.content == b""
    assert "Content-Type" not in response.headers
    assert response.headers["apigw-requestid"]


def test_a_json_answer_keeps_its_content_type(h: Harness) -> None:
    response = h.post_json("byebot", {})

    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")


def _wait_for(process: subprocess.Popen[str], marker: str, seconds: float) -> str:
    """The process's output up to the line containing marker (bounded in time)."""
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} not printed in {seconds}s:\n{''.join(seen)}")


@pytest.mark.slow
def test_make_local_prints_one_line_per_request_and_stops_cleanly_on_ctrl_c() -> None:
    ports = Ports.free()
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")} | {
        "PYTHONPATH": os.pathsep.join(str(REPO / part) for part in ("tools", "functions/shared")),
        "PYTHONUNBUFFERED": "1",
    }
    args = ["--port", str(ports.api), "--sandbox-port", str(ports.sandbox)]
    args += ["--site-port", str(ports.site), "--aws-port", str(ports.aws)]
    # A session of its own: Ctrl-C in a terminal signals the whole foreground process group.
    process = subprocess.Popen(
        [sys.executable, "-m", "captcha_local.stack", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(process, "One line per request follows", 120)
        api = f"http://127.0.0.1:{ports.api}"
        answer = requests.post(f"{api}/verify/byebot", json={}, timeout=HTTP_TIMEOUT)
        assert answer.status_code == 400
        summary = _wait_for(process, "POST /verify/byebot", 20).splitlines()[-1]
        os.killpg(process.pid, signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert re.fullmatch(
        r"\d\d:\d\d:\d\d  POST /verify/byebot  400 missing-input-response  \d+ ms  id "
        + re.escape(answer.headers["apigw-requestid"]),
        summary,
    ), summary
    assert len(summary) < 120
    assert process.returncode == 0, rest
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest, rest
    assert rest.strip() == "stopping…", rest


def test_a_page_on_an_allowed_origin_may_read_the_request_id(h: Harness) -> None:
    response = h.post_json("byebot", {})  # with the demo site's Origin

    assert response.headers["Access-Control-Allow-Origin"] == h.site
    assert response.headers["Access-Control-Expose-Headers"] == "apigw-requestid"
    assert "Access-Control-Expose-Headers" not in h.post_json("byebot", {}, origin=None).headers
