"""Entry point of the `openvle` command (a stub until the CLI issue lands)."""

import sys

from openvle_core import __version__


def main(argv: list[str] | None = None) -> int:
    """Print the version; the subcommands arrive with the CLI issue."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in {"-h", "--help"}:
        print("usage: openvle [--version]")
        return 0
    print(f"openvle {__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
