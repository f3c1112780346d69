"""`make deploy`: credentials first, then (the first time) seven questions saved where `sam` reads
them, and nothing else changed in samconfig.toml."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
from captcha_deploy import cli
from captcha_local.resources import TEMPLATE
from captcha_verify.providers import REGISTRY

REPO = TEMPLATE.parent
BUILD_AND_DEPLOY = [["sam", "build"], ["sam", "deploy"]]


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


def _tables(config_dir: Path) -> dict[str, Any]:
    return tomllib.loads((config_dir / "samconfig.toml").read_text())


def _overrides(config_dir: Path) -> dict[str, str]:
    saved = _tables(config_dir)["default"]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in saved)


def deploy(config_dir: Path, argv: list[str], script: Script, **kwargs: Any) -> tuple[int, list[list[str]]]:
    commands: list[list[str]] = []
    kwargs.setdefault("credentials", lambda region: None)
    kwargs.setdefault("interactive", lambda: True)
    code = cli.main(argv, ask=script, run=lambda c: commands.append(c) or 0, config_dir=config_dir, **kwargs)
    return code, commands


def test_first_deploy_asks_seven_questions_saves_exactly_the_answers_and_builds_then_deploys(
    config_dir: Path,
) -> None:
    before = _tables(config_dir)
    script = Script(
        "my-forms",
        "eu-west-1",
        "byebot",
        "https://www.example.com",
        "ops@example.com",
        "https://www.example.com/thanks",
        "",
    )
    code, commands = deploy(config_dir, [], script)
    assert code == 0 and len(script.asked) == 7
    assert commands == BUILD_AND_DEPLOY
    after = _tables(config_dir)
    # Exactly the answers: stack and region where every sam command reads them, the overrides
    # where sam deploy does; every other table and key as it was (nothing moved between tables).
    expected = tomllib.loads((REPO / "samconfig.toml").read_text())
    expected["default"]["global"]["parameters"] |= {"stack_name": "my-forms", "region": "eu-west-1"}
    expected["default"]["deploy"]["parameters"]["parameter_overrides"] = after["default"]["deploy"][
        "parameters"
    ]["parameter_overrides"]
    assert after == expected
    assert before["staging"] == after["staging"] and before["prod"] == after["prod"]
    overrides = _overrides(config_dir)
    assert overrides["EnableByeBot"] == "true"
    assert [k for k, v in overrides.items() if k.startswith("Enable") and v == "false"] == [
        f"Enable{provider.prefix}" for provider in REGISTRY if provider.name != "byebot"
    ]
    assert overrides["AllowedOrigins"] == "https://www.example.com"
    assert overrides["AlarmEmail"] == "ops@example.com"
    assert overrides["SuccessRedirectUrl"] == "https://www.example.com/thanks"
    assert "FailureRedirectUrl" not in overrides


def test_the_saved_file_is_read_by_sam_cli_as_the_answers_and_nothing_more(config_dir: Path) -> None:
    from samcli.lib.config.samconfig import SamConfig

    deploy(config_dir, [], Script("my-forms", "eu-west-1", "", "", "", "", ""))
    config = SamConfig(str(config_dir))
    deploy_parameters = config.get_all(["deploy"], "parameters")
    assert deploy_parameters["stack_name"] == "my-forms" and deploy_parameters["region"] == "eu-west-1"
    delete_parameters = SamConfig(str(config_dir)).get_all(["delete"], "parameters")
    assert delete_parameters == {"stack_name": "my-forms", "region": "eu-west-1"}
    build_parameters = SamConfig(str(config_dir)).get_all(["build"], "parameters")
    assert "capabilities" not in build_parameters and "confirm_changeset" not in build_parameters


def test_second_deploy_asks_nothing(config_dir: Path) -> None:
    deploy(config_dir, [], Script(*[""] * 7))
    silent = Script()
    code, commands = deploy(config_dir, ["--", "--no-confirm-changeset"], silent)
    assert code == 0 and silent.asked == []
    assert commands == [["sam", "build"], ["sam", "deploy", "--no-confirm-changeset"]]


def test_defaults_deploy_every_provider_to_any_origin(config_dir: Path) -> None:
    deploy(config_dir, [], Script(*[""] * 7))
    assert _tables(config_dir)["default"]["global"]["parameters"]["region"] == cli.default_region()
    overrides = _overrides(config_dir)
    assert {k: v for k, v in overrides.items() if k.startswith("Enable")} == {
        f"Enable{cli.parameter_prefix(p)}": "true" for p in cli.FUNCTIONS
    }
    assert overrides["AllowedOrigins"] == "" and overrides["AlarmEmail"] == ""
    assert "SuccessRedirectUrl" not in overrides


def test_a_wrong_answer_is_asked_again_with_the_reason(config_dir: Path, capsys) -> None:
    script = Script(
        "",
        "",
        "recaptcha",
        "swetrix",
        "example.com",
        "https://example.com",
        "nope",
        "",
        "http://example.com/thanks",
        "https://evil.example/thanks",
        "https://example.com/thanks",
        "",
    )
    code, _ = deploy(config_dir, [], script)
    assert code == 0 and len(script.asked) == 12
    err = capsys.readouterr().err
    assert "unknown provider(s) recaptcha" in err and "is not an origin" in err and "is not an email" in err
    assert "is not an https URL" in err and "is not on an allowed origin (https://example.com)" in err


def test_without_credentials_nothing_is_asked_built_or_saved(config_dir: Path, capsys) -> None:
    before = (config_dir / "samconfig.toml").read_text()
    script = Script()
    code, commands = deploy(config_dir, [], script, credentials=lambda region: "No AWS credentials found.")
    assert code == 2 and script.asked == [] and commands == []
    assert "No AWS credentials found." in capsys.readouterr().err
    assert (config_dir / "samconfig.toml").read_text() == before


def test_no_credentials_message_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    message = cli.check_credentials("eu-west-1")
    assert message is not None and "aws configure" in message and "docs/deploy.md" in message


def test_without_a_terminal_it_says_how_to_answer_with_options(config_dir: Path, capsys) -> None:
    before = (config_dir / "samconfig.toml").read_text()
    code, commands = deploy(config_dir, [], Script(), interactive=lambda: False)
    assert code == 2 and commands == []
    err = capsys.readouterr().err
    assert "--stack-name" in err and "Traceback" not in err
    assert (config_dir / "samconfig.toml").read_text() == before


def test_answers_given_as_options_need_no_terminal(config_dir: Path) -> None:
    argv = [
        "--stack-name=forms",
        "--region=eu-central-1",
        "--providers=swetrix",
        "--origins=https://www.example.com",
        "--failure-url=https://www.example.com/sorry",
    ]
    code, commands = deploy(config_dir, argv, Script(), interactive=lambda: False)
    assert code == 0 and commands == BUILD_AND_DEPLOY
    overrides = _overrides(config_dir)
    assert overrides["EnableSwetrix"] == "true" and overrides["EnableByeBot"] == "false"
    assert overrides["FailureRedirectUrl"] == "https://www.example.com/sorry"
    assert _tables(config_dir)["default"]["global"]["parameters"]["stack_name"] == "forms"


def test_a_wrong_option_is_refused_before_anything_is_saved(config_dir: Path, capsys) -> None:
    before = (config_dir / "samconfig.toml").read_text()
    argv = ["--origins=https://www.example.com", "--success-url=https://elsewhere.example/ok"]
    code, commands = deploy(config_dir, argv, Script(), interactive=lambda: False)
    assert code == 2 and commands == []
    assert "is not on an allowed origin" in capsys.readouterr().err
    assert (config_dir / "samconfig.toml").read_text() == before


def test_end_of_input_mid_questions_saves_nothing_and_prints_no_traceback(config_dir: Path, capsys) -> None:
    before = (config_dir / "samconfig.toml").read_text()

    def closed(question: str, default: str) -> str:
        raise EOFError

    code = cli.main(
        [],
        ask=closed,
        run=lambda c: 0,
        config_dir=config_dir,
        credentials=lambda r: None,
        interactive=lambda: True,
    )
    assert code == 130
    assert "nothing was deployed" in capsys.readouterr().err
    assert (config_dir / "samconfig.toml").read_text() == before


def test_a_named_environment_asks_nothing(config_dir: Path) -> None:
    script = Script()
    code, commands = deploy(config_dir, ["--", "--config-env", "staging"], script)
    assert code == 0 and script.asked == []
    assert commands == [["sam", "build"], ["sam", "deploy", "--config-env", "staging"]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", tuple(cli.FUNCTIONS)), ("all", tuple(cli.FUNCTIONS)), ("Swetrix, byebot", ("byebot", "swetrix"))],
)
def test_parse_providers(text: str, expected: tuple[str, ...]) -> None:
    assert cli.parse_providers(text) == expected


@pytest.mark.parametrize(
    ("url", "origins", "ok"),
    [
        ("", "https://a.example", True),
        ("https://a.example/thanks", "https://a.example", True),
        ("https://a.example/thanks", "", True),
        ("https://b.example/thanks", "https://a.example", False),
        ("http://a.example/thanks", "", False),
        ("javascript:alert(1)", "", False),
        ('https://a.example/x"onload=', "", False),
    ],
)
def test_pages_must_be_https_on_an_allowed_origin(url: str, origins: str, ok: bool) -> None:
    if ok:
        cli.check_page(url, origins)
    else:
        with pytest.raises(ValueError):
            cli.check_page(url, origins)


def test_overrides_name_only_template_parameters() -> None:
    answers = cli.Answers("s", "r", ("byebot",), "", "a@example.com")
    overrides = cli.parameter_overrides(answers, {"AlarmEmail": {}})
    assert "AlarmEmail=a@example.com" in overrides
    assert not [o for o in overrides if o.startswith("NotificationEmail=")]
    assert "NotificationEmail=a@example.com" in cli.parameter_overrides(answers, {"NotificationEmail": {}})
