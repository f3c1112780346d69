"""Random and hostile requests through the real handler, with fakes for AWS and the provider.

Invariants, for every example: no unhandled exception; the status and code come from the
contract table; a cheap-check failure reads no secret and makes no outbound call; no control
character in any header; no Location outside the allowed origins or configured URLs; no raw
token or secret in any answer, log, metric or record; and a CPU ceiling per example (measured
with time.process_time, generous: the one place a time bound is an invariant, not a benchmark).
"""

from __future__ import annotations

import base64
import gc
import io
import json
import os
import string
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from captcha_verify.config import FailurePolicy, Settings
from captcha_verify.entrypoint import build_handler
from captcha_verify.outcome import ErrorCode
from captcha_verify.providers import PROVIDERS, OutboundCall
from captcha_verify.submission_store import Claimed
from captcha_verify.transport import ProviderReply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import FakeContext, load_event

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
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

SECRET = "sk_" + "SeCrEtCaNaRy0123456789abcdefghij"[:32]
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
}
CPU_CEILING_SECONDS = 0.25
TOKEN_FIELDS = ["captchacat-token", "byebot-token", "swetrix-captcha-response", "ycaptcha-response"]
TOKEN_FIELDS += ["frc-captcha-solution", "token"]


@dataclass
class FakeSecrets:
    reads: int = 0

    def get(self) -> str:
        self.reads += 1
        return SECRET

    def forget(self) -> None:
        pass


@dataclass
class FakeTransport:
    replies: list[ProviderReply] = field(default_factory=list)
    calls: list[OutboundCall] = field(default_factory=list)

    def send(self, call: OutboundCall, budget: float) -> ProviderReply:
        self.calls.append(call)
        return self.replies.pop() if self.replies else ProviderReply(200, b'{"success": true}', 5)


@dataclass
class FakeLog:
    items: list[dict[str, Any]] = field(default_factory=list)

    def put(self, item: dict[str, Any]) -> None:
        self.items.append(item)


@dataclass
class FakeStore:
    """Every token is claimed afresh and every outcome taken: idempotency has its own tests."""

    committed: list[str] = field(default_factory=list)

    def claim(self, submission_id: str, provider: str, form_sha256: str, hold_ms: int) -> Claimed:
        return Claimed(submission_id, "claim", provider, form_sha256)

    def commit(self, claim: Claimed, answer: str, detail: str, index: Any) -> None:
        self.committed.append(detail)

    def keep_answer(self, claim: Claimed, answer: str) -> None:
        pass

    def release(self, claim: Claimed) -> None:
        pass


@dataclass
class FakeBus:
    details: list[dict[str, Any]] = field(default_factory=list)

    def put_serialised(self, detail: str) -> str:
        self.details.append(json.loads(detail))
        return f"evt-{len(self.details)}"


@dataclass
class Rig:
    provider: str
    handler: Any
    secrets: FakeSecrets
    transport: FakeTransport
    log: FakeLog
    bus: FakeBus
    output: io.StringIO


@dataclass
class Stats:
    examples: int = 0
    slowest: float = 0.0
    slowest_input: str = ""


STATS = Stats()


@pytest.fixture(scope="module")
def rigs() -> Iterator[dict[tuple[str, FailurePolicy], Rig]]:
    output = io.StringIO()
    built = {}
    with redirect_stdout(output), pytest.MonkeyPatch.context() as patch:
        patch.setenv("POWERTOOLS_SERVICE_NAME", "captcha-verify-fuzz")
        patch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CaptchaVerifyFuzz")
        for provider in PROVIDERS:
            for policy in FailurePolicy:
                settings = Settings(
                    challenge_table_name="t",
                    provider_secret_id="s",
                    submission_bus_name="b",
                    idempotency_table_name="i",
                    allowed_origins=frozenset({ALLOWED}),
                    failure_policy=policy,
                    success_redirect_url=CONFIGURED[0] if policy is FailurePolicy.OPEN else None,
                    failure_redirect_url=CONFIGURED[1] if policy is FailurePolicy.OPEN else None,
                )
                secrets, transport, log, bus = FakeSecrets(), FakeTransport(), FakeLog(), FakeBus()
                handler = build_handler(
                    provider,
                    settings=settings,
                    secrets=secrets,  # type: ignore[arg-type]
                    transport=transport,  # type: ignore[arg-type]
                    challenge_log=log,  # type: ignore[arg-type]
                    bus=bus,  # type: ignore[arg-type]
                    store=FakeStore(),  # type: ignore[arg-type]
                )
                built[(provider, policy)] = Rig(provider, handler, secrets, transport, log, bus, output)
    yield built
    if STATS.examples:
        print(
            f"\nfuzz: {STATS.examples} examples; slowest {STATS.slowest * 1000:.1f} ms CPU for "
            f"{STATS.slowest_input[:600]}"
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
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def fields(draw: st.DrawFn) -> tuple[dict[str, str], str]:
    token = draw(tokens)
    chosen = {draw(st.sampled_from(TOKEN_FIELDS)): token}
    chosen.update(
        draw(st.dictionaries(st.sampled_from(["email", "message", "success_url", "failure_url"]), nasty_text))
    )
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
    ),
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    content_type, body, token = draw(bodies())
    headers = {"content-type": content_type} if content_type else {}
    origin = draw(st.one_of(st.none(), st.just(ALLOWED), st.text(max_size=30), st.just("https://x" * 1200)))
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
    }


# ------------------------------------------------------------------ the property
def invoke(rig: Rig, request: dict[str, Any]) -> tuple[dict[str, Any], float]:
    event = load_event(rig.provider, "fetch-json")
    event["headers"] = request["headers"]
    raw: bytes = request["body"]
    event["isBase64Encoded"] = request["base64"]
    event["body"] = base64.b64encode(raw).decode() if request["base64"] else raw.decode("latin-1")
    status, reply_body = request["reply"]
    rig.transport.replies = [ProviderReply(status, reply_body, 7)]
    # The collector is paused while measuring: its pauses are paid for hypothesis's own garbage.
    gc.disable()
    started = time.process_time()
    try:
        with redirect_stdout(rig.output):
            response = rig.handler(event, FakeContext())
        return response, time.process_time() - started
    finally:
        gc.enable()


@given(request=requests())
def test_hostile_requests_keep_every_invariant(
    rigs: dict[tuple[str, FailurePolicy], Rig], request: dict[str, Any]
) -> None:
    rig = rigs[(request["provider"], request["policy"])]
    reads, calls, items, logged = (
        rig.secrets.reads,
        len(rig.transport.calls),
        len(rig.log.items),
        rig.output.tell(),
    )
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

    cheap = bool(codes) and ErrorCode(codes[0]) in CHEAP_ONLY
    if cheap:
        assert (
            rig.secrets.reads == reads and len(rig.transport.calls) == calls and len(rig.log.items) == items
        )
    if len(rig.transport.calls) == calls:
        assert not codes or ErrorCode(codes[0]) in CHEAP_ONLY | {ErrorCode.INVALID_INPUT_RESPONSE}

    seen = (
        json.dumps(response) + json.dumps(rig.log.items[items:], default=str) + rig.output.getvalue()[logged:]
    )
    assert SECRET not in seen
    if request["token"]:
        assert request["token"] not in seen and quote(request["token"]) not in seen
