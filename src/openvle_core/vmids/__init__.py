"""VMID reservations: Proxmox's /cluster/nextid does not reserve, our unique table does."""
