"""OpenVLE Proxmox service: worker package."""
