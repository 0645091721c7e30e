"""The service's view of the Proxmox side (GET /system/proxmox, like `openvle doctor`)."""
