"""The VM lifecycle engine: operation kinds (clone, power, migrate, delete, templates),
split by concern, plus the steps they share (vmids, identity, placement, records).

Import `openvle_core.engine.kinds` to register every kind (`load_kinds()` does it).
"""
