"""Errors of the clone steps (no HTTP; the API maps them). All are permanent."""

from __future__ import annotations

from openvle_core.errors import ConflictError, OpenVLEError


class IdentityMismatch(ConflictError):
    """The vmid now holds a guest that is not provably the one the row means (its recorded
    evidence, vmgenid, creation time or SMBIOS serial, differs): the call was refused and
    nothing was written. A freed vmid is handed to the next VM anyone creates."""

    code = "identity_mismatch"


class VmidCollisions(OpenVLEError):
    """Every vmid tried was taken by someone else first."""

    code = "vmid_collisions"


class NotCloned(ConflictError):
    """The VM row has no Proxmox VM yet (or its clone failed)."""

    code = "vm_not_cloned"


class SmbiosMetadataTooLong(OpenVLEError):
    """The VM's SMBIOS metadata cannot fit Proxmox's `smbios1` limit even when shortened."""

    code = "smbios_metadata_too_long"
