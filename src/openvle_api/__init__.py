"""OpenVLE Proxmox service: api package."""
