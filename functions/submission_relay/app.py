"""The submission relay function (store stream -> bus): all logic lives in the shared layer."""

from captcha_verify.relay import build_relay_handler

lambda_handler = build_relay_handler()
