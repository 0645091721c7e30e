"""scripts/bootstrap-uv: what `make` does on a machine without uv.

Each test runs a copy of the script in a temporary directory (it works relative to its
own location, so `.tools/` lands there, not in the repository). The distribution's
Python is /usr/bin/python3; a Python without ensurepip is made the way Debian makes
it, by a module `ensurepip` that cannot be imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.docs.kit import ROOT

SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.fixture
def script(tmp_path: Path) -> Path:
    """A copy of the script at tmp_path/scripts/bootstrap-uv."""
    (tmp_path / "scripts").mkdir()
    return Path(shutil.copy(ROOT / "scripts" / "bootstrap-uv", tmp_path / "scripts"))


def run(script: Path, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": path, "HOME": os.environ.get("HOME", "/root"), **env}
    for name in ("SSL_CERT_FILE", "PIP_CERT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        if name in os.environ:  # how this machine reaches PyPI, as a reader's shell would
            environment.setdefault(name, os.environ[name])
    return subprocess.run(
        ["/bin/sh", str(script)], env=environment, capture_output=True, text=True, timeout=300
    )


def system_python_or_skip() -> None:
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no distribution Python at /usr/bin/python3")
    probe = "import sys, venv, ensurepip; print(sys.version_info >= (3, 11))"
    done = subprocess.run([str(SYSTEM_PYTHON), "-c", probe], capture_output=True, text=True)
    if done.stdout.strip() != "True":
        pytest.skip("/usr/bin/python3 is older than 3.11 or has no venv/ensurepip")


def test_uv_on_path_is_used_as_it_is(script: Path, tmp_path: Path) -> None:
    uv = shutil.which("uv") or str(ROOT / ".tools" / "venv" / "bin" / "uv")
    if not Path(uv).exists():
        pytest.skip("no uv binary to put on PATH")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "uv").symlink_to(uv)
    done = run(script, f"{tmp_path / 'bin'}:/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "bin" / "uv")
    assert not (tmp_path / ".tools").exists()


def test_python_without_venv_gets_one_line_naming_the_package(script: Path, tmp_path: Path) -> None:
    system_python_or_skip()
    shadow = tmp_path / "no-ensurepip" / "ensurepip"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("ensurepip is not installed")\n')
    done = run(script, "/usr/bin:/bin", PYTHONPATH=str(shadow.parent))
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "apt-get install python3-venv" in lines[0]
    assert not (tmp_path / ".tools").exists()


def test_too_old_python_gets_one_line(script: Path, tmp_path: Path) -> None:
    system_python_or_skip()
    bin_dir = tmp_path / "bin"  # only what the script needs, and a Python that says 3.9
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname") or "/usr/bin/dirname")
    old = bin_dir / "python3"
    old.write_text(
        "#!/bin/sh\n"
        "shift; exec /usr/bin/python3 -c \"import sys; sys.version_info = (3, 9, 2, 'final', 0)"
        '; exec(sys.argv[1])" "$1"\n'
    )
    old.chmod(0o755)
    done = run(script, str(bin_dir))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "needs Python 3.11 or newer (python3: 3.9)" in lines[0]


@pytest.mark.slow
def test_without_uv_a_private_copy_is_installed_once(script: Path, tmp_path: Path) -> None:
    system_python_or_skip()
    done = run(script, "/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    uv = tmp_path / ".tools" / "venv" / "bin" / "uv"
    assert done.stdout.strip() == str(uv)
    assert "the system Python is not changed" in done.stderr
    version = subprocess.run([str(uv), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("uv ")
    again = run(script, "/usr/bin:/bin")
    assert again.stdout == done.stdout
    assert again.stderr == ""  # installed once: the second run only prints the path
