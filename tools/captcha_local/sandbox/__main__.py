"""``python -m captcha_local.sandbox``: serve the provider sandbox."""

from captcha_local.sandbox.app import main

main()
