"""`make deploy`: the guided first deploy asks five questions and saves them where `sam deploy` reads."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
from captcha_deploy import cli
from captcha_local.resources import TEMPLATE

REPO = TEMPLATE.parent


class Script:
    """Answers the questions in order and remembers what was asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, question: str, default: str) -> str:
        self.asked.append(question)
        answer = self.answers.pop(0)
        return answer or default


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    shutil.copy(REPO / "samconfig.toml", tmp_path / "samconfig.toml")
    return tmp_path


def _deploy_parameters(config_dir: Path) -> dict:
    return tomllib.loads((config_dir / "samconfig.toml").read_text())["default"]["deploy"]["parameters"]


def test_first_deploy_asks_five_questions_saves_them_and_runs_sam_deploy(config_dir: Path) -> None:
    script = Script("my-forms", "eu-west-1", "byebot", "https://www.example.com", "ops@example.com")
    commands: list[list[str]] = []
    code = cli.main([], ask=script, run=lambda c: commands.append(c) or 0, config_dir=config_dir)
    assert code == 0
    assert len(script.asked) == 5
    assert commands == [["sam", "deploy"]]
    saved = _deploy_parameters(config_dir)
    assert saved["stack_name"] == "my-forms"
    assert saved["region"] == "eu-west-1"
    overrides = dict(item.split("=", 1) for item in saved["parameter_overrides"])
    assert overrides["EnableByeBot"] == "true"
    assert [k for k, v in overrides.items() if k.startswith("Enable") and v == "false"] == [
        "EnableCaptchaCat",
        "EnableSwetrix",
        "EnableYCaptcha",
        "EnableFriendlyCaptcha",
    ]
    assert overrides["AllowedOrigins"] == "https://www.example.com"
    assert overrides["AlarmEmail"] == "ops@example.com"
    # what was there before is kept (capabilities, changeset confirmation, the language-extensions flag)
    assert saved["language_extensions"] is True and saved["confirm_changeset"] is True


def test_second_deploy_asks_nothing(config_dir: Path) -> None:
    cli.main([], ask=Script("", "", "", "", ""), run=lambda c: 0, config_dir=config_dir)
    silent = Script()
    commands: list[list[str]] = []
    cli.main(
        ["--", "--no-confirm-changeset"],
        ask=silent,
        run=lambda c: commands.append(c) or 0,
        config_dir=config_dir,
    )
    assert silent.asked == []
    assert commands == [["sam", "deploy", "--no-confirm-changeset"]]


def test_defaults_deploy_every_provider_to_any_origin(config_dir: Path) -> None:
    cli.main([], ask=Script("", "", "", "", ""), run=lambda c: 0, config_dir=config_dir)
    saved = _deploy_parameters(config_dir)
    assert saved["region"] == cli.default_region()
    overrides = dict(item.split("=", 1) for item in saved["parameter_overrides"])
    assert {k: v for k, v in overrides.items() if k.startswith("Enable")} == {
        f"Enable{cli.parameter_prefix(p)}": "true" for p in cli.FUNCTIONS
    }
    assert overrides["AllowedOrigins"] == "" and overrides["AlarmEmail"] == ""


def test_a_wrong_answer_is_asked_again_with_the_reason(config_dir: Path, capsys) -> None:
    script = Script("", "", "recaptcha", "swetrix", "example.com", "https://example.com", "nope", "")
    cli.main([], ask=script, run=lambda c: 0, config_dir=config_dir)
    assert len(script.asked) == 8
    err = capsys.readouterr().err
    assert "unknown provider(s) recaptcha" in err and "is not an origin" in err and "is not an email" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", tuple(cli.FUNCTIONS)), ("all", tuple(cli.FUNCTIONS)), ("Swetrix, byebot", ("byebot", "swetrix"))],
)
def test_parse_providers(text: str, expected: tuple[str, ...]) -> None:
    assert cli.parse_providers(text) == expected


def test_overrides_name_only_template_parameters(config_dir: Path) -> None:
    answers = cli.Answers("s", "r", ("byebot",), "", "a@example.com")
    overrides = cli.parameter_overrides(answers, {"AlarmEmail": {}})
    assert "AlarmEmail=a@example.com" in overrides
    assert not [o for o in overrides if o.startswith("NotificationEmail=")]
    assert "NotificationEmail=a@example.com" in cli.parameter_overrides(answers, {"NotificationEmail": {}})
