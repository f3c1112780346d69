"""Turns an HTTP API request body into form fields, or says precisely why it cannot.

Every parser here is bounded before it works: a public endpoint gets hostile bodies, and a
body of at most MAX_BODY_BYTES must never cost more than a few milliseconds of CPU or raise.

Multipart bodies are split here rather than by the standard library's MIME parser or
python-multipart: the stdlib parser costs about half a millisecond per part even for plain
headers and is superlinear on quoting and parameters (a 40 KiB part header of `;a` parameters
took seconds), and python-multipart hands its part headers to that same stdlib code. Form data
from browsers is a narrow subset of MIME (RFC 7578: no folding, no nesting, no transfer
encodings), which a few linear, capped scans read exactly.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from enum import StrEnum
from urllib.parse import parse_qsl

from captcha_verify.outcome import ErrorCode, RequestRejected

# A form post with a token, a message and a few fields is a few KiB; Friendly v2 tokens reach 16 KiB.
MAX_BODY_BYTES = 64 * 1024
# A contact form has a handful of fields; these caps are generous for people and tight for abuse.
MAX_FIELDS = 50
MAX_PARTS = 50
MAX_PART_HEADER_BYTES = 512
MAX_PART_HEADER_LINES = 8
MAX_HEADER_PARAMS = 8
MAX_CONTENT_TYPE_LENGTH = 256
MAX_JSON_DEPTH = 16
# 64-bit integers and then some; int() of thousands of digits raises (and is quadratic below that).
MAX_JSON_NUMBER_DIGITS = 32
# RFC 2046: 1 to 70 characters from a small set, not ending in a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[ \t]*([!#$%&'*+./^_`|~0-9A-Za-z-]+)[ \t]*")
_HEADER_PARAM = re.compile(
    r';[ \t]*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^;\s"]*))[ \t]*'
)
_QUOTED_PAIR = re.compile(r"\\(.)")
# Browsers send UTF-8; these are the other charsets a form may still declare.
_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"})


class BodyKind(StrEnum):
    FORM = "application/x-www-form-urlencoded"
    MULTIPART = "multipart/form-data"
    JSON = "application/json"


@dataclass(frozen=True)
class MediaType:
    kind: BodyKind
    params: dict[str, str]


def parse_media_type(content_type: str | None) -> MediaType:
    if not content_type:
        raise RequestRejected(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "no content type")
    if len(content_type) > MAX_CONTENT_TYPE_LENGTH or content_type.count(";") > MAX_HEADER_PARAMS:
        raise RequestRejected(ErrorCode.BAD_REQUEST, "content type header too long")
    header = Message()
    header["content-type"] = content_type
    try:
        kind = BodyKind(header.get_content_type())
    except ValueError:
        raise RequestRejected(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "unsupported content type") from None
    params = {key.lower(): str(value) for key, value in header.get_params(failobj=[])[1:]}
    return MediaType(kind, params)


def decode_body(body: str | None, is_base64: bool) -> bytes:
    """The raw body bytes, size-checked before any parsing work is spent on them."""
    if not body:
        return b""
    # Base64 grows the body by a third: reject oversized bodies before decoding them.
    if len(body) > (MAX_BODY_BYTES * 4) // 3 + 4:
        raise RequestRejected(ErrorCode.PAYLOAD_TOO_LARGE, "body over the limit")
    if is_base64:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise RequestRejected(ErrorCode.BAD_REQUEST, "body is not valid base64") from None
    else:
        raw = body.encode("utf-8")
    if len(raw) > MAX_BODY_BYTES:
        raise RequestRejected(ErrorCode.PAYLOAD_TOO_LARGE, "body over the limit")
    return raw


def parse_fields(raw: bytes, media: MediaType) -> dict[str, object]:
    """The body's fields; the first value wins where a form repeats a name (the token is one value)."""
    if media.kind is BodyKind.JSON:
        return _json_fields(raw)
    fields: dict[str, object] = {}
    for name, value in _text_pairs(raw, media):
        fields.setdefault(name, value)
    return fields


def with_repeats(fields: Mapping[str, object], raw: bytes, media: MediaType) -> dict[str, object]:
    """The fields with a repeated name as a list of its values (checkboxes, multiple selects).

    `fields` is parse_fields' answer for the same body: a JSON body carries its lists as they are;
    a url-encoded or multipart body is read again by the same capped reader, so every bound
    (body size, fields, parts, part headers) holds for this reading too.
    """
    if media.kind is BodyKind.JSON:
        return dict(fields)
    values: dict[str, list[str]] = {}
    for name, value in _text_pairs(raw, media):
        values.setdefault(name, []).append(value)
    return {name: found[0] if len(found) == 1 else found for name, found in values.items()}


def _text_pairs(raw: bytes, media: MediaType) -> list[tuple[str, str]]:
    """A url-encoded or multipart body's (name, text) pairs in body order, repeats included."""
    if media.kind is BodyKind.MULTIPART:
        return _multipart_pairs(raw, media.params.get("boundary"))
    return _form_pairs(raw)


def _text(raw: bytes, charset: str = "utf-8") -> str:
    try:
        return raw.decode(charset)
    except (UnicodeError, LookupError):
        # UnicodeError too: codecs such as "undefined" raise it for any input.
        raise RequestRejected(ErrorCode.BAD_REQUEST, "body is not valid text") from None


