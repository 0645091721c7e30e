"""Helpers shared by every test folder (import them from here, never from a conftest)."""
