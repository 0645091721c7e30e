"""The operator console under /console/: static pages and scripts served by this package.

See `router.install_console` and docs/how-to/console.md.
"""
