"""The notifications function: all logic lives in the shared layer."""

from captcha_verify.notifications.consumer import build_handler

lambda_handler = build_handler()
