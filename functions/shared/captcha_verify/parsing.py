"""Turns an HTTP API request body into form fields, or says precisely why it cannot.

Only text fields matter here, so multipart bodies go through the standard library's MIME
parser (the `cgi` module is gone from Python 3.13) rather than a new dependency.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from enum import StrEnum
from urllib.parse import parse_qsl

from captcha_verify.outcome import ErrorCode, RequestRejected

# A form post with a token, a message and a few fields is a few KiB; Friendly v2 tokens reach 16 KiB.
MAX_BODY_BYTES = 64 * 1024


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
    """The body's fields; the first value wins where a form repeats a name."""
    match media.kind:
        case BodyKind.JSON:
            return _json_fields(raw)
        case BodyKind.FORM:
            return _form_fields(raw)
        case BodyKind.MULTIPART:
            return _multipart_fields(raw, media.params.get("boundary"))


def _text(raw: bytes, charset: str = "utf-8") -> str:
    try:
        return raw.decode(charset)
    except (UnicodeDecodeError, LookupError):
        raise RequestRejected(ErrorCode.BAD_REQUEST, "body is not valid text") from None


def _json_fields(raw: bytes) -> dict[str, object]:
    try:
        value = json.loads(_text(raw)) if raw.strip() else None
    except json.JSONDecodeError:
        raise RequestRejected(ErrorCode.BAD_REQUEST, "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise RequestRejected(ErrorCode.BAD_REQUEST, "JSON body is not an object")
    return value


def _form_fields(raw: bytes) -> dict[str, object]:
    try:
        pairs = parse_qsl(_text(raw), keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise RequestRejected(ErrorCode.BAD_REQUEST, "form body is malformed") from None
    fields: dict[str, object] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def _multipart_fields(raw: bytes, boundary: str | None) -> dict[str, object]:
    if not boundary:
        raise RequestRejected(ErrorCode.BAD_REQUEST, "multipart body without a boundary")
    preamble = f'Content-Type: multipart/form-data; boundary="{boundary}"\r\n\r\n'.encode()
    message = BytesParser(policy=HTTP).parsebytes(preamble + raw)
    if not message.is_multipart() or message.defects:
        raise RequestRejected(ErrorCode.BAD_REQUEST, "multipart body is malformed")
    fields: dict[str, object] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue  # file uploads carry no token; they are ignored, not rejected
        payload = part.get_payload(decode=True)
        charset = part.get_content_charset() or "utf-8"
        fields.setdefault(name, _text(payload if isinstance(payload, bytes) else b"", charset))
    return fields
