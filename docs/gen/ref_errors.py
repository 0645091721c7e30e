"""The errors reference: every problem `type` the API answers with, and its meaning.

Domain errors are found by importing every module of the service's packages and walking
the subclasses of `OpenVLEError`; each one's HTTP status comes from the one mapping
table, `openvle_api.errors.ERROR_TABLE` (most specific class first, as the API does),
and its meaning from its docstring. The problems the API layer raises itself are listed
beside them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass, field

from mdtable import cell, code, first_paragraph, table

PACKAGES = ("openvle_core", "openvle_api", "openvle_worker")

# Problems raised by the API layer itself (not domain errors): code -> (status, meaning).
API_PROBLEMS = {
    "validation_error": (
        422,
        "A parameter or body field is invalid (types are strict: `true`/`false` for "
        "booleans, whole numbers for integers, RFC 3339 text for date-times); `errors` "
        "lists each one as `{loc, msg}`.",
    ),
    "invalid_json": (
        400,
        "The body is not valid JSON; `line` and `column` (from 1) say where it breaks.",
    ),
    "unsupported_media_type": (
        415,
        "A body was sent without `Content-Type: application/json`; `Accept-Post` or "
        "`Accept-Patch` names the type to use.",
    ),
    "unauthorized": (401, "No API token, or an unknown, revoked or expired one."),
    "forbidden": (403, "The token's scope is too small; `detail` names the scope needed."),
    "internal_error": (500, "An unexpected error; it was logged, `detail` says nothing more."),
}
# Statuses the web framework raises itself; their code is derived from the title.
HTTP_STATUSES = {
    400: "The request could not be read.",
    404: "No such endpoint (`detail` names the method and path).",
    405: "The endpoint exists but not with this method; `Allow` lists the methods it has.",
    413: "The body is larger than `API_MAX_BODY_BYTES` (default 1 MiB); it was not read.",
}


@dataclass
class Problem:
    """One problem type: its status, title and the classes that raise it."""

    code: str
    status: int
    title: str
    classes: list[str] = field(default_factory=list)
    meanings: list[str] = field(default_factory=list)


def import_all() -> None:
    """Import every module of the packages, so every error class is defined."""
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            importlib.import_module(module.name)


def error_classes() -> Iterator[type[BaseException]]:
    """Every subclass of `OpenVLEError` (the root included), each once.

    The root is found in the API's mapping table (the entry every other entry derives
    from), so the page follows the domain errors wherever they are defined.
    """
    from openvle_api.errors import ERROR_TABLE

    roots = [c for c in ERROR_TABLE if all(issubclass(other, c) for other in ERROR_TABLE)]
    assert len(roots) == 1, f"no single root error class in ERROR_TABLE: {roots}"
    seen: set[type[BaseException]] = set()
    todo: list[type[BaseException]] = roots
    while todo:
        cls = todo.pop(0)
        if cls not in seen:
            seen.add(cls)
            yield cls
            todo.extend(cls.__subclasses__())


def mapped(cls: type[BaseException]) -> tuple[int, str]:
    """(status, title) the API answers `cls` with: the most specific table entry."""
    from openvle_api.errors import ERROR_TABLE, HTTP_TITLES

    for base in cls.__mro__:
        if base in ERROR_TABLE:
            return ERROR_TABLE[base]
    return 500, HTTP_TITLES[500]


def problems() -> list[Problem]:
    """Every problem type, domain errors and API-level ones, ordered by status and code."""
    from openvle_api.errors import HTTP_TITLES

    import_all()
    found: dict[str, Problem] = {}
    for cls in error_classes():
        code_ = str(getattr(cls, "code", "error"))
        status, title = mapped(cls)
        problem = found.setdefault(code_, Problem(code_, status, title))
        problem.classes.append(cls.__name__)
        meaning = first_paragraph(cls.__doc__)
        if meaning and meaning not in problem.meanings:
            problem.meanings.append(meaning)
    for code_, (status, meaning) in API_PROBLEMS.items():
        found.setdefault(code_, Problem(code_, status, HTTP_TITLES[status])).meanings.append(
            meaning
        )
    for status, meaning in HTTP_STATUSES.items():
        code_ = HTTP_TITLES[status].lower().replace(" ", "_")
        found.setdefault(code_, Problem(code_, status, HTTP_TITLES[status])).meanings.append(
            meaning
        )
    return sorted(found.values(), key=lambda p: (p.status, p.code))


def render_errors() -> str:
    """One table: type, status, title, the error classes, the meaning."""
    rows = [
        (
            code(f"urn:openvle:problem:{p.code}"),
            str(p.status),
            cell(p.title),
            cell(", ".join(code(c) for c in p.classes)),
            cell(" / ".join(p.meanings)),
        )
        for p in problems()
    ]
    return table(["type", "status", "title", "error class (`error.type`)", "meaning"], rows)
