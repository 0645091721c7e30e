"""The settings reference: every variable of `openvle_core.settings`, by group.

Only the public names of `openvle_core.settings` are used (`Settings`, `env_name`), so
the page follows the settings wherever their groups are defined.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from mdtable import cell, code, first_paragraph, table


def shown_default(info: FieldInfo) -> str:
    """The default as a reader would type it; secrets and empty values named so."""
    default: Any = info.get_default(call_default_factory=True)
    if isinstance(default, SecretStr):
        default = default.get_secret_value() or None
    if default is None:
        return "unset"
    if isinstance(default, list | tuple | set | frozenset):
        return code(", ".join(map(str, default))) if default else "empty"
    if isinstance(default, bool):
        return code(str(default).lower())
    return code(default) if str(default) != "" else "empty"


def is_secret(info: FieldInfo) -> bool:
    """True for `SecretStr` fields (possibly optional)."""
    return "SecretStr" in str(info.annotation)


def settings_rows() -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    """(group title, group description, [(variable, default, meaning)]) for every group."""
    from openvle_core.settings import Settings, env_name

    groups = []
    for field in Settings.model_fields.values():
        group = field.annotation
        assert isinstance(group, type)
        rows = []
        for name, info in group.model_fields.items():
            meaning = info.description or ""
            if is_secret(info):
                meaning += " Secret: never logged or returned."
            rows.append((env_name(group, name), shown_default(info), meaning))
        title = first_paragraph(group.__doc__).rstrip(".") or group.__name__
        groups.append((group.__name__, title, rows))
    return groups


def render_settings() -> str:
    """One table per settings group."""
    parts = []
    for name, title, rows in settings_rows():
        parts.append(f"### {cell(title)}\n\n<small>`{name}`</small>\n")
        body = [(code(var), default, cell(meaning)) for var, default, meaning in rows]
        parts.append(table(["variable", "default", "meaning"], body) + "\n")
    return "\n".join(parts)


def all_variables() -> list[str]:
    """Every environment variable the settings read (for checks)."""
    return [var for _, _, rows in settings_rows() for var, _, _ in rows]
