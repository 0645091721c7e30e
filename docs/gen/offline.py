"""Check a built site for anything a browser would fetch from another host.

Campus networks are often closed, so the site must load nothing from off the host:
no fonts, scripts, styles, images or frames from a CDN. Links (`<a href>`) to other
sites are fine; they are only followed when clicked. Run as a script on a site
directory: `python docs/gen/offline.py site`, exit status 1 when anything is found.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

# Attributes that make a browser fetch something on its own, per tag.
FETCHING = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "track": ("src",),
}
# `<link rel=...>` values that make no request (a canonical URL is only a name).
NON_FETCHING_RELS = {"canonical", "alternate", "author", "license", "help", "search"}
REMOTE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
CSS_REMOTE = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])\s*((?:https?:)?//[^'")\s]+)""")


class _Finder(HTMLParser):
    """Collects every remote fetch of one page's tags (CSS in the page is read apart)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        rels = set(values.get("rel", "").split())
        if tag == "link" and rels and rels <= NON_FETCHING_RELS:
            return
        for name in FETCHING.get(tag, ()):
            for url in values.get(name, "").split(","):
                if REMOTE.match(url):
                    self.found.append(f"<{tag} {name}={url.strip()}>")


def remote_fetches(site: Path) -> list[str]:
    """`file: what` for every remote fetch in the site's HTML and CSS files."""
    problems = []
    for page in sorted(site.rglob("*.html")):
        finder = _Finder()
        finder.feed(page.read_text(encoding="utf-8", errors="replace"))
        inline_css = CSS_REMOTE.findall(page.read_text(encoding="utf-8", errors="replace"))
        found = finder.found + [f"css url({url})" for url in inline_css]
        problems += [f"{page.relative_to(site)}: {what}" for what in found]
    for sheet in sorted(site.rglob("*.css")):
        for url in CSS_REMOTE.findall(sheet.read_text(encoding="utf-8", errors="replace")):
            problems.append(f"{sheet.relative_to(site)}: url({url})")
    return problems


def main(argv: list[str]) -> int:
    """Print each remote fetch; exit status 1 if there is any."""
    site = Path(argv[0] if argv else "site")
    problems = remote_fetches(site)
    for line in problems:
        print(f"remote fetch: {line}", file=sys.stderr)
    if problems:
        return 1
    print(f"{site}: no remote fetches in {len(list(site.rglob('*.html')))} pages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
