"""Validation messages in words: a field's rule as a person reads it, not as a regex.

pydantic reports a pattern mismatch as "String should match pattern '^[a-z0-9_-]{4,8}$'",
which tells a newcomer little. `readable_message` rewrites that one kind of error into the
rule ("must be 4-8 characters of a-z, 0-9, _ and -") for the simple patterns our schemas
use (one character class, repeated); every other message is already in words and is kept.
`validation_detail` puts each field beside its own message in the problem's `detail`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_SIMPLE = re.compile(r"^\^\[(?P<chars>(?:\\.|[^\]\\])+)\](?P<count>\{\d+(?:,\d*)?\}|[+*])\$$")
_RANGE = re.compile(r"(\w)-(\w)")
_SHORTHAND = re.compile(r"\\[A-Za-z]")


def readable_message(error: Mapping[str, Any]) -> str:
    """pydantic's message for one error, with a pattern mismatch said as its rule."""
    message = str(error.get("msg", ""))
    if error.get("type") != "string_pattern_mismatch":
        return message
    pattern = str((error.get("ctx") or {}).get("pattern", ""))
    rule = pattern_in_words(pattern)
    return f"must be {rule}" if rule else f"must match the pattern {pattern}"


def validation_detail(items: Sequence[Mapping[str, Any]]) -> str:
    """The problem's `detail`: each field with its rule, "slug: must be ...; name: ..."."""
    if not items:
        return "invalid request"
    return "; ".join(f"{_field(item['loc'])}: {item['msg']}" for item in items)


def _field(loc: Sequence[Any]) -> str:
    """`["body", "slug"]` -> "slug"; `["query", "limit"]` -> "limit"; a whole body -> "body"."""
    return ".".join(map(str, loc[1:] or loc))


def pattern_in_words(pattern: str) -> str | None:
    """`^[a-z0-9_-]{4,8}$` as "4-8 characters of a-z, 0-9, _ and -" (None: not simple)."""
    match = _SIMPLE.match(pattern)
    if match is None or match["chars"].startswith("^") or _SHORTHAND.search(match["chars"]):
        return None  # a negated class, or \d, \w ...: not said in words here
    return f"{_count(match['count'])} of {_chars(match['chars'])}"


def _count(quantifier: str) -> str:
    """`{4,8}` -> "4-8 characters", `{3}` -> "3 characters", `+` -> "1 or more characters"."""
    if quantifier in {"+", "*"}:
        return "1 or more characters" if quantifier == "+" else "any number of characters"
    low, sep, high = quantifier.strip("{}").partition(",")
    if not sep:
        return f"{low} characters"
    return f"{low} or more characters" if not high else f"{low}-{high} characters"


def _chars(chars: str) -> str:
    """The members of a character class, listed: ranges first, then single characters."""
    chars = chars.replace("\\", "")
    ranges = [f"{a}-{b}" for a, b in _RANGE.findall(chars)]
    singles = list(_RANGE.sub("", chars))
    items = ranges + singles
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
