"""The request path's caches never change an answer: invalidation and private copies."""

from __future__ import annotations

import pytest

from openvle_pvesim.access import AccessControl
from openvle_pvesim.errors import PVEError
from openvle_pvesim.schema import load_schema, validate_params

STATUS = "/nodes/{node}/qemu/{vmid}/status/current"


def test_a_verified_header_stops_working_when_the_token_changes() -> None:
    access = AccessControl("9.1", pool_of=lambda vmid: None)
    access.add_token("u@pve!tk", "old", privsep=False)
    header = "PVEAPIToken=u@pve!tk=old"
    assert access.authenticate(header) is not None
    assert access.authenticate(header) is not None  # served from the cache
    access.add_token("u@pve!tk", "new", privsep=False)
    assert access.verify_token(header) == (None, "invalid token value!")
    assert access.authenticate("PVEAPIToken=u@pve!tk=new") is not None


def test_cached_privileges_follow_acl_and_pool_changes() -> None:
    pools: dict[int, str | None] = {100: None}
    access = AccessControl("9.1", pool_of=pools.get)
    access.add_user("u@pve")
    user = access.principal("u@pve")
    assert not user.has("/vms/100", "VM.Audit")
    access.set_acl("/pool/P", "u@pve", "PVEAuditor")
    assert not user.has("/vms/100", "VM.Audit")
    pools[100] = "P"  # joining the pool changes the key, not only the ACLs
    assert user.has("/vms/100", "VM.Audit")


@pytest.mark.parametrize("version", ["9.1", "8.4"])
def test_repeated_get_validation_returns_equal_private_copies(version: str) -> None:
    spec = load_schema(version).method("GET", STATUS)
    assert spec is not None
    first = validate_params(spec, {"node": "pve1", "vmid": "100"})
    first["vmid"] = "changed by a handler"
    second = validate_params(spec, {"node": "pve1", "vmid": "100"})
    assert second == {"node": "pve1", "vmid": 100}
    for _ in range(2):  # failures are never cached
        with pytest.raises(PVEError) as caught:
            validate_params(spec, {"node": "pve1", "vmid": "x"})
        assert "vmid" in (caught.value.errors or {})
