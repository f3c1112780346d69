"""Spam and shape rules on the form itself, checked before the visitor's single-use token is spent."""

from __future__ import annotations

import re
from collections.abc import Mapping

from captcha_verify.outcome import ErrorCode, RequestRejected

# A contact or sign-up form has a handful of fields (the parsers already cap their number); these
# bounds keep the delivered event, and the email made from it, readable.
MAX_FIELD_NAME_LENGTH = 100
MAX_VALUES_PER_FIELD = 50
# C0 control characters other than tab, LF and CR: no person types them into a form, each costs six
# bytes once JSON-escaped (\u0000), and a terminal or spreadsheet that shows them can be driven by them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def honeypot_tripped(fields: Mapping[str, object], honeypot_field: str) -> bool:
    """People never see the honeypot and leave it empty; a bot that fills every input fills it too."""
    value = fields.get(honeypot_field)
    if isinstance(value, list):
        return any(_filled(item) for item in value)
    return _filled(value)


def check_form(fields: Mapping[str, object], required: tuple[str, ...]) -> None:
    """Field limits and REQUIRED_FIELDS. Reasons name fields only, never a value a visitor typed."""
    for name, value in fields.items():
        if len(name) > MAX_FIELD_NAME_LENGTH:
            raise RequestRejected(
                ErrorCode.INVALID_FORM, f"a field name is over {MAX_FIELD_NAME_LENGTH} characters"
            )
        if isinstance(value, list) and len(value) > MAX_VALUES_PER_FIELD:
            raise RequestRejected(
                ErrorCode.INVALID_FORM, f"a field repeats more than {MAX_VALUES_PER_FIELD} times"
            )
    missing = [name for name in required if not _filled(fields.get(name))]
    if missing:
        raise RequestRejected(
            ErrorCode.INVALID_FORM, f"required fields missing or blank: {', '.join(missing)}"
        )


def check_controls(content: Mapping[str, object]) -> None:
    """Field names and text values free of C0 control characters other than tab, CR and LF."""
    for name, value in content.items():
        values = value if isinstance(value, list) else [value]
        if _CONTROL.search(name) or any(isinstance(v, str) and _CONTROL.search(v) for v in values):
            raise RequestRejected(ErrorCode.INVALID_FORM, "a field holds a control character")


def _filled(value: object) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list):
        return any(_filled(item) for item in value)
    return value is not None and value is not False
