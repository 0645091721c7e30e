"""operations: see repository.py (all SQL) and errors.py."""
