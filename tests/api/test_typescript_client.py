"""A TypeScript client generated with openapi-typescript from the document type-checks.

Needs npm (skipped without it, failing in CI). Installs openapi-typescript and
TypeScript into a temporary directory, generates `api.d.ts`, and compiles a small
client that uses the generated types under `tsc --strict`, together with the frontend
example of the documentation (docs/how-to/typescript-client.md), as a reader would
compile it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from openvle_api.app import create_app
from openvle_core.settings import load_settings
from tests.support.services import require_service

PACKAGES = ["openapi-typescript@7", "typescript@5"]
GUIDE = Path(__file__).parents[2] / "docs" / "how-to" / "typescript-client.md"
CLIENT = """\
import type { components, operations, paths } from "./api";

type Vm = components["schemas"]["VmOut"];
type Problem = components["schemas"]["Problem"];
type VmPage = paths["/api/v1/vms"]["get"]["responses"][200]["content"]["application/json"];
type Accepted = operations["startVm"]["responses"][202]["content"]["application/json"];
type NotFound =
  operations["getVm"]["responses"][404]["content"]["application/problem+json"];

export function firstRunning(page: VmPage): Vm | undefined {
  return page.items.find((vm: Vm) => vm.status === "running");
}

export function describe(problem: Problem | NotFound): string {
  const fields = (problem.errors ?? []).map((e) => `${e.loc.join(".")}: ${e.msg}`);
  return [problem.detail, ...fields].join("\\n");
}

export function progress(op: Accepted): number {
  return op.progress.total === 0 ? 0 : op.progress.done / op.progress.total;
}

const query: paths["/api/v1/vms"]["get"]["parameters"]["query"] = { status: "running", limit: 10 };
export { query };
"""


def docs_example() -> str:
    """The guide's `ts` code block (it imports the types as "./openvle-api")."""
    blocks = re.findall(r"^```ts\n(.*?)^```", GUIDE.read_text(), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "the guide has one TypeScript example"
    assert len(blocks[0].strip().splitlines()) <= 12  # a short example, as promised
    return str(blocks[0])


def _run(args: list[str], cwd: Path) -> None:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"


def test_generated_typescript_client_type_checks(tmp_path: Path) -> None:
    npm, npx = shutil.which("npm"), shutil.which("npx")
    if npm is None or npx is None:
        require_service("npm", "npm/npx not found on PATH")
    assert npm is not None
    assert npx is not None
    doc = create_app(load_settings(env_file=None)).openapi()
    (tmp_path / "openapi.json").write_text(json.dumps(doc))
    (tmp_path / "package.json").write_text('{"name": "openvle-ts-check", "private": true}')
    _run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES], tmp_path)
    _run([npx, "--no-install", "openapi-typescript", "openapi.json", "-o", "api.d.ts"], tmp_path)
    (tmp_path / "client.ts").write_text(CLIENT)
    shutil.copy(tmp_path / "api.d.ts", tmp_path / "openvle-api.d.ts")
    (tmp_path / "frontend.ts").write_text(docs_example())
    tsc = [npx, "--no-install", "tsc", "--strict", "--noEmit", "--target", "es2020"]
    _run([*tsc, "--lib", "es2020,dom", "client.ts", "frontend.ts"], tmp_path)
    assert "startVm" in (tmp_path / "api.d.ts").read_text()