def json_depth(value: object) -> int:
    """How deeply arrays and objects nest in a parsed value, walked without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _json_number(text: str) -> int | float:
    if len(text.lstrip("-")) > MAX_JSON_NUMBER_DIGITS:
        raise RequestRejected(ErrorCode.BAD_REQUEST, "JSON number too long")
    if not any(c in text for c in ".eE"):
        return int(text)
    number = float(text)
    if not math.isfinite(number):
        raise RequestRejected(ErrorCode.BAD_REQUEST, "JSON number out of range")
    return number


def _json_constant(name: str) -> object:
    raise RequestRejected(ErrorCode.BAD_REQUEST, f"JSON {name[:16]} is not a number")


def _json_fields(raw: bytes) -> dict[str, object]:
    text = _text(raw)
    try:
        value = (
            json.loads(text, parse_int=_json_number, parse_float=_json_number, parse_constant=_json_constant)
            if text.strip()
            else None
        )
    except (json.JSONDecodeError, RecursionError):
        # The C decoder guards its own recursion: deep nesting ends as RecursionError, cheaply.
        raise RequestRejected(ErrorCode.BAD_REQUEST, "body is not valid JSON") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise RequestRejected(ErrorCode.BAD_REQUEST, "JSON nested too deeply")
    if not isinstance(value, dict):
        raise RequestRejected(ErrorCode.BAD_REQUEST, "JSON body is not an object")
    if len(value) > MAX_FIELDS:
        raise RequestRejected(ErrorCode.BAD_REQUEST, "too many fields")
    return value


def _form_pairs(raw: bytes) -> list[tuple[str, str]]:
    try:
        pairs = parse_qsl(
            _text(raw),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeError, ValueError):
        raise RequestRejected(
            ErrorCode.BAD_REQUEST, "form body is malformed or has too many fields"
        ) from None
    return pairs


def _multipart_pairs(raw: bytes, boundary: str | None) -> list[tuple[str, str]]:
    if not boundary or not _BOUNDARY.fullmatch(boundary):
        raise RequestRejected(ErrorCode.BAD_REQUEST, "multipart body without a valid boundary")
    segments = raw.split(b"--" + boundary.encode("ascii"))
    # segments: the preamble, one per part, and what follows the closing delimiter ("--...").
    if len(segments) < 2 or not segments[-1].startswith(b"--"):
        raise RequestRejected(ErrorCode.BAD_REQUEST, "multipart body is malformed")
    if len(segments) > MAX_PARTS + 2:
        raise RequestRejected(ErrorCode.BAD_REQUEST, "too many multipart parts")
    return [part for segment in segments[1:-1] if (part := _multipart_part(segment)) is not None]


def _multipart_part(segment: bytes) -> tuple[str, str] | None:
    """One part's (name, text), or None for a file upload (ignored: it carries no token)."""
    head, separator, body = segment.partition(b"\r\n\r\n")
    if not separator or not head.startswith(b"\r\n") or not body.endswith(b"\r\n"):
        raise RequestRejected(ErrorCode.BAD_REQUEST, "multipart part is malformed")
    headers = _part_headers(head)
    disposition, params = header_params(headers.get("content-disposition", ""))
    if disposition.lower() != "form-data" or "name" not in params:
        raise RequestRejected(ErrorCode.BAD_REQUEST, "multipart part is not a form field")
    if "filename" in params:
        return None
    if headers.get("content-transfer-encoding", "binary").lower() not in ("7bit", "8bit", "binary"):
        raise RequestRejected(ErrorCode.BAD_REQUEST, "multipart transfer encodings are not supported")
    kind, type_params = header_params(headers.get("content-type", "text/plain"))
    if not kind.lower().startswith("text/"):
        return None  # not a text field (a nested multipart included): ignored, like a file
    charset = type_params.get("charset", "utf-8")
    if charset.lower() not in _CHARSETS:
        raise RequestRejected(ErrorCode.BAD_REQUEST, "multipart part has an unsupported charset")
    return _text(params["name"].encode("latin-1")), _text(body[:-2], charset)


def _part_headers(head: bytes) -> dict[str, str]:
    """A part's headers by lower-cased name (the first of a repeated one), bounded in size and count."""
    if len(head) > MAX_PART_HEADER_BYTES:
        raise RequestRejected(ErrorCode.BAD_REQUEST, "multipart part header too large")
    lines = head[2:].split(b"\r\n")
    if len(lines) > MAX_PART_HEADER_LINES:
        raise RequestRejected(ErrorCode.BAD_REQUEST, "multipart part has too many headers")
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise RequestRejected(ErrorCode.BAD_REQUEST, "multipart part header is malformed")
        headers.setdefault(name.lower(), value.strip())
    return headers


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """`form-data; name="a"` -> ("form-data", {"name": "a"}); at most MAX_HEADER_PARAMS, one
    anchored match per parameter, so the work is linear in the header's length."""
    match = _HEADER_VALUE.match(value)
    if match is None:
        raise RequestRejected(ErrorCode.BAD_REQUEST, "header value is malformed")
    params: dict[str, str] = {}
    position = match.end()
    while position < len(value):
        param = _HEADER_PARAM.match(value, position)
        if param is None or len(params) >= MAX_HEADER_PARAMS:
            raise RequestRejected(ErrorCode.BAD_REQUEST, "header parameters are malformed or too many")
        name, quoted, bare = param.groups()
        params.setdefault(name.lower(), _QUOTED_PAIR.sub(r"\1", quoted) if quoted is not None else bare)
        position = param.end()
    return match.group(1), params
