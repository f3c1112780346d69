"""`make help` is generated from the Makefile's own `## ` descriptions, so it lists every target."""

import re
import subprocess
from pathlib import Path

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"
RULE = re.compile(r"^([a-z][a-z0-9-]*):(?!=)", re.MULTILINE)


def phony_targets() -> set[str]:
    declared = re.search(r"^\.PHONY:(.*)$", MAKEFILE.read_text(), re.MULTILINE)
    assert declared is not None
    return set(declared.group(1).split())


def test_every_rule_is_phony_and_described() -> None:
    text = MAKEFILE.read_text()
    rules = set(RULE.findall(text))
    assert rules == phony_targets()
    undescribed = [line for line in text.splitlines() if RULE.match(line) and " ## " not in line]
    assert undescribed == []


def test_make_help_lists_every_target_with_its_description() -> None:
    shown = subprocess.run(
        ["make", "--no-print-directory", "-f", str(MAKEFILE), "help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    listed = dict(re.findall(r"^  make (\S+)\s+(.+)$", shown, re.MULTILINE))
    assert set(listed) == phony_targets()
    assert listed["test"].startswith("run every test")
