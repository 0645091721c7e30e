"""API tokens: stored as SHA-256 hashes; the plain token is shown once at creation."""
