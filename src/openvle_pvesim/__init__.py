"""A Proxmox VE API simulator: a real HTTP(S) server for tests, benchmarks and the demo."""
