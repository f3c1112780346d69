"""What the scripted provider answers and what the handler answers, shared by the handler tests: the
providers' secrets, a verified answer per provider, the visitor's address, and readers of a response."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from support import load_event, with_body
from support.aws import NOW

SECRETS = {
    "captchacat": "cc-live-secret-0f9e8d7c6b5a",
    "byebot": "bb-live-secret-1a2b3c4d5e6f",
    "swetrix": "swx-live-secret-99aa88bb77cc",
    "ycaptcha": "sk_" + "Qw3rTy" * 5 + "Zx",
    "friendlycaptcha": "frc-live-secret-5e6f7a8b9c0d",
    "turnstile": "0x4AAAAAAAlive-turnstile-secret",
}
SOURCE_IP = "198.51.100.23"
SITEKEY = "abc123def456abc12345"
CHALLENGED_AT = int(NOW.timestamp()) - 3  # three seconds and 250 ms before NOW


def success_body(provider: str) -> dict[str, Any] | str:
    return {
        "captchacat": "",
        "byebot": {
            "success": True,
            "sitekey": SITEKEY,
            "challenged_at": CHALLENGED_AT,
            "solve_time_ms": 2340,
            "interactive_solved": False,
        },
        "swetrix": {
            "success": True,
            "data": {"challenge": "c" * 64, "timestamp": CHALLENGED_AT * 1000, "pid": "proj-1234567"},
        },
        "ycaptcha": {"success": True},
        "friendlycaptcha": {"success": True},
        "turnstile": {
            "success": True,
            "challenge_ts": "2026-11-21T10:00:02.000Z",
            "hostname": "www.example.com",
            "error-codes": [],
            "action": "",
            "cdata": "",
        },
    }[provider]


def body_of(response: dict[str, Any]) -> dict[str, Any]:
    return json.loads(response["body"])


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def json_event(fields: dict[str, Any]) -> dict[str, Any]:
    """ByeBot's fetch-json event with `fields` as its JSON body."""
    return with_body(load_event("byebot", "fetch-json"), json.dumps(fields))
