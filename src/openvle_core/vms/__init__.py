"""VMs: the request service, repository (all SQL), queries, and the operation handlers
(tasks.py) with their steps (provision, configure, power, ipv4, ha, delete, records)."""
