"""Regressions: every parser is bounded before it works and none raises.

Each hostile body below was answered 500, or parsed for seconds, before the parsers were bounded.
"""

from __future__ import annotations

import pytest
from captcha_verify.checks import extract_token
from captcha_verify.outcome import ErrorCode, RequestRejected
from captcha_verify.parsing import MAX_BODY_BYTES, parse_fields, parse_media_type

MULTIPART = "multipart/form-data; boundary=bnd"


def part(headers: str, value: str = "tok") -> bytes:
    return f"--bnd\r\n{headers}\r\n\r\n{value}\r\n".encode()


def multipart(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--bnd--\r\n"


def rejection(raw: bytes, content_type: str) -> ErrorCode:
    with pytest.raises(RequestRejected) as caught:
        parse_fields(raw, parse_media_type(content_type))
    return caught.value.code


HOSTILE_BODIES = {
    # thousands of parameters in one part header: 4.5 s of CPU in the stdlib MIME parser
    "part header parameters": (
        multipart(part("Content-Disposition: form-data; name=token" + ";a" * 8000)),
        MULTIPART,
    ),
    "part content-type parameters": (
        multipart(
            part('Content-Disposition: form-data; name="token"\r\nContent-Type: text/plain' + ";a=b" * 3000)
        ),
        MULTIPART,
    ),
    "thousands of header-less parts": (b"--bnd\r\n\r\n" * 5000 + b"--bnd--\r\n", MULTIPART),
    "deep nesting in a part header": (
        multipart(part('Content-Disposition: form-data; name="token"; x=' + "(" * 5000)),
        MULTIPART,
    ),
    "charset=undefined": (
        multipart(
            part(
                'Content-Disposition: form-data; name="token"\r\nContent-Type: text/plain; charset=undefined'
            )
        ),
        MULTIPART,
    ),
    "JSON integer of 5000 digits": (b'{"token": "x", "n": ' + b"7" * 5000 + b"}", "application/json"),
    "JSON nested 1000 deep": (b'{"a": ' + b"[" * 1000 + b"]" * 1000 + b"}", "application/json"),
    "JSON NaN": (b'{"token": "x", "n": NaN}', "application/json"),
    "JSON Infinity": (b'{"token": "x", "n": -Infinity}', "application/json"),
    "JSON float overflow": (b'{"token": "x", "n": 1e999}', "application/json"),
    "too many form fields": (b"a=1&" * 5000, "application/x-www-form-urlencoded"),
    "too many JSON fields": (
        ("{" + ",".join(f'"f{i}": 1' for i in range(500)) + "}").encode(),
        "application/json",
    ),
    "content type with thousands of parameters": (
        b"token=x",
        "application/x-www-form-urlencoded" + ";a=b" * 3000,
    ),
    "malformed boundary": (b"--\r\n", 'multipart/form-data; boundary="' + "b" * 80 + '"'),
}


@pytest.mark.parametrize("name", HOSTILE_BODIES)
def test_hostile_body_is_a_bad_request(name: str) -> None:
    raw, content_type = HOSTILE_BODIES[name]
    assert len(raw) <= MAX_BODY_BYTES
    assert rejection(raw, content_type) is ErrorCode.BAD_REQUEST


def test_browser_multipart_still_reads_text_fields_and_skips_files() -> None:
    raw = multipart(
        part('Content-Disposition: form-data; name="byebot-token"', "abc.def"),
        part(
            'Content-Disposition: form-data; name="message"\r\nContent-Type: text/plain; charset=UTF-8',
            "héllo",
        ),
        part(
            'Content-Disposition: form-data; name="upload"; filename="a (1).png"\r\nContent-Type: image/png',
            "\x89",
        ),
        part('Content-Disposition: form-data; name="quoted \\"name\\""', "q"),
    )
    fields = parse_fields(raw, parse_media_type(MULTIPART))
    assert fields == {"byebot-token": "abc.def", "message": "héllo", 'quoted "name"': "q"}


def test_nested_multipart_is_ignored_like_a_file() -> None:
    inner = "".join(f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n" for i in range(300))
    raw = multipart(
        part(
            'Content-Disposition: form-data; name="nest"\r\nContent-Type: multipart/mixed; boundary=b0', inner
        ),
        part('Content-Disposition: form-data; name="token"'),
    )
    assert parse_fields(raw, parse_media_type(MULTIPART)) == {"token": "tok"}


def test_header_params_reads_quoted_and_bare_values() -> None:
    from captcha_verify.parsing import header_params

    assert header_params('form-data; name="a;b"; filename=x.txt') == (
        "form-data",
        {"name": "a;b", "filename": "x.txt"},
    )


def test_json_null_token_is_a_missing_token() -> None:
    with pytest.raises(RequestRejected) as caught:
        extract_token(
            parse_fields(b'{"token": null}', parse_media_type("application/json")), ("byebot-token",)
        )
    assert caught.value.code is ErrorCode.MISSING_INPUT_RESPONSE


def test_multipart_repeats_are_read_by_the_capped_reader() -> None:
    from captcha_verify.form_rules import MAX_VALUES_PER_FIELD, check_form
    from captcha_verify.parsing import MAX_PARTS, with_repeats

    media = parse_media_type(MULTIPART)
    # The parts cap bounds the repeats of a name: at the cap every value is kept and allowed ...
    raw = multipart(*[part('Content-Disposition: form-data; name="topic"', str(i)) for i in range(MAX_PARTS)])
    assert MAX_PARTS <= MAX_VALUES_PER_FIELD
    form = with_repeats(parse_fields(raw, media), raw, media)
    assert form == {"topic": [str(i) for i in range(MAX_PARTS)]}
    check_form(form, ("topic",))
    # ... and one part more is refused before either reading builds anything.
    over = multipart(*[part('Content-Disposition: form-data; name="topic"')] * (MAX_PARTS + 1))
    assert rejection(over, MULTIPART) is ErrorCode.BAD_REQUEST
    with pytest.raises(RequestRejected):
        with_repeats({}, over, media)
