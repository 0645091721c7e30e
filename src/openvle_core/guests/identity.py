"""Whether the guest at a vmid is the one a row means: the evidence, the rule, the check.

A vmid is only an address: Proxmox hands a freed vmid to the next VM anyone creates, so
a row's vmid never proves who is there now, and neither does a name. Right after the
clone a row records its *evidence*, what only that guest carries:

- `vmgenid`: a random UUID Proxmox generates for each new VM and regenerates on every
  clone (qemu-server `clone_vm`), restore and snapshot rollback;
- the `meta` ctime, copied from the source on a clone but new on every create;
- the SMBIOS `serial` we write (our UUID) when SMBIOS metadata is on.

The rule (`mismatch`): every piece of evidence a row recorded must match the guest's
config; a row with evidence never falls back to its name. A row made before evidence
existed (`legacy`) is confirmed once by the old rule (serial, else name) and then records
its evidence. A row without evidence is confirmed by nothing. Before evidence exists, a
clone recognises its own result by the tag its clone request wrote into the description
(`openvle-clone: <uuid>`, see `is_our_clone`), never by the name.

`confirm` reads the config right before a destructive or state-changing call and raises
`IdentityMismatch` (counted by action) when the rule fails; callers write nothing first.
A vmid outside our pool is refused before any request (`OutsidePool`).
"""

from __future__ import annotations

from dataclasses import dataclass

from openvle_core import metrics
from openvle_core.db.enums import GuestIdentity
from openvle_core.db.models import Template, Vm
from openvle_core.guests.errors import IdentityMismatch, NotCloned
from openvle_core.guests.smbios import serial_of
from openvle_core.proxmox import OutsidePool, ProxmoxClient
from openvle_core.proxmox.models import VmConfig

CLONE_TAG = "openvle-clone: "
MAX_DESCRIPTION = 8192  # PVE's limit on a config's description
# A refused call is counted by its action (a short, bounded label) and named in words.
ACTION_WORDS = {
    "ha_add": "add to HA",
    "ha_remove": "remove from HA",
    "read_ip": "read the address of",
    "record": "record the state of",
}


@dataclass(frozen=True, slots=True)
class Marks:
    """What a guest's config says about which guest it is."""

    vmgenid: str | None = None
    ctime: int | None = None
    serial: str | None = None
    name: str | None = None
    description: str | None = None
    lock: str | None = None
    template: bool = False

    @classmethod
    def of(cls, config: VmConfig) -> Marks:
        """The marks of a config read from Proxmox."""
        return cls(
            vmgenid=_vmgenid(config.option("vmgenid")),
            ctime=meta_ctime(config.option("meta")),
            serial=serial_of(config.smbios1),
            name=config.name,
            description=config.description,
            lock=config.lock,
            template=config.template,
        )


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a row recorded about its guest (all None: nothing recorded yet)."""

    vmgenid: str | None = None
    ctime: int | None = None
    serial: str | None = None

    @property
    def recorded(self) -> bool:
        """True once any evidence is recorded (then the name is never used again)."""
        return any(v is not None for v in (self.vmgenid, self.ctime, self.serial))

    @classmethod
    def of(cls, marks: Marks, *, serial: str | None = None) -> Evidence:
        """The evidence a guest offers now; `serial` only when we wrote it."""
        return cls(vmgenid=marks.vmgenid, ctime=marks.ctime, serial=serial)

    def columns(self, *, serial: bool = True) -> dict[str, object]:
        """The row columns holding this evidence and the verdict `ours` (templates have
        no serial column: `serial=False`)."""
        values: dict[str, object] = {
            "identity": GuestIdentity.OURS.value,
            "identity_vmgenid": self.vmgenid,
            "identity_ctime": self.ctime,
        }
        if serial:
            values["identity_serial"] = self.serial
        return values


@dataclass(frozen=True, slots=True)
class Claim:
    """Who a row says its guest is: a VM (`uuid` = our VM id) or a template (no uuid);
    `template` None accepts either (a derived template's clone before and after it is
    converted)."""

    name: str
    evidence: Evidence
    uuid: str | None = None
    legacy: bool = False
    template: bool | None = False


def claim_of(row: Vm | Template) -> Claim:
    """The claim of a VM or template row."""
    legacy = row.identity == GuestIdentity.LEGACY
    if isinstance(row, Template):
        evidence = Evidence(row.identity_vmgenid, row.identity_ctime)
        return Claim(row.name, evidence, legacy=legacy, template=True)
    evidence = Evidence(row.identity_vmgenid, row.identity_ctime, row.identity_serial)
    return Claim(row.name, evidence, uuid=row.id, legacy=legacy)


def mismatch(claim: Claim, marks: Marks) -> str | None:
    """None when the guest is provably the claimed one; else why not, for people."""
    if claim.template is not None and marks.template != claim.template:
        return "it is a template" if marks.template else "it is not a template"
    evidence = claim.evidence
    if evidence.recorded:
        return _evidence_mismatch(evidence, marks)
    if claim.legacy:
        return _legacy_mismatch(claim, marks)
    return "no identity evidence was recorded for it (its clone did not finish)"


def _evidence_mismatch(evidence: Evidence, marks: Marks) -> str | None:
    pairs = (
        ("vmgenid", evidence.vmgenid, marks.vmgenid),
        ("creation time (meta ctime)", evidence.ctime, marks.ctime),
        ("SMBIOS serial", evidence.serial, marks.serial),
    )
    for what, recorded, found in pairs:
        if recorded is not None and found != recorded:
            return f"its {what} is {found!r}, ours is {recorded!r}"
    return None


def _legacy_mismatch(claim: Claim, marks: Marks) -> str | None:
    """The rule before evidence existed: our serial, or no serial and our name."""
    if claim.uuid is not None and marks.serial == claim.uuid:
        return None
    if claim.uuid is not None and marks.serial is not None:
        return f"its SMBIOS serial is {marks.serial!r}, not ours"
    if marks.name != claim.name:
        return f"its name is {marks.name!r}, not {claim.name!r}"
    return None


def clone_tag(uuid: str) -> str:
    """The line a clone request of ours writes into the new guest's description."""
    return f"{CLONE_TAG}{uuid}"


