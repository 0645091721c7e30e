"""Markdown helpers shared by the reference generators."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def cell(text: object) -> str:
    """One table cell: single line, pipes escaped (outside code spans they split cells)."""
    flat = " ".join(str(text).split())
    return flat.replace("|", "\\|")


def code(text: object) -> str:
    """Inline code for a table cell (pipes need no escape inside it); empty stays empty."""
    shown = " ".join(str(text).split())
    if not shown:
        return ""
    fence = "``" if "`" in shown else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table (cells are taken as they are: pass them through `cell`/`code`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def first_paragraph(doc: str | None) -> str:
    """The first paragraph of a docstring, on one line."""
    if not doc:
        return ""
    return " ".join(doc.strip().split("\n\n", 1)[0].split())
