"""Password login (POST /access/ticket), ticket cookies with CSRF tokens, and the realm,
user and group lists, over HTTP (pve-access-control API2/AccessControl.pm, Domains.pm,
User.pm, Group.pm; pve-manager HTTPServer.pm auth_handler)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from openvle_pvesim import Simulator
from tests.pvesim.kit import CI_TOKEN, pve
from tests.pvesim.modelkit import ok, run

TICKET_RE = re.compile(r"^PVE:[^:]+@[a-z]+:[0-9A-F]{8}::\S+$")


async def login(sim: Simulator, userid: str, password: str | None = None) -> dict[str, Any]:
    async with pve(sim, token=None) as anonymous:
        data = {"username": userid, "password": password or sim.passwords[userid]}
        response = await anonymous.post("/access/ticket", data=data)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["data"]
    return result


def with_ticket(sim: Simulator, session: dict[str, Any], csrf: bool = True) -> httpx.AsyncClient:
    headers = {"CSRFPreventionToken": session["CSRFPreventionToken"]} if csrf else {}
    return pve(sim, token=None, cookies={"PVEAuthCookie": session["ticket"]}, headers=headers)


async def test_realms_are_listed_without_credentials(sim: Simulator) -> None:
    async with pve(sim, token=None) as anonymous:
        realms = await ok(await anonymous.get("/access/domains"))
        assert (await anonymous.get("/access/users")).status_code == 401  # this one needs auth
    assert {(r["realm"], r["type"]) for r in realms} == {("pam", "pam"), ("pve", "pve")}


async def test_password_login_returns_ticket_csrf_token_and_caps(sim: Simulator) -> None:
    root = await login(sim, "root@pam")
    assert TICKET_RE.match(root["ticket"])
    assert re.match(r"^[0-9A-F]{8}:\S+$", root["CSRFPreventionToken"])
    assert root["username"] == "root@pam"
    assert root["clustername"] == "openvle-sim"
    assert root["cap"]["vms"]["VM.Allocate"] == 1
    assert root["cap"]["access"]["User.Modify"] == 1
    openvle = await login(sim, "openvle@pve")
    assert openvle["cap"]["vms"]["VM.Clone"] == 1  # through its pool ACL
    assert "User.Modify" not in openvle["cap"]["access"]
    assert "clustername" in openvle  # Sys.Audit on / (not propagated)


async def test_realm_parameter_completes_the_username(sim: Simulator) -> None:
    async with pve(sim, token=None) as anonymous:
        response = await anonymous.post(
            "/access/ticket",
            data={"username": "openvle", "realm": "pve", "password": sim.passwords["openvle@pve"]},
        )
    assert (await ok(response))["username"] == "openvle@pve"


async def test_failed_logins_are_one_401_whatever_the_cause(sim: Simulator) -> None:
    async with pve(sim, token=None) as anonymous:
        for username, password in (("root@pam", "wrong"), ("ghost@pve", "x"), ("root", "x")):
            response = await anonymous.post(
                "/access/ticket", data={"username": username, "password": password}
            )
            assert response.status_code == 401
            assert response.reason_phrase == "authentication failure"
            assert response.json()["message"] == "authentication failure\n"
    sim.cluster.access.accounts["openvle@pve"].enable = False
    async with pve(sim, token=None) as anonymous:
        data = {"username": "openvle@pve", "password": sim.passwords["openvle@pve"]}
        assert (await anonymous.post("/access/ticket", data=data)).status_code == 401


async def test_tokens_may_not_create_tickets(sim: Simulator, ci: httpx.AsyncClient) -> None:
    response = await ci.post("/access/ticket", data={"username": "root@pam", "password": "x"})
    assert response.status_code == 403
    assert "not available with API token, need proper ticket" in response.json()["message"]


async def test_ticket_cookie_authenticates_and_writes_need_the_csrf_token(
    sim: Simulator,
) -> None:
    session = await login(sim, "openvle@pve")
    async with with_ticket(sim, session) as client:
        assert (await ok(await client.get("/version")))["release"] == sim.version
        clone = await client.post(
            "/nodes/pve1/qemu/9000/clone", data={"newid": 350, "pool": "OpenVLE-VMs"}
        )
        status = await run(client, clone)
        assert status["exitstatus"] == "OK"
        assert status["user"] == "openvle@pve"
        assert "tokenid" not in status
    async with with_ticket(sim, session, csrf=False) as client:
        assert (await client.get("/nodes/pve1/qemu/350/config")).status_code == 200
        refused = await client.post("/nodes/pve1/qemu/350/status/start")
        assert refused.status_code == 401
        assert refused.reason_phrase == "Permission denied - invalid csrf token"
        assert refused.content == b""
        forged = await client.post(
            "/nodes/pve1/qemu/350/status/start",
            headers={"CSRFPreventionToken": session["CSRFPreventionToken"][:-2] + "xx"},
        )
        assert forged.status_code == 401


async def test_ticket_in_the_authorization_header_works_too(sim: Simulator) -> None:
    session = await login(sim, "root@pam")
    header = {"Authorization": f"PVEAuthCookie={session['ticket']}"}
    async with pve(sim, token=None, headers=header) as client:
        assert (await client.get("/cluster/status")).status_code == 200


async def test_bad_tickets_fail_with_the_version_s_reason(sim: Simulator) -> None:
    session = await login(sim, "root@pam")
    tampered = session["ticket"].replace("root@pam", "openvle@pve")
    async with pve(sim, token=None, cookies={"PVEAuthCookie": tampered}) as client:
        response = await client.get("/version")
    assert response.status_code == 401
    assert response.content == b""
    expected = "Authentication failed!" if sim.version == "9.1" else "permission denied - "
    assert response.reason_phrase.startswith(expected)


async def test_a_ticket_renews_itself_and_verifies_privileges(sim: Simulator) -> None:
    session = await login(sim, "openvle@pve")
    renewed = await login(sim, "openvle@pve", session["ticket"])
    assert TICKET_RE.match(renewed["ticket"])
    async with pve(sim, token=None) as anonymous:
        check = {"username": "openvle@pve", "password": session["ticket"]}
        allowed = await anonymous.post(
            "/access/ticket", data={**check, "path": "/pool/OpenVLE-VMs", "privs": "VM.Clone"}
        )
        denied = await anonymous.post(
            "/access/ticket", data={**check, "path": "/", "privs": "Sys.Modify"}
        )
    assert (await ok(allowed))["username"] == "openvle@pve"
    assert "ticket" not in (await ok(allowed))
    assert denied.status_code == 401


async def test_user_list_shows_what_the_caller_may_audit(sim: Simulator) -> None:
    root = await login(sim, "root@pam")
    async with with_ticket(sim, root) as client:
        users = {u["userid"]: u for u in await ok(await client.get("/access/users"))}
        full = {
            u["userid"]: u for u in await ok(await client.get("/access/users", params={"full": 1}))
        }
    assert {"root@pam", "openvle@pve"} <= set(users)
    assert users["openvle@pve"]["realm-type"] == "pve"
    assert users["root@pam"]["enable"] == 1
    assert full["openvle@pve"]["groups"] == "openvle"
    assert {"tokenid": "ci", "expire": 0, "privsep": 1} in full["openvle@pve"]["tokens"]
    async with with_ticket(sim, await login(sim, "openvle@pve")) as client:
        own = await ok(await client.get("/access/users"))
    assert [u["userid"] for u in own] == ["openvle@pve"]  # only itself
    async with pve(sim, CI_TOKEN) as token:
        assert await ok(await token.get("/access/users")) == []  # a token is not its user


async def test_group_list_needs_rights_on_the_group(sim: Simulator) -> None:
    openvle = await login(sim, "openvle@pve")
    async with with_ticket(sim, openvle) as client:
        assert await ok(await client.get("/access/groups")) == []
        sim.cluster.access.set_acl("/access/groups/openvle", "openvle@pve", "PVEAuditor")
        groups = await ok(await client.get("/access/groups"))
    assert groups == [
        {"groupid": "openvle", "comment": "OpenVLE service accounts", "users": "openvle@pve"}
    ]
    root = await login(sim, "root@pam")
    async with with_ticket(sim, root) as client:
        assert [g["groupid"] for g in await ok(await client.get("/access/groups"))] == ["openvle"]


async def test_unserved_access_paths_still_answer_501(sim: Simulator) -> None:
    async with with_ticket(sim, await login(sim, "root@pam")) as client:
        response = await client.get("/access/users/root@pam")
    assert response.status_code == 501
    assert response.json()["message"] == "Method 'GET /access/users/root@pam' not implemented"
