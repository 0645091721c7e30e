"""compose.yaml, .env.example, the Dockerfile and the monitoring files, checked against
the code and the docs: `docker-compose config` accepts the compose file with the
example .env, every setting is documented, the Dockerfile's steps are the compose guide's."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from openvle_core.settings import describe_settings
from tests.support.monitoring import API_METRICS, exposed_names, used_metric_names
from tests.support.services import require_service

ROOT = Path(__file__).parents[2]
SETTINGS = {name for name, _, _ in describe_settings()}
COMPOSE_ONLY = {
    "MARIADB_PASSWORD",
    "MONGO_PASSWORD",
    "API_PUBLISHED_PORT",
    "OPENVLE_IMAGE",
    "PVESIM_TOKEN_SECRET",
    "API_WORKERS",
    "API_PROXY_HEADERS",
    "API_FORWARDED_ALLOW_IPS",
}


def env_example() -> dict[str, str]:
    """Variables .env.example names (set or commented out) -> example value."""
    found = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?([A-Z][A-Z0-9_]+)=(.*)$", line)
        if match:
            found[match[1]] = match[2]
    return found


def compose() -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_env_example_documents_every_setting() -> None:
    documented = env_example()
    assert SETTINGS - set(documented) == set(), "add these to .env.example"
    assert set(documented) - SETTINGS - COMPOSE_ONLY == set(), "unknown variables"


def test_compose_uses_only_known_variables() -> None:
    text = (ROOT / "compose.yaml").read_text()
    substituted = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert substituted <= SETTINGS | COMPOSE_ONLY
    services = compose()["services"]
    assert isinstance(services, dict)
    for name in ("api", "worker", "api-sim", "worker-sim", "migrate", "sync", "sync-sim"):
        env = services[name]["environment"]
        assert set(env) <= SETTINGS, name
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["api-sim"]["depends_on"]["pvesim"]["condition"] == "service_healthy"
    assert services["pvesim"]["profiles"] == ["sim"]
    assert all("healthcheck" in services[s] for s in ("mariadb", "mongodb", "redis", "worker"))


def test_compose_healthchecks_survive_podman() -> None:
    """podman 4.3's Docker API splits a CMD-form healthcheck's arguments on spaces, so an
    argument with a space needs CMD-SHELL (which Docker runs the same way)."""
    services = compose()["services"]
    assert isinstance(services, dict)
    checked = 0
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        if isinstance(test, list) and test[0] == "CMD":
            assert not [arg for arg in test[1:] if " " in arg], name
        checked += isinstance(test, list) and test[0] == "CMD-SHELL"
    assert checked >= 2  # the worker's and the simulator's


def test_compose_api_port_has_one_source() -> None:
    """`openvle api` reads API_HOST/API_PORT like the image's healthcheck; compose pins them
    (over .env) and publishes that port, and passes no --host/--port of its own."""
    services = compose()["services"]
    assert isinstance(services, dict)
    for name in ("api", "api-sim"):
        service = services[name]
        assert service["command"] == ["openvle", "api"], name
        assert service["environment"]["API_HOST"] == "0.0.0.0"
        port = service["environment"]["API_PORT"]
        assert [p.rsplit(":", 1)[1] for p in service["ports"]] == [port], name


def test_compose_syncs_once_at_start() -> None:
    """A one-shot `openvle sync` per profile after the migration (as `openvle demo` does),
    so templates are listed before the first periodic sync; nothing waits for it."""
    services = compose()["services"]
    assert isinstance(services, dict)
    for name, profile in (("sync", "cluster"), ("sync-sim", "sim")):
        service = services[name]
        assert service["command"] == ["openvle", "sync"]
        assert (service["profiles"], service["restart"]) == ([profile], "no")
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert all(name not in s.get("depends_on", {}) for s in services.values())
    sim = services["sync-sim"]
    assert sim["environment"]["PVE_HOSTNAME"] == "pvesim:8006"
    assert sim["depends_on"]["pvesim"]["condition"] == "service_healthy"


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        require_service("docker-compose", "not installed (apt-get install -y docker-compose)")
    assert exe is not None
    for name in ("compose.yaml", "Dockerfile"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    for profile in ("cluster", "sim"):
        run = subprocess.run(
            [exe, "--profile", profile, "config"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        resolved = yaml.safe_load(run.stdout)
        api = resolved["services"]["api-sim" if profile == "sim" else "api"]
        assert api["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert "change-me-mariadb" in api["environment"]["DATABASE_URL"]
    (tmp_path / ".env").write_text("PVE_HOSTNAME=pve1:8006\n")  # no passwords
    run = subprocess.run([exe, "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "MARIADB_PASSWORD" in run.stderr


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    pairs = []
    for line in text.splitlines():
        match = re.match(r"^([A-Z]+)\s+(.*)$", line.strip())
        if match:
            pairs.append((match[1], match[2]))
    return pairs


def guide(name: str) -> str:
    """A how-to guide of the documentation site (docs/how-to/NAME.md)."""
    return (ROOT / "docs" / "how-to" / f"{name}.md").read_text()


def test_dockerfile_matches_the_compose_guide() -> None:
    steps = dockerfile_instructions()
    section = guide("compose")
    runs = [arg for op, arg in steps if op == "RUN" and arg.startswith("uv ")]
    assert runs == ["uv sync --frozen --no-dev --no-install-project", "uv sync --frozen --no-dev"]
    for command in runs:
        assert command in section, command
    cmd = json.loads(next(arg for op, arg in steps if op == "CMD"))
    assert " ".join(cmd) in section
    assert ("USER", "openvle") in steps
    assert "non-root" in section
    health = next(arg for op, arg in steps if op == "HEALTHCHECK")
    assert "/health/live" in health
    assert "/health/live" in section
    command = health.split(" CMD ", 1)[1]
    assert not command.startswith("["), "shell form (CMD-SHELL): podman splits exec form"
    assert "${API_PORT" in command  # the port `openvle api` listens on
    copies = [arg for op, arg in steps if op == "COPY"]
    assert copies.index("README.md ./") > copies.index("pyproject.toml uv.lock ./")
    assert "docker compose exec api-sim openvle doctor" in section
    assert "run --rm migrate openvle doctor" not in section
    ignored = (ROOT / ".dockerignore").read_text().split()
    for op, arg in steps:
        if op == "COPY" and "--from" not in arg:
            for source in arg.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert source not in ignored, source


def test_monitoring_files_use_real_metric_names() -> None:
    """Every name an alert or a panel reads is one the code defines; the ones outside
    `API_METRICS` must come from the worker's registry too (the worker's scrape is checked
    for real in tests/worker/test_process.py, the API's in test_api_command.py)."""
    from openvle_api import metrics as api_metrics  # noqa: F401  (registers HTTP metrics)
    from openvle_core import scheduler  # noqa: F401  (registers the scheduler counter)
    from openvle_core.metrics import exposition

    known = exposed_names(exposition().decode()) | {"openvle_operations_current"}
    used = used_metric_names()
    assert len(used) >= 15, "the expressions were not read"
    assert used - known == set()
    assert used >= API_METRICS  # a stale API_METRICS would hide a worker-side gap
    dashboard = (ROOT / "deploy/grafana/openvle.json").read_text()
    assert len(json.loads(dashboard)["panels"]) >= 6
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"][0]
    names = {rule["alert"] for rule in rules["rules"]}
    assert {"OpenVLESyncFailing", "OpenVLEOperationsFailing", "OpenVLEProxmoxUnreachable"} <= names


def test_prometheus_scrapes_every_api_and_worker_of_compose() -> None:
    """deploy/prometheus/prometheus.yml finds compose's API and worker services on the
    ports they serve /metrics on (the workers' from WORKER_METRICS_PORT), and loads the
    alerts; `promtool check config` parses it in CI (.ci/promtool.sh)."""
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job["dns_sd_configs"][0] for job in config["scrape_configs"]}
    services = compose()["services"]
    assert isinstance(services, dict)
    for job, names in (
        ("openvle-api", ["api", "api-sim"]),
        ("openvle-worker", ["worker", "worker-sim"]),
    ):
        assert jobs[job]["names"] == names
        for name in names:
            env = services[name]["environment"]
            port = env["WORKER_METRICS_PORT"] if job == "openvle-worker" else env["API_PORT"]
            assert str(jobs[job]["port"]) == port, name
            if job == "openvle-worker":
                assert env["WORKER_METRICS_HOST"] == "0.0.0.0"
                assert "health/ready" in " ".join(services[name]["healthcheck"]["test"])
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
