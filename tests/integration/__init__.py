"""Integration tests against the local stack (a package, so its conftest never shadows tests/conftest.py)."""