def clone_description(source: str | None, uuid: str) -> str:
    """The clone's description: the source's notes (kept for people) plus our tag."""
    tag = clone_tag(uuid)
    notes = (source or "").rstrip()[: MAX_DESCRIPTION - len(tag) - 2]
    return f"{notes}\n\n{tag}" if notes else tag


def is_our_clone(marks: Marks, uuid: str, *, finished: bool = True) -> bool:
    """The guest a clone request of ours made: our tag in its description (and, when
    `finished`, no lock). The serial is not asked: a clone keeps its source's."""
    if finished and marks.lock is not None:
        return False
    lines = {line.strip() for line in (marks.description or "").splitlines()}
    return clone_tag(uuid) in lines


def meta_ctime(meta: str | None) -> int | None:
    """`ctime` of a `meta` property string (`creation-qemu=9.2.0,ctime=1735689600`)."""
    for part in (meta or "").split(","):
        key, _, value = part.partition("=")
        if key.strip() == "ctime" and value.strip().isdigit():
            return int(value.strip())
    return None


def _vmgenid(value: str | None) -> str | None:
    """The vmgenid, or None when unset or disabled (`0`)."""
    return None if value in (None, "", "0") else value


def require_vmid(vm: Vm) -> int:
    """The VM's vmid; `NotCloned` if it never got one (its clone failed or is pending)."""
    if vm.vmid is None:
        raise NotCloned(f"VM {vm.name} has no Proxmox VM (its clone did not finish)")
    return vm.vmid


async def pool_node(proxmox: ProxmoxClient, vmid: int) -> str | None:
    """The node of `vmid` if it is in our pool now (fresh read), else None."""
    await proxmox.get_pool()
    members = proxmox.pool_members
    if vmid not in members:
        return None
    return members[vmid] or ""


async def require_pool_node(proxmox: ProxmoxClient, vmid: int) -> str:
    """The node of a vmid that must be in our pool (`OutsidePool` otherwise)."""
    node = await pool_node(proxmox, vmid)
    if not node:
        raise OutsidePool(vmid, proxmox.settings.vms_pool)
    return node


async def member_node(proxmox: ProxmoxClient, vmid: int) -> str | None:
    """The node of `vmid` if it is in our pool, by the per-VM facts the client keeps (the
    clone's `pool=`, the `pool` field of /cluster/resources, the sync): O(1), where
    `pool_node` reads the whole pool. The deploy uses it; the guest's identity is still
    checked on its config right before every change."""
    return await proxmox.member_node(vmid)


async def require_member_node(proxmox: ProxmoxClient, vmid: int) -> str:
    """`member_node` of a vmid that must be in our pool (`OutsidePool` otherwise); a
    member whose node is not known yet is looked up in the pool."""
    node = await member_node(proxmox, vmid)
    if node is None:
        raise OutsidePool(vmid, proxmox.settings.vms_pool)
    return node or await require_pool_node(proxmox, vmid)


async def confirm(
    proxmox: ProxmoxClient, node: str, vmid: int, claim: Claim, action: str
) -> VmConfig:
    """The guest's config, read now, if it is the claimed one; `IdentityMismatch` (and a
    refusal counted for `action`) otherwise. Call it right before the call it guards."""
    config = await proxmox.vm_config(node, vmid)
    reason = mismatch(claim, Marks.of(config))
    if reason is not None:
        refuse(claim, vmid, node, config, action, reason)
    return config


def refuse(claim: Claim, vmid: int, node: str, config: VmConfig, action: str, reason: str) -> None:
    """Count the refusal for `action` and raise `IdentityMismatch` naming why."""
    metrics.IDENTITY_REFUSALS.labels(action).inc()
    what = f"template {claim.name}" if claim.template else f"OpenVLE VM {claim.uuid}"
    words = ACTION_WORDS.get(action, action)
    raise IdentityMismatch(
        f"refusing to {words} VM {vmid} on {node}: it is not {what} "
        f"({reason}; name {config.name!r})"
    )
