"""form_rules.py: the honeypot, the form's limits and required fields, and control characters,
each checked before the visitor's token is spent, and each reason free of what the visitor typed."""

from __future__ import annotations

import pytest
from captcha_verify.form_rules import (
    MAX_FIELD_NAME_LENGTH,
    MAX_VALUES_PER_FIELD,
    check_controls,
    check_form,
    honeypot_tripped,
)
from captcha_verify.outcome import ErrorCode, RequestRejected
from hypothesis import given
from hypothesis import strategies as st

HONEYPOT = "_gotcha"
CONTROLS = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"]
# What a form's value can be once parsed: text, a repeated field's list, a JSON body's scalars.
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=8,
)


def rejected(check: object, *args: object) -> RequestRejected:
    with pytest.raises(RequestRejected) as raised:
        check(*args)  # type: ignore[operator]
    assert raised.value.code == ErrorCode.INVALID_FORM
    return raised.value


@pytest.mark.parametrize(
    ("value", "tripped"),
    [
        (None, False),
        ("", False),
        ("   \t", False),
        ([], False),
        (["", " "], False),
        (False, False),
        ("https://spam.example", True),
        (["", "x"], True),
        (0, True),
        (True, True),
    ],
)
def test_the_honeypot_trips_on_any_filled_value(value: object, tripped: bool) -> None:
    assert honeypot_tripped({HONEYPOT: value, "email": "ann@example.org"}, HONEYPOT) is tripped


def test_a_form_without_the_honeypot_field_does_not_trip_it() -> None:
    assert not honeypot_tripped({"email": "ann@example.org"}, HONEYPOT)


@given(values)
def test_a_repeated_honeypot_trips_when_any_of_its_values_would(value: object) -> None:
    alone = honeypot_tripped({HONEYPOT: value}, HONEYPOT)
    assert honeypot_tripped({HONEYPOT: [value, ""]}, HONEYPOT) is alone
    assert honeypot_tripped({HONEYPOT: ["", value]}, HONEYPOT) is alone


def test_required_fields_must_be_filled_and_the_reason_names_only_the_fields() -> None:
    check_form({"email": "ann@example.org", "message": "hello"}, ("email", "message"))
    error = rejected(check_form, {"email": "ann@example.org", "message": "  "}, ("email", "message", "name"))
    assert error.reason == "required fields missing or blank: message, name"


def test_field_names_and_repeats_are_bounded_at_their_limits() -> None:
    check_form({"n" * MAX_FIELD_NAME_LENGTH: "x", "tags": ["t"] * MAX_VALUES_PER_FIELD}, ())
    long_name = "n" * (MAX_FIELD_NAME_LENGTH + 1)
    assert long_name not in rejected(check_form, {long_name: "x"}, ()).reason
    rejected(check_form, {"tags": ["t"] * (MAX_VALUES_PER_FIELD + 1)}, ())


@given(st.text(max_size=30), st.sampled_from(CONTROLS), st.booleans(), st.booleans())
def test_a_control_character_anywhere_is_refused(
    text: str, control: str, in_name: bool, repeated: bool
) -> None:
    dirty = text[: len(text) // 2] + control + text[len(text) // 2 :]
    value: object = [text, dirty] if repeated else dirty
    form = {dirty: "clean"} if in_name else {"message": value}
    error = rejected(check_controls, form)
    assert error.reason == "a field holds a control character"


@given(st.text(alphabet=st.characters(exclude_characters=CONTROLS), max_size=40))
def test_tabs_newlines_and_everything_else_a_person_types_pass(text: str) -> None:
    check_controls({text: [text, "line one\r\nline two\tend"], "count": 3, "agree": True, "none": None})
