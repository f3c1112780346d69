"""The provider secret, read through Powertools Parameters and cached across invocations."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from captcha_verify.aws_clients import client

# Long enough that warm invocations never call Secrets Manager, short enough that a rotated
# secret is picked up within minutes; a rejected secret is refetched at once (see `forget`).
SECRET_MAX_AGE_SECONDS = 300


class SecretUnavailable(Exception):
    """Secrets Manager did not give us the secret (missing, access denied, throttled)."""


def parse_secret(value: str | bytes | None) -> str:
    """The secret from a plain string or a JSON object {"secret": "..."}; "" when there is none."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not value:
        return ""
    text = value.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            return text
        secret = document.get("secret") if isinstance(document, dict) else None
        return secret.strip() if isinstance(secret, str) else ""
    return text


@dataclass
class SecretStore:
    secret_id: str
    provider: SecretsProvider | None = None
    max_age: int = SECRET_MAX_AGE_SECONDS
    _force_next: bool = field(default=False, init=False)

    def get(self) -> str:
        # The boto3 client is made on first use, not at import, so cold starts that fail a cheap
        # check never pay for it and tests need no reload.
        if self.provider is None:
            self.provider = SecretsProvider(boto3_client=client("secretsmanager"))
        try:
            value = self.provider.get(self.secret_id, max_age=self.max_age, force_fetch=self._force_next)
        except GetParameterError as error:
            raise SecretUnavailable(type(error.__cause__ or error).__name__) from None
        self._force_next = False
        return parse_secret(value if isinstance(value, str | bytes) else None)

    def forget(self) -> None:
        """The provider rejected the cached secret: the next request reads it afresh."""
        self._force_next = True
