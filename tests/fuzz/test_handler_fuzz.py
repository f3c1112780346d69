"""Random and hostile requests through the real handler, with fakes for AWS and the provider.

Invariants, for every example: no unhandled exception; the status and code come from the
contract table; a cheap-check failure reads no secret and makes no outbound call; no control
character in any header; no Location outside the allowed origins or configured URLs; no raw
token or secret in any answer, log, metric or record; no log line over the telemetry layer's
bound, and none that `make local`'s terminal would print with a control character in it; and a
CPU ceiling per example (measured with time.process_time, generous: the one place a time bound
is an invariant, not a benchmark).

`FUZZ_EXAMPLES=100000 make fuzz` sets the number of examples; the run reports examples per
second. Each example's output is captured on its own (see handler_fakes), so a run's time grows
linearly with its examples.
"""

from __future__ import annotations

import gc
import io
import ipaddress
import json
import os
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from captcha_local.terminal import Terminal
from captcha_verify.config import FailurePolicy
from captcha_verify.outcome import ErrorCode
from captcha_verify.providers import PROVIDERS, REGISTRY
from captcha_verify.telemetry import MAX_LINE_BYTES
from captcha_verify.transport import ProviderReply
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from support.handler_fakes import SECRET, Rig, build_rig, http_event, minimal_settings

# A small fixed number of examples in `make test`; `make fuzz` selects the "fuzz" profile.
settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "3000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ALLOWED = "https://www.example.com"
CONFIGURED = ("https://cfg.example.org/thanks", "https://cfg.example.org/oops")
# Codes answered before the secret is read or the provider called.
CHEAP_ONLY = {
    ErrorCode.BAD_REQUEST,
    ErrorCode.ORIGIN_NOT_ALLOWED,
    ErrorCode.PAYLOAD_TOO_LARGE,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    ErrorCode.MISSING_INPUT_RESPONSE,
    ErrorCode.INVALID_FORM,  # a field limit or a required field: checked before the token is spent
    ErrorCode.RATE_LIMITED,
}
CPU_CEILING_SECONDS = 0.25
# Low enough that the few clients below hit it within a minute's window.
RATE_LIMIT = 3
TOKEN_FIELDS = [field for provider in REGISTRY for field in provider.token_fields] + ["token"]


@dataclass
class Stats:
    examples: int = 0
    slowest: float = 0.0
    slowest_input: str = ""


STATS = Stats()


@pytest.fixture(scope="module")
def rigs() -> Iterator[dict[tuple[str, FailurePolicy], Rig]]:
    built = {}
    for provider in PROVIDERS:
        for policy in FailurePolicy:
            settings = minimal_settings(
                # The open-policy rigs take any origin, so a long one reaches every log path.
                allowed_origins=frozenset({ALLOWED}) if policy is FailurePolicy.CLOSED else frozenset(),
                failure_policy=policy,
                success_redirect_url=CONFIGURED[0] if policy is FailurePolicy.OPEN else None,
                failure_redirect_url=CONFIGURED[1] if policy is FailurePolicy.OPEN else None,
            )
            built[(provider, policy)] = build_rig(
                provider, settings, service="captcha-verify-fuzz", rate_limit=RATE_LIMIT
            )
    started = time.monotonic()
    yield built
    if STATS.examples:
        seconds = time.monotonic() - started
        print(
            f"\nfuzz: {STATS.examples} examples in {seconds:.0f} s, "
            f"{STATS.examples / seconds:.0f} examples/s; "
            f"slowest {STATS.slowest * 1000:.1f} ms CPU for {STATS.slowest_input[:600]}"
        )


