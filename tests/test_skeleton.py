"""The installed entry points answer."""

import subprocess
import sys

from openvle_core import __version__


def test_openvle_prints_its_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "openvle_cli.main"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"openvle {__version__}"
    assert __version__ != "0.0.0"
