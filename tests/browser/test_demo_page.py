"""The demo site in headless Chromium: each provider's stand-in widget, the plain form post
(303 to thanks.html / error.html) and the fetch path, against the whole local stack."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 15_000  # every wait is bounded

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing (Debian's chromium package); browser tests never download a browser",
        allow_module_level=True,
    )

from captcha_local.stack import LocalDeployment  # noqa: E402
from captcha_verify.outcome import ErrorCode  # noqa: E402
from captcha_verify.providers import PROVIDERS  # noqa: E402
from captcha_verify.responses import EXPLANATIONS  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]


LOOPBACK = "127.0.0.1"


@pytest.fixture
def demo(page: Page, demo_stack: LocalDeployment) -> tuple[Page, list[str]]:
    """The page, with every request off loopback refused and remembered."""
    foreign: list[str] = []

    def guard(route: Any) -> None:
        if urlsplit(route.request.url).hostname == LOOPBACK:
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    page.context.route("**/*", guard)
    return page, foreign


def open_demo(page: Page, site: str) -> None:
    page.goto(f"{site}/", wait_until="load")
    # Every provider's widget script has rendered its stand-in button.
    expect(page.locator("[data-sandbox-provider]")).to_have_count(len(PROVIDERS), timeout=WAIT_MS)


def solve(page: Page, provider: str) -> None:
    section = page.locator(f"section#{provider}")
    widget = section.locator("[data-sandbox-provider]")
    expect(widget).to_have_attribute("data-state", "ready", timeout=WAIT_MS)
    widget.get_by_role("button", name="Sandbox: I'm not a robot").click()
    expect(widget).to_have_attribute("data-state", "solved", timeout=WAIT_MS)


def hidden_token(page: Page, provider: str) -> str:
    value = page.locator(f"section#{provider} form input[type=hidden]").input_value()
    assert value
    return value


@pytest.mark.parametrize("provider", PROVIDERS)
def test_demo_form_plain_post_fetch_and_repeated_token(
    demo: tuple[Page, list[str]],
    demo_stack: LocalDeployment,
    function_lines: list[tuple[str, str]],
    provider: str,
) -> None:
    page, foreign = demo
    site = demo_stack.url("site")

    # 1. Plain HTML form post: the API answers 303 to the thank-you page.
    open_demo(page, site)
    solve(page, provider)
    with page.expect_navigation(url=f"{site}/thanks.html", timeout=WAIT_MS):
        page.locator(f"section#{provider} .plain").click()
    expect(page.locator("#outcome")).to_have_attribute("data-outcome", "success", timeout=WAIT_MS)

    # 2. Back to the demo: the widget asks for a new solve (its token was spent), then the
    #    fetch path: a one-line summary and the JSON under the form.
    page.go_back(wait_until="load")
    open_demo(page, site)
    solve(page, provider)
    used = hidden_token(page, provider)
    page.locator(f"section#{provider} .fetch").click()
    result = page.locator(f"section#{provider} pre.result")
    expect(result).to_have_attribute("data-status", "200", timeout=WAIT_MS)
    expect(result).to_have_attribute("data-success", "true", timeout=WAIT_MS)
    expect(result).to_contain_text('"success": true', timeout=WAIT_MS)
    request_id = result.get_attribute("data-request-id")
    assert request_id and request_id != "n/a"
    expect(result.locator(".summary")).to_have_text(
        f"{provider} · HTTP 200 · verified · request {request_id}", timeout=WAIT_MS
    )

    # 3. The spent token left the form with the send; a stale copy posted again is a repeat of the
    # same submission, answered from the idempotency record (the thank-you page), not a false
    # "already used", and delivered no second time.
    widget = page.locator(f"section#{provider} [data-sandbox-provider]")
    expect(widget).to_have_attribute("data-state", "ready", timeout=WAIT_MS)
    assert page.locator(f"section#{provider} form input[type=hidden]").input_value() == ""
    page.locator(f"section#{provider} form input[type=hidden]").evaluate(
        "(input, token) => input.value = token", used
    )
    with page.expect_navigation(url=f"{site}/thanks.html", timeout=WAIT_MS):
        page.locator(f"section#{provider} .plain").click()
    expect(page.locator("#outcome")).to_have_attribute("data-outcome", "success", timeout=WAIT_MS)
    expect(page.locator("main")).to_contain_text("Your form was sent", timeout=WAIT_MS)

    # The function saw the browser's own Origin, asked the provider once, and logged the token by digest only.
    digest = hashlib.sha256(used.encode()).hexdigest()
    lines = [line for _, line in function_lines]
    verifications = [
        json.loads(line)
        for line in lines
        if line.startswith("{")
        and f'"token_sha256":"{digest}"' in line
        and '"message":"verification"' in line
    ]
    assert [(v["outcome"], v["origin"]) for v in verifications] == [("verified", site)]
    assert not [line for line in lines if used in line]
    assert foreign == []


def test_submission_appears_in_the_inbox_as_the_email_ses_received(
    demo: tuple[Page, list[str]], demo_stack: LocalDeployment
) -> None:
    page, foreign = demo
    site = demo_stack.url("site")
    open_demo(page, site)
    page.locator("section#byebot textarea[name=message]").fill('See you at the "meetup"\n<b>Bring snacks</b>')
    solve(page, "byebot")
    digest = hashlib.sha256(hidden_token(page, "byebot").encode()).hexdigest()

    # The plain form post (no JavaScript of the page involved), then back to the page's inbox.
    with page.expect_navigation(url=f"{site}/thanks.html", timeout=WAIT_MS):
        page.locator("section#byebot .plain").click()
    expect(page.locator("main")).to_contain_text("Your form was sent", timeout=WAIT_MS)
    page.goto(f"{site}/#inbox", wait_until="load")

    submission = page.locator(f'#inbox article[data-token-sha256="{digest}"]')
    expect(submission).to_have_count(1, timeout=WAIT_MS)
    expect(submission.locator("dl.fields")).to_contain_text("See you at the", timeout=WAIT_MS)
    expect(submission.locator("dl.fields")).not_to_contain_text("_gotcha")
    mail = submission.locator(".mail")
    expect(mail.locator("dl.headers")).to_contain_text("New submission from 127.0.0.1", timeout=WAIT_MS)
    expect(mail.locator("pre.email")).to_contain_text('message: See you at the "meetup"', timeout=WAIT_MS)
    expect(mail.locator("pre.email")).to_contain_text("  <b>Bring snacks</b>", timeout=WAIT_MS)
    # The HTML part renders in a sandboxed frame: the visitor's markup shows as text, never as bold.
    frame = mail.locator("iframe.email-html")
    expect(frame).to_have_attribute("sandbox", "")
    html_part = page.frame_locator(f'#inbox article[data-token-sha256="{digest}"] iframe.email-html')
    expect(html_part.locator("td").nth(1)).to_contain_text("<b>Bring snacks</b>", timeout=WAIT_MS)
    expect(html_part.locator("b")).to_have_count(0)
    expect(submission.locator("pre.webhook")).to_contain_text('"submission_id"', timeout=WAIT_MS)
    assert foreign == []


def test_demo_page_screenshot(
    demo: tuple[Page, list[str]], demo_stack: LocalDeployment, tmp_path: Path
) -> None:
    page, foreign = demo
    open_demo(page, demo_stack.url("site"))
    expect(page.locator("section.provider")).to_have_count(len(PROVIDERS), timeout=WAIT_MS)
    expect(page.locator("#mode")).to_contain_text("sandbox", timeout=WAIT_MS)

    shot = tmp_path / "demo-page.png"
    page.screenshot(path=str(shot), full_page=True, timeout=WAIT_MS)

    data = shot.read_bytes()
    assert len(data) > 1000
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert foreign == []


def test_back_after_a_plain_post_resets_the_widget_and_no_result_bar_shows_before_a_send(
    demo: tuple[Page, list[str]], demo_stack: LocalDeployment
) -> None:
    page, foreign = demo
    site = demo_stack.url("site")
    open_demo(page, site)
    expect(page.locator("pre.result")).to_have_count(len(PROVIDERS))
    for bar in page.locator("pre.result").all():
        expect(bar).to_be_hidden()

    solve(page, "byebot")
    with page.expect_navigation(url=f"{site}/thanks.html", timeout=WAIT_MS):
        page.locator("section#byebot .plain").click()
    page.go_back(wait_until="load")

    # Restored from the back/forward cache or loaded afresh, the widget wants a new solve.
    widget = page.locator("section#byebot [data-sandbox-provider]")
    expect(widget).to_have_attribute("data-state", "ready", timeout=WAIT_MS)
    tokens = page.locator("section#byebot form input[type=hidden]")
    assert all(value == "" for value in tokens.evaluate_all("(inputs) => inputs.map((i) => i.value)"))
    solve(page, "byebot")
    with page.expect_navigation(url=f"{site}/thanks.html", timeout=WAIT_MS):
        page.locator("section#byebot .plain").click()
    assert foreign == []


def test_error_page_explains_every_code(demo: tuple[Page, list[str]], demo_stack: LocalDeployment) -> None:
    page, _ = demo
    for code in ErrorCode:
        page.goto(f"{demo_stack.url('site')}/error.html?error={code.value}", wait_until="load")
        expect(page.locator("#error-code")).to_have_text(code.value)
        expect(page.locator("#explanation")).to_have_text(EXPLANATIONS[code.value])
