"""Helpers of the documentation tests: the repository's paths, the docs generator's
modules, the shell blocks of a Markdown page, and a reader's shell environment."""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).parents[2]
GENERATOR = ROOT / "docs" / "gen"
SHELL_LANGUAGES = {"sh", "bash", "shell"}
FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!-- docs-test: (\S+)(?: \((.*)\))?.*-->\s*$")


def generator(name: str) -> ModuleType:
    """A module of docs/gen (they import each other by plain name, as mkdocs loads them)."""
    if str(GENERATOR) not in sys.path:
        sys.path.insert(0, str(GENERATOR))
    return importlib.import_module(name)


@dataclass(frozen=True)
class Block:
    """A shell code block of a page, with the docs-test marker written above it."""

    page: str
    line: int
    code: str
    mode: str  # "run", "skip" or "until-ready"
    reason: str


def shell_blocks(page: Path) -> list[Block]:
    """The page's shell blocks in order; a block's mode comes from a marker line
    `<!-- docs-test: skip (why) -->` or `<!-- docs-test: until-ready (...) -->` right
    above its fence (default: run)."""
    text = page.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        if match[1] not in SHELL_LANGUAGES:
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        mode, reason = (marker[1], marker[2] or "") if marker else ("run", "")
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(page.name, line, match[2], mode, reason))
    return blocks


def reader_environment(**extra: str) -> dict[str, str]:
    """The environment of a reader's shell: this one without the test's virtualenv
    (`uv run` puts .venv/bin first on PATH; a reader has to activate it)."""
    env = dict(os.environ)
    venv = env.pop("VIRTUAL_ENV", None)
    hidden = {str(ROOT / ".venv" / "bin"), str(Path(sys.executable).parent)}
    if venv:
        hidden.add(str(Path(venv) / "bin"))
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p not in hidden)
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env
