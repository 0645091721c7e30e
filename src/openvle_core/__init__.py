"""OpenVLE Proxmox service core: settings, domains and their operations, Proxmox client, storage."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("openvle-proxmox")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
