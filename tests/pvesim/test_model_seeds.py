"""Seeds and the lagged /cluster/resources view, called on the model directly."""

from __future__ import annotations

import random

import pytest

from openvle_pvesim.cluster import Cluster, NoFaults
from openvle_pvesim.seeds import ADMIN_TOKEN, OPENVLE_POOL, OPENVLE_TOKEN, build_cluster

VERSIONS = ["9.1", "8.4"]


def make(version: str, seed: str = "demo", vms: int = 0) -> Cluster:
    return build_cluster(
        seed,
        version=version,
        vms=vms,
        time_scale=0,
        faults=NoFaults(),
        rng=random.Random(7),
        tokens=[("extra@pve!tk", "s3cret"), ("openvle@pve!other", "s3cret2")],
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_demo_seed_has_nodes_storages_and_templates(version: str) -> None:
    cluster = make(version)
    assert list(cluster.nodes) == ["pve1", "pve2", "pve3"]
    assert len({n.cpu for n in cluster.nodes.values()}) == 3
    assert cluster.storages["ceph"].shared
    assert not cluster.storages["local-lvm"].shared
    templates = [vm for vm in cluster.vms.values() if vm.is_template]
    assert sorted(vm.vmid for vm in templates) == [9000, 9001, 9002]
    assert all(cluster.pool_of(vm.vmid) == OPENVLE_POOL for vm in templates)
    on_local = [vm for vm in templates if "local-lvm" in vm.config["scsi0"]]
    assert [vm.node for vm in on_local] == ["pve2"]
    for vm in templates:
        assert vm.config["agent"] == "1"
        assert "media=cdrom" in vm.config["ide2"]
        assert vm.config["net0"].startswith("virtio=BC:24:11:")


@pytest.mark.parametrize("version", VERSIONS)
def test_openvle_token_sees_only_its_pool(version: str) -> None:
    cluster = make(version)
    token = cluster.access.principal("openvle@pve", OPENVLE_TOKEN)
    vmids = {e["vmid"] for e in cluster.resources(token, "vm")}
    assert vmids == {9000, 9001, 9002}
    admin = cluster.access.principal("root@pam", ADMIN_TOKEN)
    assert {200, 201, 202} <= {e["vmid"] for e in cluster.resources(admin, "vm")}
    agent_priv = "VM.Monitor" if version == "8.4" else "VM.GuestAgent.Audit"
    assert token.has("/vms/9000", agent_priv)
    assert not token.has("/vms/200", "VM.Audit")
    extra = cluster.access.principal("openvle@pve", "openvle@pve!other")
    assert {e["vmid"] for e in cluster.resources(extra, "vm")} == {9000, 9001, 9002}
    assert cluster.access.principal("extra@pve", "extra@pve!tk").has("/vms/200", "VM.Allocate")


@pytest.mark.parametrize("version", VERSIONS)
def test_resource_type_filters_and_pool_entries(version: str) -> None:
    cluster = make(version)
    admin = cluster.access.principal("root@pam", ADMIN_TOKEN)
    everything = cluster.resources(admin, None)
    assert {e["type"] for e in everything} == {"qemu", "node", "storage", "sdn", "pool"}
    assert {e["type"] for e in cluster.resources(admin, "storage")} == {"storage"}
    assert len(cluster.resources(admin, "node")) == 3
    pool = next(e for e in everything if e["type"] == "pool" and e["pool"] == "Other-Team")
    assert pool["id"] == "/pool/Other-Team"
    assert pool["mem"] > 0


@pytest.mark.parametrize("version", VERSIONS)
def test_empty_seed_has_no_vms(version: str) -> None:
    cluster = make(version, "empty")
    assert cluster.vms == {}
    assert len(cluster.nodes) == 3
    assert OPENVLE_POOL in cluster.pools


def test_json_seed(tmp_path: pytest.TempPathFactory) -> None:
    import json
    from pathlib import Path

    path = Path(str(tmp_path)) / "seed.json"
    spec = {
        "nodes": [{"name": "n1", "cpu": 0.3}],
        "pools": [{"poolid": "P"}],
        "vms": [
            {
                "vmid": 100,
                "node": "n1",
                "pool": "P",
                "running": True,
                "config": {"name": "a", "memory": "1024", "scsi0": "ceph:vm-100-disk-0,size=8G"},
            }
        ],
        "ha": [{"vmid": 100, "state": "started"}],
    }
    path.write_text(json.dumps(spec))
    cluster = make("9.1", str(path))
    assert list(cluster.nodes) == ["n1"]
    assert cluster.vms[100].running
    assert cluster.pool_of(100) == "P"
    assert cluster.ha[100].crm_state == "started"


def test_ten_thousand_vms_spread_over_nodes() -> None:
    cluster = make("9.1", vms=10_000)
    extra = [vm for vm in cluster.vms.values() if vm.vmid >= 10_000]
    assert len(extra) == 10_000
    assert {vm.node for vm in extra} == {"pve1", "pve2", "pve3"}
    assert any(vm.running for vm in extra)
    assert not all(vm.running for vm in extra)
    linked = [vm for vm in extra if "/vm-" in vm.config["scsi0"]]
    assert len(linked) == 9_000  # the rest are full clones
    assert sum("gw=" in vm.config["ipconfig0"] for vm in extra) > 1000
    token = cluster.access.principal("openvle@pve", OPENVLE_TOKEN)
    assert len(cluster.resources(token, "vm")) == 10_003
