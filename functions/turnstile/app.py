"""The turnstile verification function: all logic lives in the shared layer."""

from captcha_verify.entrypoint import build_handler

lambda_handler = build_handler("turnstile")
