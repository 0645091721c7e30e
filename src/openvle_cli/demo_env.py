"""What `openvle demo` tells its user: the ready line, the env file and the banner.

The ready line is one JSON object for scripts (`DemoInfo`). The env file, written into
the data directory, holds the settings of the running demo as `export` lines: sourcing
it (`. DIR/openvle.env`) points `openvle follow`, `openvle token list` and
`openvle doctor` in another shell at the demo's database and simulated cluster. The
banner says the same for people.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path

from openvle_core.settings import DatabaseSettings, ProxmoxSettings, Settings, env_name

ENV_FILE = "openvle.env"
CONSOLE_PATH = "/console/"


@dataclass(frozen=True)
class DemoInfo:
    """What the ready line reports (a JSON object, keys in this order)."""

    api_url: str
    docs_url: str
    console_url: str  # the console reads the token from the fragment, never sent to a server
    admin_token: str
    pve_url: str
    pve_token: str  # USER@REALM!TOKENID=SECRET, as in `Authorization: PVEAPIToken=...`
    pve_ca_file: str  # the simulator's CA certificate: curl --cacert FILE
    data_dir: str
    env_file: str  # `. FILE` points the openvle commands of a shell at this demo

    def json_line(self) -> str:
        """The one JSON line scripts wait for."""
        return json.dumps(asdict(self))


def base_url(api_url: str) -> str:
    """`http://host:port` of an API URL ending in /api/v1."""
    return api_url.rsplit("/api/", 1)[0]


def console_url(api_url: str, admin_token: str) -> str:
    """The console's address with the token in the fragment (`#token=...`)."""
    return f"{base_url(api_url)}{CONSOLE_PATH}#token={admin_token}"


def env_lines(settings: Settings) -> list[str]:
    """`export NAME='value'` for the database and Proxmox settings of the demo."""
    pve, db = settings.proxmox, settings.database
    values = {
        env_name(DatabaseSettings, "url"): db.url.get_secret_value(),
        env_name(ProxmoxSettings, "hostname"): pve.hostname,
        env_name(ProxmoxSettings, "user"): pve.user,
        env_name(ProxmoxSettings, "token_name"): pve.token_name,
        env_name(ProxmoxSettings, "token_value"): pve.token_value.get_secret_value(),
        env_name(ProxmoxSettings, "verify_ssl"): str(pve.verify_ssl).lower()
        if isinstance(pve.verify_ssl, bool)
        else str(pve.verify_ssl),
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def write_env_file(directory: Path, settings: Settings) -> Path:
    """The env file in `directory`, readable by its owner only (it holds the token)."""
    path = directory / ENV_FILE
    text = "\n".join(
        [
            "# The settings of a running `openvle demo`. In a shell, `. THIS_FILE` points",
            "# openvle follow, openvle token list and openvle doctor at the demo.",
            *env_lines(settings),
            "",
        ]
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path


def banner(info: DemoInfo, pve_version: str, temporary: bool) -> str:
    """The human-readable text printed after the JSON line."""
    kept = "removed when the demo stops" if temporary else "kept"
    return "\n".join(
        [
            "",
            f"OpenVLE demo: a simulated Proxmox VE {pve_version} cluster "
            "(pve1-pve3, templates 9000-9002)",
            f"  API          {info.api_url}",
            f"  API docs     {info.docs_url}",
            f"  console      {info.console_url}",
            f"  admin token  {info.admin_token}",
            f"  Proxmox API  {info.pve_url}",
            f"               token {info.pve_token.split('=', 1)[0]}, CA {info.pve_ca_file}",
            f"  data         {info.data_dir} ({kept})",
            "",
            "Drive it from another shell:",
            f"  . {shlex.quote(info.env_file)}    # DATABASE_URL and PVE_* for this demo",
            "  openvle token list; openvle doctor; openvle follow OPERATION_ID",
            f"  export TOKEN={info.admin_token}",
            f'  curl -H "Authorization: Bearer $TOKEN" {info.api_url}/templates',
            "",
            "Operations are logged below as they start and end. Ctrl-C stops.",
        ]
    )
