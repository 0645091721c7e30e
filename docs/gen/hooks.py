"""mkdocs hooks: reference pages generated from the code, and the offline check.

A page asks for generated text with a marker on a line of its own,
`<!-- gen:NAME -->`; the marker is replaced when the site is built, so the prose around
it stays hand-written and editable. An unknown marker fails the build. The OpenAPI
document is published next to the REST API pages, and the built site is checked for
anything a browser would fetch from another host (a hit fails the build).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

import offline
import ref_api
import ref_cli
import ref_errors
import ref_settings

GENERATORS: dict[str, Callable[[], str]] = {
    "settings": ref_settings.render_settings,
    "cli": ref_cli.render_cli,
    "endpoints": ref_api.render_endpoints,
    "schemas": ref_api.render_schemas,
    "event-fields": ref_api.render_event_fields,
    "errors": ref_errors.render_errors,
}
MARKER = re.compile(r"^<!-- gen:([a-z-]+) -->$", re.MULTILINE)


def expand(markdown: str) -> str:
    """The page with every marker replaced by its generated text."""

    def generated(match: re.Match[str]) -> str:
        name = match[1]
        if name not in GENERATORS:
            raise PluginError(f"unknown generated section '{name}' (known: {sorted(GENERATORS)})")
        return GENERATORS[name]()

    return MARKER.sub(generated, markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """mkdocs hook: expand the markers of every page."""
    return expand(markdown)


def on_files(files: Files, config: Any, **_: Any) -> Files:
    """mkdocs hook: publish the OpenAPI document beside the REST API pages."""
    _, document = ref_api.app_and_document()
    content = json.dumps(document, indent=1) + "\n"
    files.append(File.generated(config, "reference/openapi.json", content=content))
    return files


def on_post_build(config: Any, **_: Any) -> None:
    """mkdocs hook: refuse a site that fetches anything from another host."""
    problems = offline.remote_fetches(Path(config["site_dir"]))
    if problems:
        raise PluginError("the site fetches from other hosts:\n  " + "\n  ".join(problems))
