"""VM names of an event: slug, participant number and template, DNS-safe and unique.

`<slug>-<NNN>-<template>` (participant zero-padded to three digits, underscores and other
non-DNS characters replaced through `names.dns_name`), at most 63 characters. Two
templates whose names clean up to the same text get their position appended, and a name
another event already uses (slugs `ab_c` and `ab-c` both give `ab-c`) gets a short
suffix from the event id, so every name is unique.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from openvle_core.names import MAX_NAME, dns_name

TEMPLATE_PART = 40


@dataclass(frozen=True, slots=True)
class PlannedVm:
    """One VM an event wants: participant (1-based), template id and its name."""

    participant: int
    template_id: str
    name: str


def template_parts(template_names: Sequence[str]) -> list[str]:
    """The DNS-safe name part of each template, made distinct by position if needed."""
    parts = [dns_name(name)[:TEMPLATE_PART].strip("-") for name in template_names]
    seen: dict[str, int] = {}
    for part in parts:
        seen[part] = seen.get(part, 0) + 1
    return [f"{p}-t{i + 1}" if seen[p] > 1 else p for i, p in enumerate(parts)]


def vm_name(slug: str, participant: int, template_part: str, suffix: str = "") -> str:
    """`<slug>-<NNN>-<template>[-<suffix>]`, DNS-safe, at most 63 characters."""
    tail = f"-{suffix}" if suffix else ""
    head = dns_name(f"{slug}-{participant:03d}")
    room = MAX_NAME - len(head) - len(tail) - 1
    return f"{head}-{template_part[:room].strip('-')}{tail}"


def plan_names(
    slug: str,
    event_id: str,
    participants: int,
    templates: Sequence[tuple[str, str]],
    taken: Collection[str] = (),
) -> list[PlannedVm]:
    """Every VM of the event, participant-major; `templates` is (id, name) in order and
    `taken` the names other events' VMs already use."""
    parts = template_parts([name for _, name in templates])
    suffix = event_id.replace("-", "")[-4:] if _clash(slug, participants, parts, taken) else ""
    return [
        PlannedVm(p, template_id, vm_name(slug, p, part, suffix))
        for p in range(1, participants + 1)
        for (template_id, _), part in zip(templates, parts, strict=True)
    ]


def _clash(slug: str, participants: int, parts: Sequence[str], taken: Collection[str]) -> bool:
    if not taken:
        return False
    return any(
        vm_name(slug, p, part) in taken for p in range(1, participants + 1) for part in parts
    )
