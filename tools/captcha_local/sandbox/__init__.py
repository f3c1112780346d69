"""Local stand-in for the CAPTCHA providers' verify APIs.

It issues tokens to a stand-in widget, enforces single use and
the 300 s lifetime, checks secrets and site keys, and answers with each provider's real
statuses and bodies, traps included (yCAPTCHA burning a token on a wrong secret, Swetrix
hiding a wrong secret behind "Could not decrypt token", Captcha Cat's empty 200, Turnstile's
test keys and idempotency key, ...).

It serves ``make local`` (the demo page's widgets get tokens here and the Lambdas verify
here) and the integration tests, which can also inject raw faults and read back which
verify calls arrived. All state lives in memory inside one app; nothing here ever logs or
records a secret or a raw token.

One module per provider protocol, mirroring the layer's ``captcha_verify.providers``
(``rayengine``, ``swetrix``, ``ycaptcha``, ``friendly``, ``turnstile``); ``common`` holds what they
share and ``app`` the routes around them. Run it with ``python -m captcha_local.sandbox --port 3001``.
"""

from captcha_local.sandbox.app import (
    PROVIDERS,
    SANDBOX_CREDENTIALS,
    SANDBOXES,
    VERIFY_ROUTES,
    create_app,
    main,
    parse_args,
)
from captcha_local.sandbox.common import Credentials

__all__ = [
    "PROVIDERS",
    "SANDBOXES",
    "SANDBOX_CREDENTIALS",
    "VERIFY_ROUTES",
    "Credentials",
    "create_app",
    "main",
    "parse_args",
]