# ------------------------------------------------------------------ strategies
TOKEN_ALPHABET = string.ascii_letters + string.digits + "_-"
tokens = st.one_of(
    st.text(TOKEN_ALPHABET, min_size=64, max_size=64).map(lambda t: "Tk" + t[2:]),
    st.text(TOKEN_ALPHABET, min_size=20, max_size=60).map(lambda t: "Tk" + t + ".a.b.c"),
)
nasty_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["https://[x", "%0Ahttps://x", "https://www.example.com/ok\r\nX: 1", "javascript:alert(1)"]
    ),
    st.sampled_from([ALLOWED + "/merci", "https://evil.example.net/phish", "//evil.example.net"]),
)
# What a terminal acts on: a carriage return, escape sequences (CSI, OSC title), a bell, C1.
terminal_text = st.lists(
    st.sampled_from(["\r", "\n", "\x1b[2K", "\x1b]0;pwned\x07", "\x07", "\x9b", "\u202e", "a", "["]),
    max_size=12,
).map("".join)
# Origins up to API Gateway's 10 KiB header, plain or full of what a log line or terminal escapes.
long_origins = st.one_of(
    st.just("https://x" * 1200),
    st.integers(min_value=257, max_value=10_000).map(lambda n: "https://" + "x" * n),
    # Repeated rather than drawn character by character: as hostile, and cheap to generate.
    st.tuples(
        st.sampled_from(["\x1b[2K", "\r\n\x07", "\u2028é😀", '"\\', "\x00x"]), st.integers(1, 2_500)
    ).map(lambda unit_count: unit_count[0] * unit_count[1]),
)
# The client, as the rate limit sees it: many distinct IPv4 addresses; a few busy ones that reach
# the limit; random IPv6 addresses; addresses all within one /64 (one client).
ONE_64 = ipaddress.IPv6Network("2001:db8:f:64::/64")
source_ips = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.sampled_from(["198.51.100.7", "203.0.113.9"]),
    st.ip_addresses(v=6).map(str),
    st.integers(min_value=0, max_value=2**64 - 1).map(lambda host: str(ONE_64[host])),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def fields(draw: st.DrawFn) -> tuple[dict[str, str], str]:
    token = draw(tokens)
    chosen = {draw(st.sampled_from(TOKEN_FIELDS)): token}
    names = st.one_of(
        st.sampled_from(["email", "message", "success_url", "failure_url", "_gotcha"]),
        terminal_text,  # a field name the [inbox] line of make local prints
    )
    chosen.update(draw(st.dictionaries(names, nasty_text, max_size=6)))
    return chosen, token


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bytes, str | None]:
    """(content type, raw body, the token in it if any)."""
    kind = draw(st.sampled_from(["form", "json", "multipart", "raw", "hostile"]))
    if kind == "form":
        chosen, token = draw(fields())
        body = "&".join(f"{quote(k)}={quote(v)}" for k, v in chosen.items())
        return "application/x-www-form-urlencoded", body.encode(), token
    if kind == "json":
        chosen, token = draw(fields())
        document: dict[str, Any] = {
            **chosen,
            **draw(st.dictionaries(st.text(max_size=8), json_values, max_size=5)),
        }
        return "application/json", json.dumps(document).encode(), token
    if kind == "multipart":
        chosen, token = draw(fields())
        boundary = draw(st.sampled_from(["bnd", "----WebKitFormBoundaryA1b2", "x" * 71, ""]))
        extra = draw(
            st.sampled_from(["", "; charset=utf-8", "; charset=undefined", ";a" * 50, '; filename="f"'])
        )
        parts = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"{extra}\r\n\r\n{v}\r\n'
            for k, v in chosen.items()
        )
        body = (parts + f"--{boundary}--\r\n").encode("utf-8", "surrogatepass")
        return f"multipart/form-data; boundary={boundary}", body, token
    if kind == "raw":
        content_type = draw(
            st.sampled_from(["application/json", "multipart/form-data; boundary=b", "text/plain", ""])
        )
        return content_type, draw(st.binary(max_size=2000)), None
    unit = draw(st.sampled_from([b"[", b'{"a":', b";a", b"--b\r\n\r\n", b"a=1&", b"9", b"(", b'\\"']))
    count = draw(st.integers(min_value=1, max_value=30_000))
    content_type = draw(
        st.sampled_from(
            ["application/json", "multipart/form-data; boundary=b", "application/x-www-form-urlencoded"]
        )
    )
    return content_type, unit * count, None


provider_replies = st.tuples(
    st.sampled_from([200, 200, 400, 401, 429, 500, 503, 302]),
    st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.sampled_from(
            [b'{"success": true, "challenged_at": NaN}', b'{"success": true, "data": {"timestamp": NaN}}']
        ),
        st.fixed_dictionaries({"success": st.booleans(), "error": nasty_text}).map(
            lambda v: json.dumps(v).encode()
        ),
        # Free text a provider's answer carries into the log line, record and event.
        st.fixed_dictionaries(
            {"success": st.booleans(), "sitekey": long_origins, "errors": st.lists(long_origins, max_size=2)}
        ).map(lambda v: json.dumps(v).encode()),
    ),
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    content_type, body, token = draw(bodies())
    headers = {"content-type": content_type} if content_type else {}
    origin = draw(st.one_of(st.none(), st.just(ALLOWED), st.text(max_size=30), long_origins, terminal_text))
    if origin is not None:
        headers["origin"] = origin
    headers["accept"] = draw(
        st.sampled_from(["*/*", "text/html", "application/json", "text/html;q=0.1,*/*;q=x"])
    )
    return {
        "provider": draw(st.sampled_from(PROVIDERS)),
        "policy": draw(st.sampled_from(list(FailurePolicy))),
        "headers": headers,
        "body": body,
        "base64": draw(st.booleans()),
        "token": token,
        "reply": draw(provider_replies),
        "source_ip": draw(source_ips),
    }


