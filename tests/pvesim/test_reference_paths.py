"""The simulator reference page lists exactly the served paths (the registered routes)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from openvle_pvesim.contract import ROUTES

PAGE = Path(__file__).parents[2] / "docs" / "reference" / "simulator.md"


def test_the_reference_lists_exactly_the_served_paths() -> None:
    importlib.import_module("openvle_pvesim.handlers")
    importlib.import_module("openvle_pvesim.access_handlers")
    text = PAGE.read_text()
    block = text.split("<!-- served-paths:start -->")[1].split("<!-- served-paths:end -->")[0]
    listed = {
        (method, path)
        for methods, path in re.findall(r"^- `([A-Z ]+) (/\S*)`$", block, re.M)
        for method in methods.split()
    }
    assert listed == set(ROUTES)
