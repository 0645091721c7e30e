"""The operator console in a real browser, against `openvle demo`.

One walk through what a lab admin does: open the demo's console URL (signed in by the
token in the fragment), create an event (a wrong slug first: the rule shows at the
field), deploy it and watch each VM move through its phases until all run with an IPv4,
stop a VM, archive the event; on the way, axe-core's WCAG A/AA rules on every page, the
keyboard, a tablet width, and no request to any other host.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.console.kit import (
    axe_violations,
    browser_page,
    require_browser,
    screenshot,
    screenshot_when,
)
from tests.support.demo import console_url, running_demo

pytestmark = pytest.mark.slow
PARTICIPANTS = 3
IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
# Collects every phase a VM row of the event page shows, as the page changes.
WATCH_PHASES = """() => {
  window.phasesSeen = new Set();
  new MutationObserver(() => {
    for (const td of document.querySelectorAll('#main table tbody tr td:nth-child(5)'))
      window.phasesSeen.add(td.textContent.trim());
  }).observe(document.getElementById('main'), {subtree: true, childList: true});
}"""

# The docs' picture of a deploy: VMs in different phases, one past its clone.
MID_DEPLOY = """() => {
  const phases = [...document.querySelectorAll('#main table tbody tr td:nth-child(5)')]
    .map(td => td.textContent.trim());
  return new Set(phases).size > 1 && phases.some(p => p === 'configuring' || p === 'starting');
}"""


def no_violations(page: Any, where: str) -> None:
    assert axe_violations(page) == [], where


def sign_in(page: Any, url: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name="Events").wait_for()
    assert "#" not in page.url, "the token is taken out of the address bar"
    token = url.split("#token=")[1]
    assert page.evaluate("Object.values(sessionStorage)") == [token]
    assert page.get_by_text("demo-admin (admin)").is_visible()


def create_event(page: Any) -> str:
    page.get_by_role("button", name="New event").click()
    page.get_by_label("Slug").fill("Lab 1!")
    page.get_by_label("Name").fill("Networking lab")
    page.get_by_label("Participants").fill(str(PARTICIPANTS))
    page.get_by_label("debian-12-template").check()
    no_violations(page, "the new event form")
    page.get_by_role("button", name="Create event").click()
    slug = page.get_by_label("Slug")
    assert slug.get_attribute("aria-invalid") == "true"
    assert "4 to 8 characters" in page.locator("#slug-error").inner_text()
    slug.fill("lab1")
    page.get_by_role("button", name="Create event").click()
    page.get_by_role("heading", name="lab1: Networking lab").wait_for()
    return page.url


def deploy_and_watch(page: Any) -> None:
    page.evaluate(WATCH_PHASES)
    page.get_by_role("button", name="Deploy", exact=True).click()
    progress = page.get_by_role("progressbar", name="Deploy progress")
    progress.wait_for()
    screenshot_when(page, "console-event-deploying", MID_DEPLOY)
    page.wait_for_function(
        "() => { const bar = document.querySelector('[role=progressbar]');"
        f" return bar && bar.getAttribute('aria-valuenow') === '{PARTICIPANTS}'"
        f" && bar.getAttribute('aria-valuemax') === '{PARTICIPANTS}'; }}",
        timeout=90_000,
    )
    page.get_by_text("Deploy succeeded").or_(page.locator("h2", has_text="Deploy")).first.wait_for()
    page.locator("h1 .badge", has_text="deployed").wait_for()
    rows = page.locator("#main table tbody tr")
    assert rows.count() == PARTICIPANTS
    for i in range(PARTICIPANTS):
        cells = rows.nth(i).locator("td")
        assert cells.nth(4).inner_text() == "running"
        assert IPV4.match(cells.nth(5).inner_text()), cells.nth(5).inner_text()
    seen = set(page.evaluate("[...window.phasesSeen]"))
    assert seen & {"queued", "cloning", "configuring", "starting"}, seen
    assert page.get_by_role("listitem").filter(has_text="last VM running").count() == 1
    no_violations(page, "the event page after the deploy")
    screenshot(page, "console-event-deployed")


def stop_a_vm(page: Any, event_url: str) -> None:
    page.goto(event_url)
    page.get_by_role("link", name="Power actions on its VMs").click()
    page.get_by_role("heading", name="VMs").wait_for()
    first = page.locator("#main table tbody tr").first
    name = first.locator("td").nth(1).inner_text()
    page.get_by_role("button", name=f"Stop {name}").click()
    page.locator("tr", has_text=name).locator(".badge", has_text=re.compile("^stopped$")).wait_for(
        timeout=60_000
    )
    no_violations(page, "the VMs page")
    screenshot(page, "console-vms")


def keyboard_reaches_the_nodes_page(page: Any, base: str) -> None:
    page.goto(f"{base}/console/events")
    page.get_by_role("heading", name="Events").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Nodes":
            break
    assert page.evaluate("document.activeElement.textContent") == "Nodes"
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Nodes").wait_for()
    meters = page.get_by_role("meter")
    meters.first.wait_for()
    assert meters.count() == 6  # CPU and memory of pve1-pve3
    counts = page.get_by_role("link", name=re.compile(r"^\d+ VMs of ours$")).all_inner_texts()
    assert sum(int(text.split()[0]) for text in counts) == PARTICIPANTS
    no_violations(page, "the nodes page")
    screenshot(page, "console-nodes")


def archive(page: Any, event_url: str) -> None:
    page.goto(event_url)
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Archive", exact=True).click()
    page.locator("h1 .badge", has_text="archived").wait_for(timeout=90_000)
    page.get_by_text("No VMs.").wait_for()
    no_violations(page, "the event page after the archive")


def fits_a_tablet(page: Any, base: str) -> None:
    page.set_viewport_size({"width": 768, "height": 1024})
    for path in ("events", "vms", "nodes", "operations"):
        page.goto(f"{base}/console/{path}")
        page.locator("#main h1").wait_for()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is wider than a tablet by {overflow} px"


def test_console_deploys_watches_stops_and_archives(tmp_path: Path) -> None:
    require_browser()
    with running_demo(tmp_path, "--time-scale", "0.2") as info:
        url = console_url(info)
        base = url.split("/console/")[0]
        with browser_page(base) as (page, requests):
            sign_in(page, url)
            no_violations(page, "the events page")
            event_url = create_event(page)
            deploy_and_watch(page)
            page.goto(f"{base}/console/events")
            page.get_by_role("cell", name=f"{PARTICIPANTS} running").wait_for()
            screenshot(page, "console-events")
            stop_a_vm(page, event_url)
            keyboard_reaches_the_nodes_page(page, base)
            page.get_by_role("link", name="Operations").click()
            page.get_by_role("heading", name="Last sync").wait_for()
            page.get_by_text("The cluster was last synced").wait_for()  # the demo's periodic sync
            no_violations(page, "the operations page")
            archive(page, event_url)
            fits_a_tablet(page, base)
        assert requests.elsewhere == []
        assert any(u.startswith(f"{base}/api/v1/operations/") for u in requests.seen)
