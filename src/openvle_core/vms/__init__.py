"""VMs: repository (all SQL), errors; services and the engine build on them."""
