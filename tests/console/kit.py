"""Helpers for the console's browser tests: Debian's chromium through Playwright, a record
of every request the page makes, and axe-core's accessibility rules.

Playwright drives the system's /usr/bin/chromium (its own browser downloads are never
used); `.ci/console-browser` installs chromium with apt and axe-core with npm into a
cache directory outside the repository (OPENVLE_AXE_DIR). Without them the tests skip,
and in CI (OPENVLE_TEST_REQUIRE_SERVICES=1) they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.support.services import require_service

CHROMIUM = os.environ.get("OPENVLE_CHROMIUM", "/usr/bin/chromium")
AXE_DIR = Path(os.environ.get("OPENVLE_AXE_DIR", Path.home() / ".cache/openvle-ci/axe"))
AXE = AXE_DIR / "node_modules/axe-core/axe.min.js"
# Without the background-networking flags chromium phones home (component updates,
# sync, variations), which a closed network refuses and which is not the page's doing.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
SCREENSHOTS = os.environ.get("OPENVLE_CONSOLE_SCREENSHOTS")  # a folder: docs pictures


def require_browser() -> None:
    """Skip (fail in CI) without chromium, Playwright or the axe-core script."""
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        require_service("chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        require_service("playwright", str(exc))
    if not AXE.is_file():
        require_service("axe-core", f"{AXE} missing (.ci/console-browser installs it)")


@dataclass
class Requests:
    """Every URL the page asked for, and those that went to another host."""

    host: str
    seen: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)

    def record(self, url: str) -> None:
        self.seen.append(url)
        parts = urlsplit(url)
        if parts.scheme in {"http", "https", "ws", "wss"} and parts.netloc != self.host:
            self.elsewhere.append(url)


@contextlib.contextmanager
def browser_page(
    base_url: str, width: int = 1280, height: int = 900
) -> Iterator[tuple[Any, Requests]]:
    """A fresh chromium (own profile) and one page; yields it with its request record.

    Requests to any other host are recorded and aborted, so the test sees them even
    though the network would refuse them anyway.
    """
    from playwright.sync_api import Route, sync_playwright

    requests = Requests(urlsplit(base_url).netloc)

    def guard(route: Route) -> None:
        requests.record(route.request.url)
        if urlsplit(route.request.url).netloc == requests.host:
            route.continue_()
        else:
            route.abort()

    with (
        tempfile.TemporaryDirectory(prefix="openvle-chromium-") as profile,
        sync_playwright() as pw,
    ):
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height},
            service_workers="block",
        )
        try:
            context.route("**/*", guard)
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(30_000)
            yield page, requests
        finally:
            context.close()


def axe_violations(page: Any) -> list[str]:
    """axe-core's WCAG 2.1 A/AA and best-practice violations on the page as it is now.

    The script is evaluated through the DevTools protocol, not added as a <script>: the
    console's Content-Security-Policy (scripts from this host only) stays in force.
    """
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
        ".violations.map(v => `${v.id}: ${v.help} (${v.nodes.length}): `"
        " + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))",
        WCAG_TAGS,
    )
    return [str(v) for v in result]


def screenshot(page: Any, name: str) -> None:
    """Save a PNG of the page into OPENVLE_CONSOLE_SCREENSHOTS, when that is set."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))


def screenshot_when(page: Any, name: str, condition: str, timeout_ms: int = 15_000) -> None:
    """As `screenshot`, once the JavaScript `condition` holds (or after `timeout_ms`)."""
    if not SCREENSHOTS:
        return
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(condition, timeout=timeout_ms)
    screenshot(page, name)
