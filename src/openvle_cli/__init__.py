"""The `openvle` command line: api, worker, demo, migrate, sync, doctor, token."""
