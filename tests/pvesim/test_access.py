"""AccessControl semantics: roles per version, tokens, privsep, inheritance, pools."""

from __future__ import annotations

import re

import pytest

from openvle_pvesim.access import AccessControl
from openvle_pvesim.errors import PVEError
from openvle_pvesim.permcheck import check_method

POOLS = {100: "P", 101: None}


def make(version: str = "9.1") -> AccessControl:
    return AccessControl(version, pool_of=lambda vmid: POOLS.get(vmid))


def test_privileges_differ_per_version() -> None:
    make("8.4").add_role("Mon", ["VM.Monitor"])
    with pytest.raises(ValueError, match=re.escape("VM.Monitor")):
        make("9.1").add_role("Mon", ["VM.Monitor"])
    make("9.1").add_role("Agent", ["VM.GuestAgent.Audit", "VM.Replicate"])
    with pytest.raises(ValueError, match=re.escape("VM.GuestAgent.Audit")):
        make("8.4").add_role("Agent", ["VM.GuestAgent.Audit"])
    assert make("8.4").roles["PVETemplateUser"] == {"VM.Clone", "VM.Audit"}
    assert "VM.Monitor" in make("8.4").roles["PVEVMAdmin"]
    assert "VM.GuestAgent.Audit" in make("9.1").roles["PVEVMAdmin"]
    assert "VM.Allocate" not in make("9.1").roles["PVEAuditor"]


def test_authenticate_both_header_forms_and_escaping() -> None:
    access = make()
    access.add_token("u@pve!tk", "s3cret", privsep=False)
    for header in (
        "PVEAPIToken=u@pve!tk=s3cret",
        "PVEAPIToken u@pve!tk=s3cret",
        "PVEAPIToken=u%40pve%21tk=s3cret; other=1",
    ):
        principal = access.authenticate(header)
        assert principal is not None, header
        assert (principal.userid, principal.tokenid) == ("u@pve", "u@pve!tk")
    assert access.authenticate("PVEAPIToken=u@pve!tk=wrong") is None
    assert access.authenticate(None) is None
    assert access.verify_token("PVEAPIToken=u@pve!tk=s3cret=")[1] == "invalid token value!"
    assert access.verify_token("PVEAPIToken=u@pve!xy=s")[1] == "no such token 'xy' for user 'u@pve'"
    assert access.verify_token("Bearer abc")[1] == "No ticket"
    assert access.tokens() == {"u@pve!tk": "s3cret"}


def test_privsep_token_gets_the_intersection() -> None:
    access = make()
    access.add_user("u@pve")
    access.set_acl("/", "u@pve", "PVEVMUser")
    access.add_token("u@pve!sep", "s", privsep=True)
    access.add_token("u@pve!full", "s", privsep=False)
    access.set_acl("/", "u@pve!sep", "Administrator")
    sep = access.principal("u@pve", "u@pve!sep")
    full = access.principal("u@pve", "u@pve!full")
    assert sep.has("/vms/101", "VM.PowerMgmt")
    assert not sep.has("/vms/101", "VM.Allocate")  # the user lacks it
    assert full.has("/vms/101", "VM.PowerMgmt")
    access.add_token("u@pve!none", "s", privsep=True)
    assert not access.principal("u@pve", "u@pve!none").has("/vms/101", "VM.Audit")


def test_acl_inheritance_and_override() -> None:
    access = make()
    access.add_user("u@pve")
    access.set_acl("/vms", "u@pve", "PVEAuditor", propagate=False)
    user = access.principal("u@pve")
    assert user.has("/vms", "VM.Audit")
    assert not user.has("/vms/101", "VM.Audit")
    access.set_acl("/vms", "u@pve", "PVEVMAdmin", propagate=True)
    assert user.has("/vms/101", "VM.Allocate")
    access.set_acl("/vms/101", "u@pve", "NoAccess")
    assert not user.has("/vms/101", "VM.Audit")
    assert user.has("/vms/102", "VM.Audit")


def test_pool_acl_reaches_member_vms_with_propagate_zero() -> None:
    access = make()
    access.add_user("u@pve")
    access.set_acl("/pool/P", "u@pve", "PVEVMAdmin")
    user = access.principal("u@pve")
    assert user.has("/vms/100", "VM.Allocate")
    assert not user.has("/vms/101", "VM.Audit")
    perms = user.permissions("/vms/100")
    assert perms["/vms/100"]["VM.Allocate"] == 0
    assert user.permissions("/pool/P")["/pool/P"]["VM.Allocate"] == 1
    assert user.permissions("/vms/101") == {"/vms/101": {}}
    assert "/pool/P" in user.permissions()


def test_root_has_everything() -> None:
    root = make("8.4").principal("root@pam")
    assert root.has("/vms/12345", "VM.Monitor")
    assert root.permissions("/")["/"]["Sys.Modify"] == 1


def test_403_messages() -> None:
    access = make()
    access.add_user("u@pve")
    user = access.principal("u@pve")
    with pytest.raises(PVEError) as single:
        user.check("/vms/100", ["VM.Allocate"])
    assert (single.value.status, single.value.message) == (
        403,
        "Permission check failed (/vms/100, VM.Allocate)",
    )
    with pytest.raises(PVEError) as any_:
        user.check("/vms/100", ["VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted"], any_=True)
    assert any_.value.message == (
        "Permission check failed (/vms/100, VM.GuestAgent.Audit|VM.GuestAgent.Unrestricted)"
    )


def test_schema_checks_with_or_and_require_param() -> None:
    access = make()
    access.add_user("u@pve")
    access.set_acl("/pool/P", "u@pve", "PVEVMAdmin")
    user = access.principal("u@pve")
    clone = [
        "and",
        ["perm", "/vms/{vmid}", ["VM.Clone"]],
        [
            "or",
            ["perm", "/vms/{newid}", ["VM.Allocate"]],
            ["perm", "/pool/{pool}", ["VM.Allocate"], "require_param", "pool"],
        ],
    ]
    check_method({"check": clone}, user, {"vmid": 100, "newid": 150, "pool": "P"})
    with pytest.raises(PVEError) as without_pool:
        check_method({"check": clone}, user, {"vmid": 100, "newid": 150})
    assert without_pool.value.message == "Permission check failed"
    with pytest.raises(PVEError) as source:
        check_method({"check": clone}, user, {"vmid": 101, "newid": 150, "pool": "P"})
    assert source.value.message == "Permission check failed (/vms/101, VM.Clone)"
    check_method({"user": "all"}, user, {})
    with pytest.raises(PVEError, match="user != root@pam"):
        check_method(None, user, {})
    check_method(None, access.principal("root@pam"), {})
