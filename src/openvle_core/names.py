"""Names: DNS-safe guest names, and the text rules of names people type.

A VM name is what Proxmox accepts as one (its `dns-name` format), lower-cased to
`[a-z0-9-]`. Letters outside ASCII are transliterated first, never dropped: accents are
removed (`é` -> `e`, through Unicode's NFKD decomposition) and Cyrillic and Greek
letters are written in Latin (`аdmin` with a Cyrillic `а` is `admin`, `Жук` is
`zhuk`); what is still not `[a-z0-9]` becomes a hyphen. `name_change` says in words
when the name given is not the name used, so the API can tell the caller.

`text_problem` finds control characters, bidirectional overrides and lone surrogates in
names and descriptions: they hide or reorder what a reader sees (`admin`, U+202E,
`gnp.exe` shows as `adminexe.png`) or break logs and terminals; the domains refuse such
text with 422.
"""

from __future__ import annotations

import re
import unicodedata

from openvle_core.errors import InvalidRequest

MAX_NAME = 63

# Latin spellings of Cyrillic and Greek letters (after accents are removed: й -> и -> i),
# and of Latin letters NFKD does not decompose.
_TABLE = """
а a  б b  в v  г g  д d  е e  ж zh  з z  и i  к k  л l  м m  н n  о o  п p  р r  с s
т t  у u  ф f  х kh  ц ts  ч ch  ш sh  щ shch  ы y  э e  ю yu  я ya  і i  є ye  ґ g
ј j  љ lj  њ nj  ћ c  џ dz  ђ dj  ѕ dz
α a  β v  γ g  δ d  ε e  ζ z  η i  θ th  ι i  κ k  λ l  μ m  ν n  ξ x  ο o  π p  ρ r
σ s  ς s  τ t  υ y  φ f  χ ch  ψ ps  ω o
ß ss  æ ae  œ oe  ø o  đ d  ð d  ł l  þ th  ı i
"""
_PAIRS = _TABLE.split()
TRANSLITERATION = {**dict(zip(_PAIRS[::2], _PAIRS[1::2], strict=True)), "ъ": "", "ь": ""}

# Bidirectional formatting characters (Unicode's Bidi_Control property).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
TEXT_WHITESPACE = frozenset("\t\n\r")  # allowed in multi-line text (descriptions) only


def transliterate(text: str) -> str:
    """`text` in lower-case ASCII where a Latin spelling exists (other letters kept)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(TRANSLITERATION.get(c, c) for c in decomposed if not unicodedata.combining(c))


def dns_name(text: str) -> str:
    """A DNS-safe VM name (PVE's `dns-name`): lower case, [a-z0-9-], no edge hyphens."""
    name = re.sub(r"[^a-z0-9-]+", "-", transliterate(text)).strip("-")
    name = re.sub(r"-{2,}", "-", name)[:MAX_NAME].strip("-")
    if not name:
        raise InvalidRequest(
            f"{text!r} gives no usable VM name (letters, digits, hyphens)", field="name"
        )
    return name


def name_change(given: str, used: str) -> str | None:
    """Why `used` differs from the name the caller gave, in words; None if it does not."""
    if given == used:
        return None
    return (
        f"name {given!r} became {used!r}: VM names are DNS names (a-z, 0-9 and hyphens, "
        f"at most {MAX_NAME}); other letters are transliterated, other characters hyphens"
    )


def text_problem(text: str, *, multiline: bool = False) -> str | None:
    """What is wrong with `text` as a name or description, in words; None if nothing.

    Control characters, bidirectional formatting characters and lone surrogates are
    refused; tabs and line breaks pass only in `multiline` text (descriptions).
    """
    for index, char in enumerate(text):
        if multiline and char in TEXT_WHITESPACE:
            continue
        if unicodedata.category(char) in {"Cc", "Cs"} or char in BIDI_CONTROLS:
            return (
                "must not contain control or bidirectional formatting characters "
                f"(U+{ord(char):04X} at position {index})"
            )
    return None
