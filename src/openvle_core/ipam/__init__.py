"""IP address management: allocations (repository.py); the allocator builds on it."""
