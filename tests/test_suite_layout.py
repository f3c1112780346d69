"""The test suite's own seams: a test module imports the code under test and the tests/support
package, never another test module, a conftest, or a sibling test folder (fixtures reach tests
through pytest, shared helpers through `support`)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SHARED = "support"


def local_roots(tests: Path) -> frozenset[str]:
    """Top-level names a test could import from the test tree itself, besides `support`."""
    names = {entry.stem if entry.suffix == ".py" else entry.name for entry in tests.iterdir()}
    return frozenset(name for name in names if not name.startswith((".", "__")) and name != SHARED)


def sideways_imports(source: str, roots: frozenset[str]) -> list[str]:
    """Each import of `source` that reaches into the test tree other than through `support`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            modules = ["." * node.level + (node.module or "")]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            root = module.split(".")[0]
            if module.startswith(".") or root in roots or root == "conftest" or root.startswith("test_"):
                found.append(module)
    return found


def test_the_check_sees_every_kind_of_sideways_import() -> None:
    source = "\n".join(
        [
            "from conftest import NOW",
            "from test_handler import SECRETS",
            "import test_delivery",
            "from unit.test_handler import body_of",
            "from .local_harness import Harness",
            "from support.answers import SECRETS",
            "from captcha_verify.config import Settings",
            "import pytest",
        ]
    )
    roots = frozenset({"unit", "conftest"})
    assert sideways_imports(source, roots) == [
        "conftest",
        "test_handler",
        "test_delivery",
        "unit.test_handler",
        ".local_harness",
    ]


def test_the_test_tree_has_the_folders_a_test_could_reach_into() -> None:
    assert {"conftest", "unit", "tools", "integration"} <= local_roots(TESTS)
    assert SHARED not in local_roots(TESTS)


def test_no_test_module_imports_another_test_module_or_a_conftest() -> None:
    roots = local_roots(TESTS)
    offenders = {
        str(path.relative_to(TESTS)): found
        for path in sorted(TESTS.rglob("*.py"))
        if (found := sideways_imports(path.read_text(encoding="utf-8"), roots))
    }
    assert offenders == {}, "import shared helpers from tests/support instead"