# ------------------------------------------------------------------ the property
def invoke(rig: Rig, request: dict[str, Any]) -> tuple[dict[str, Any], float]:
    event = http_event(
        rig.provider,
        request["headers"],
        request["body"],
        base64_encoded=request["base64"],
        source_ip=request["source_ip"],
    )
    status, reply_body = request["reply"]
    rig.transport.replies = [ProviderReply(status, reply_body, 7)]
    # The collector is paused while measuring: its pauses are paid for hypothesis's own garbage.
    gc.disable()
    started = time.process_time()
    try:
        response = rig.invoke(event)
        return response, time.process_time() - started
    finally:
        gc.enable()


def terminal_lines(output: str) -> str:
    """What make local's terminal prints of these function log lines, quiet and raw."""
    printed = io.StringIO()
    quiet, raw = Terminal(raw=False, out=printed), Terminal(raw=True, out=printed)
    for line in output.splitlines():
        quiet.function_line("F", line)
        raw.function_line("F", line)
    return printed.getvalue()


@given(request=requests())
def test_hostile_requests_keep_every_invariant(
    rigs: dict[tuple[str, FailurePolicy], Rig], request: dict[str, Any]
) -> None:
    rig = rigs[(request["provider"], request["policy"])]
    reads, calls, written = rig.secrets.reads, rig.transport.calls, rig.log.written
    response, cpu = invoke(rig, request)
    STATS.examples += 1
    if cpu > STATS.slowest:
        origin = request["headers"].get("origin") or ""
        shown = {
            **request,
            "headers": {**request["headers"], "origin": f"{origin[:40]}… ({len(origin)} chars)"},
        }
        STATS.slowest, STATS.slowest_input = cpu, repr({**shown, "body": request["body"][:160]})
    assert cpu < CPU_CEILING_SECONDS, f"{cpu:.3f} s of CPU"

    headers = response.get("headers") or {}
    for name, value in headers.items():
        assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in f"{name}{value}"), (name, value)
    assert headers.get("X-Content-Type-Options") == "nosniff"

    status = response["statusCode"]
    if status == 303:
        location = headers["Location"]
        parts = urlsplit(location)
        assert f"{parts.scheme}://{parts.netloc}" == ALLOWED or any(
            location.startswith(u) for u in CONFIGURED
        )
        code = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("error")
        codes = [code] if code else []
    elif response["headers"]["Content-Type"].startswith("text/html"):
        codes = [c.value for c in ErrorCode if f"(error: {c.value})" in response["body"]]
    else:
        body = json.loads(response["body"])
        codes = body["error-codes"]
        assert body["success"] is (codes == [])
    assert len(codes) <= 1 and all(code in set(ErrorCode) for code in codes)
    if status != 303:
        assert status == (ErrorCode(codes[0]).http_status if codes else 200), (status, codes)

    event(f"answer: {codes[0] if codes else status}")  # which paths a run reached, in its statistics
    cheap = bool(codes) and ErrorCode(codes[0]) in CHEAP_ONLY
    if cheap:
        assert rig.secrets.reads == reads and rig.transport.calls == calls and rig.log.written == written
    if rig.transport.calls == calls:
        assert not codes or ErrorCode(codes[0]) in CHEAP_ONLY | {ErrorCode.INVALID_INPUT_RESPONSE}

    lines = rig.output.splitlines()
    assert all(len(line.encode("utf-8")) <= MAX_LINE_BYTES for line in lines), max(map(len, lines))
    assert all(c.isprintable() for c in terminal_lines(rig.output).replace("\n", ""))

    delivered = json.dumps(rig.bus.details) + "".join(rig.store.committed)
    seen = json.dumps(response) + json.dumps(rig.log.items, default=str) + rig.output + delivered
    assert SECRET not in seen
    if request["token"]:
        assert request["token"] not in seen and quote(request["token"]) not in seen
