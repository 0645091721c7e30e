"""`openvle plan EVENT`: will the event fit? Its deploy, dry-run against the last sync."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from openvle_cli.settings import ready_settings_or_exit
from openvle_core.db.session import engine_from_settings, session_factory
from openvle_core.errors import OpenVLEError
from openvle_core.events.plan import EventPlan, plan_event
from openvle_core.events.repository import EventRepository
from openvle_core.settings import Settings


async def plan_of(settings: Settings, event: str) -> EventPlan:
    """The plan of the event with this id or slug (EventNotFound otherwise)."""
    engine = engine_from_settings(settings.database)
    try:
        async with session_factory(engine)() as session:
            row = await EventRepository(session).get_by_slug(event)
            return await plan_event(session, settings, row.id if row else event)
    finally:
        await engine.dispose()


def as_dict(plan: EventPlan) -> dict[str, Any]:
    """The plan as the API shows it."""
    return {"fits": plan.fits, **dataclasses.asdict(plan)}


def show(plan: EventPlan, console: Console) -> None:
    """The plan as tables: nodes, storages, addresses, then problems and notes."""
    verdict = "[green]fits[/green]" if plan.fits else "[red]does not fit[/red]"
    minutes = plan.estimated_duration_s / 60
    console.print(f"{plan.vms} VMs: {verdict}; about {minutes:.1f} min ({plan.duration_basis})")
    nodes = Table("node", "new VMs", "free memory MiB", "free cores", title="Nodes")
    for n in plan.nodes:
        memory = f"{n.memory_free_mb_before:,} -> {n.memory_free_mb_after:,}"
        cores = f"{n.cpu_free_before:g} -> {n.cpu_free_after:g}"
        nodes.add_row(n.name if n.online else f"{n.name} (offline)", str(n.new_vms), memory, cores)
    console.print(nodes)
    if plan.storages:
        storages = Table("storage", "node", "needed MiB", "free MiB", title="Full clones")
        for s in plan.storages:
            storages.add_row(s.storage, s.node or "(shared)", f"{s.needed_mb:,}", f"{s.free_mb:,}")
        console.print(storages)
    if plan.addresses is not None:
        console.print(
            f"static addresses: {plan.addresses.needed} needed, {plan.addresses.free} free"
        )
    for problem in plan.problems:
        console.print(f"[red]problem[/red]: {problem}")
    for note in plan.notes:
        console.print(f"note: {note}")


def command(
    event: Annotated[str, typer.Argument(help="The event's id or slug.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Will EVENT fit? Where its VMs would go, what is left, how long it would take.

    A dry run of the deploy against what the last sync saw (no Proxmox call). Exits 1 when
    the event does not fit (the deploy would answer 409 without ?force=true)."""
    settings = ready_settings_or_exit()
    try:
        plan = asyncio.run(plan_of(settings, event))
    except OpenVLEError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(as_dict(plan), indent=2))
    else:
        show(plan, Console(emoji=False))
    raise typer.Exit(0 if plan.fits else 1)
