"""The API's routers, one per resource; each carries the full path prefix (`deps.API_PREFIX`).

(Full prefixes, not a nested /api/v1 router, so the matched route's `path` is the
whole template, which the HTTP metrics use as a label.)
"""
