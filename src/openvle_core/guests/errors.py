"""Errors of the clone steps (no HTTP; the API maps them). All are permanent."""

from __future__ import annotations

from openvle_core.errors import ConflictError, OpenVLEError


class IdentityUnconfirmed(ConflictError):
    """The vmid holds a VM that is not provably ours (SMBIOS serial or name differ)."""

    code = "vm_identity_unconfirmed"


class VmidCollisions(OpenVLEError):
    """Every vmid tried was taken by someone else first."""

    code = "vmid_collisions"


class NotCloned(ConflictError):
    """The VM row has no Proxmox VM yet (or its clone failed)."""

    code = "vm_not_cloned"


class SmbiosMetadataTooLong(OpenVLEError):
    """The VM's SMBIOS metadata cannot fit Proxmox's `smbios1` limit even when shortened."""

    code = "smbios_metadata_too_long"
