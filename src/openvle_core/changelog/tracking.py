"""Set a row's attributes and describe each tracked change for the changelog (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openvle_core.changelog.repository import Change
from openvle_core.db.enums import ChangeSource
from openvle_core.db.models import Template, Vm

if TYPE_CHECKING:
    pass


def apply_changes(
    row: Vm | Template,
    entity: str,
    entity_id: str,
    fields: dict[str, Any],
    tracked: tuple[str, ...],
) -> list[Change]:
    """Set the attributes and describe the tracked ones that changed."""
    changes: list[Change] = []
    for name, value in fields.items():
        old = getattr(row, name)
        if old == value:
            continue
        setattr(row, name, value)
        if name in tracked:
            changes.append(
                Change(entity, entity_id, name, _text(old), _text(value), ChangeSource.OPERATION)
            )
    return changes


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
