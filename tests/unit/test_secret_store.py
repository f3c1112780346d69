"""secret_store.py: the provider secret read from its two documented shapes, its failures named by
their cause only, and a rejected secret read afresh on the next request (moto in process)."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from captcha_verify.secret_store import SecretStore, SecretUnavailable, parse_secret
from hypothesis import given
from hypothesis import strategies as st

SECRET_ID = "test/secret-store"


@pytest.mark.parametrize(
    ("stored", "secret"),
    [
        ("plain-secret", "plain-secret"),
        ("  padded-secret\n", "padded-secret"),
        (b"bytes-secret", "bytes-secret"),
        ('{"secret": " json-secret "}', "json-secret"),
        ('{"secret": 12345}', ""),  # not text: no secret
        ('{"other": "x"}', ""),
        ('["secret"]', '["secret"]'),  # only an object is read as JSON
        ("{not json", "{not json"),  # a plain secret that happens to start with a brace
        ("", ""),
        (None, ""),
    ],
)
def test_the_secret_is_read_from_a_plain_string_or_a_json_object(
    stored: str | bytes | None, secret: str
) -> None:
    assert parse_secret(stored) == secret


@given(st.text(alphabet=st.characters(exclude_characters="{"), min_size=1).map(str.strip).filter(bool))
def test_a_plain_secret_and_the_same_in_json_read_alike(secret: str) -> None:
    assert parse_secret(secret) == parse_secret(json.dumps({"secret": secret})) == secret


@given(st.binary(max_size=64))
def test_any_bytes_give_text_and_never_raise(stored: bytes) -> None:
    assert isinstance(parse_secret(stored), str)


@pytest.fixture
def secrets(mocked_aws: None) -> SecretsProvider:
    return SecretsProvider(boto3_client=boto3.client("secretsmanager"))


def test_a_missing_secret_is_unavailable_and_named_by_its_cause_only(secrets: SecretsProvider) -> None:
    with pytest.raises(SecretUnavailable) as raised:
        SecretStore(SECRET_ID, provider=secrets).get()
    # An exception's class name: the secret's id and the service's message stay out of the answer.
    assert re.fullmatch(r"[A-Za-z]+", str(raised.value)) and SECRET_ID not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_the_secret_is_cached_until_forgotten(secrets: SecretsProvider) -> None:
    client = boto3.client("secretsmanager")
    client.create_secret(Name=SECRET_ID, SecretString="first")
    store = SecretStore(SECRET_ID, provider=secrets)
    assert store.get() == "first"
    client.put_secret_value(SecretId=SECRET_ID, SecretString="rotated")
    assert store.get() == "first", "warm invocations read the cache"
    store.forget()  # the provider rejected "first"
    assert store.get() == "rotated"
    client.put_secret_value(SecretId=SECRET_ID, SecretString="rotated again")
    assert store.get() == "rotated", "only the next read after forget() is forced"
