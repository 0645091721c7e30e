"""The documentation site builds with `mkdocs build --strict` (with no network at all
where the test may take it away), loads nothing from other hosts, and its generated
reference pages list everything the code has: every setting, every command, every
endpoint with its scope, every problem type, the event rules."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.kit import ROOT, generator
from tests.support.services import require_service


def without_network() -> list[str]:
    """`unshare -n` when this user may make a network namespace (root in CI): the build
    then runs with no network at all, so it cannot fetch anything either."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for the module into a temporary directory."""
    if importlib.util.find_spec("mkdocs") is None:
        require_service("mkdocs", "the docs group is not installed (make install)")
    dest = tmp_path_factory.mktemp("site")
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(dest)]
    done = subprocess.run(
        [*without_network(), *build],
        cwd=ROOT,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dest


def page_text(site: Path, page: str) -> str:
    """The visible text of a built page (tags dropped)."""
    return re.sub(r"<[^>]+>", " ", (site / page).read_text())


def test_site_fetches_nothing_from_other_hosts(site: Path) -> None:
    offline = generator("offline")
    assert offline.remote_fetches(site) == []
    assert (site / "search" / "search_index.js").exists()  # search works from file://
    assert len(list(site.rglob("*.html"))) >= 25


def test_offline_check_finds_each_kind_of_remote_fetch(tmp_path: Path) -> None:
    offline = generator("offline")
    (tmp_path / "a.html").write_text(
        '<script src="https://unpkg.com/x.js"></script>'
        '<link rel="stylesheet" href="//fonts.googleapis.com/css">'
        '<img srcset="local.png 1x, https://cdn.example/big.png 2x">'
        '<div style="background: url(https://cdn.example/bg.png)"></div>'
        '<a href="https://example.org/">a link is fine</a>'
        '<link rel="canonical" href="https://example.org/a.html">'
        '<script src="assets/local.js"></script>'
    )
    (tmp_path / "b.css").write_text("@import 'https://fonts.example/x.css';")
    found = offline.remote_fetches(tmp_path)
    assert len(found) == 5, found
    assert offline.main([str(tmp_path)]) == 1


def test_configuration_lists_every_setting(site: Path) -> None:
    from openvle_core.settings import describe_settings

    text = page_text(site, "reference/configuration.html")
    names = [name for name, _, _ in describe_settings()]
    assert len(names) >= 40
    assert [n for n in names if n not in text] == []
    assert sorted(generator("ref_settings").all_variables()) == sorted(names)


def test_cli_reference_lists_every_command_and_option(site: Path) -> None:
    ref_cli = generator("ref_cli")
    text = page_text(site, "reference/cli.html")
    names = ref_cli.command_names()
    assert {"openvle api", "openvle demo", "openvle token create"} <= set(names)
    assert [n for n in names if n not in text] == []
    for _, command in ref_cli.walk(ref_cli.root_command(), ("openvle",)):
        for param in command.params:
            shown = param.opts if ref_cli.is_option(param) else [param.name.upper()]
            assert all(opt in text for opt in shown), shown


def test_endpoints_list_every_operation_with_its_scope(site: Path) -> None:
    ref_api = generator("ref_api")
    _, document = ref_api.app_and_document()
    text = page_text(site, "reference/endpoints.html")
    ops = [op for _, _, op in ref_api.operations(document)]
    assert [op["operationId"] for op in ops if op["operationId"] not in text] == []
    scopes = ref_api.operation_scopes()
    protected = [op["operationId"] for _, p, op in ref_api.operations(document) if "/v1/" in p]
    assert {scopes.get(op_id) for op_id in protected} == {"read", "operate", "admin"}
    assert scopes["startVm"] == "operate"
    assert scopes["createEvent"] == "admin"
    published = json.loads((site / "reference" / "openapi.json").read_text())
    assert published == json.loads(json.dumps(document))


def test_errors_list_every_problem_type(site: Path) -> None:
    ref_errors = generator("ref_errors")
    text = page_text(site, "reference/errors.html")
    codes = {p.code for p in ref_errors.problems()}
    assert {"vm_not_found", "target_busy", "slug_taken", "validation_error"} <= codes
    assert [c for c in codes if f"urn:openvle:problem:{c}" not in text] == []
    by_code = {p.code: p for p in ref_errors.problems()}
    assert by_code["target_busy"].status == 409
    assert by_code["proxmox_unavailable"].status == 503
    assert by_code["outside_pool"].status == 404


def test_event_rules_come_from_the_schema(site: Path) -> None:
    text = page_text(site, "reference/events.html")
    for rule in ("^[a-z0-9_-]{4,8}$", "&lt;= 1000", "at most 20 items", "timezone"):
        assert rule in text, rule


def test_readme_is_a_short_landing_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme) < 6000
    assert "make docs" in readme
    assert "docs/tutorial/first-lab.md" in readme
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), link


def test_nothing_links_outside_the_repository() -> None:
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").rglob("*.md")]
    assert [str(p) for p in pages if "../shared" in p.read_text()] == []
