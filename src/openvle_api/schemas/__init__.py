"""Request and response bodies of the REST API, one module per domain (common: problems, pages)."""
