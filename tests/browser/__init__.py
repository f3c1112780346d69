"""Browser tests of the demo page (a package, so its conftest never shadows tests/conftest.py)."""
