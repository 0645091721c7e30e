"""Validation messages in words: simple patterns become rules, others keep their text."""

from __future__ import annotations

import pytest

from openvle_api.messages import pattern_in_words, readable_message


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"^[a-z0-9_-]{4,8}$", "4-8 characters of a-z, 0-9, _ and -"),
        (r"^[A-Za-z0-9\-]{3}$", "3 characters of A-Z, a-z, 0-9 and -"),
        (r"^[a-z]{2,}$", "2 or more characters of a-z"),
        (r"^[a-z.]+$", "1 or more characters of a-z and ."),
        (r"^[0-9]*$", "any number of characters of 0-9"),
    ],
)
def test_simple_patterns_in_words(pattern: str, words: str) -> None:
    assert pattern_in_words(pattern) == words


@pytest.mark.parametrize("pattern", [r"^[^a]{1,2}$", r"^[\w.]{1,4}$", r"^a|b$", r"[a-z]+"])
def test_other_patterns_are_not_guessed(pattern: str) -> None:
    assert pattern_in_words(pattern) is None
    error = {"type": "string_pattern_mismatch", "msg": "x", "ctx": {"pattern": pattern}}
    assert readable_message(error) == f"must match the pattern {pattern}"


def test_other_messages_are_kept() -> None:
    error = {"type": "less_than_equal", "msg": "Input should be less than or equal to 1000"}
    assert readable_message(error) == "Input should be less than or equal to 1000"
