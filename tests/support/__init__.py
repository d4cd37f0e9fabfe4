"""Helpers and fixture plugins the tests share (registered in tests/conftest.py)."""
