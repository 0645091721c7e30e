"""Schema loading, parameter validation texts and response checks (no socket needed)."""

from __future__ import annotations

from typing import Any

import pytest

from openvle_pvesim.errors import PVEError
from openvle_pvesim.schema import load_schema, validate_params, validate_response

CLONE = "/nodes/{node}/qemu/{vmid}/clone"
CONFIG = "/nodes/{node}/qemu/{vmid}/config"


def errors_of(version: str, method: str, template: str, params: dict[str, Any]) -> dict[str, str]:
    spec = load_schema(version).method(method, template)
    assert spec is not None
    with pytest.raises(PVEError) as caught:
        validate_params(spec, params)
    assert caught.value.status == 400
    assert caught.value.message == "Parameter verification failed."
    return caught.value.errors or {}


@pytest.mark.parametrize("version", ["9.1", "8.4"])
def test_both_schemas_ship_with_the_package(version: str) -> None:
    schema = load_schema(version)
    assert schema.method("GET", "/version") is not None
    assert ("VM.Monitor" in schema.privileges()) is (version == "8.4")
    assert ("VM.GuestAgent.Audit" in schema.privileges()) is (version == "9.1")


def test_valid_params_are_coerced() -> None:
    spec = load_schema("9.1").method("POST", CLONE)
    assert spec is not None
    params = validate_params(
        spec, {"node": "pve1", "vmid": "9000", "newid": "101", "full": "1", "name": "a.b-c"}
    )
    assert params == {"node": "pve1", "vmid": 9000, "newid": 101, "full": True, "name": "a.b-c"}


def test_pve_error_texts() -> None:
    base = {"node": "pve1", "vmid": "9000"}
    assert errors_of("9.1", "POST", CLONE, {**base, "newid": "101", "full": "yes"}) == {
        "full": "type check ('boolean') failed - got 'yes'"
    }
    assert errors_of("9.1", "POST", CLONE, {**base, "newid": "101", "format": "vdi"}) == {
        "format": "value 'vdi' does not have a value in the enumeration 'raw, qcow2, vmdk'"
    }
    assert errors_of("9.1", "POST", CLONE, {**base, "newid": "101", "snapname": "s" * 41}) == {
        "snapname": "value may only be 40 characters long"
    }
    assert errors_of("9.1", "POST", CLONE, {**base, "newid": "1000000000"}) == {
        "newid": "invalid format - value does not look like a valid VM ID\n"
    }
    assert errors_of("8.4", "POST", CLONE, {**base, "newid": "101", "bwlimit": "-1"}) == {
        "bwlimit": "value must have a minimum value of 0"
    }


def test_property_strings_are_checked_against_their_format() -> None:
    base = {"node": "pve1", "vmid": "100"}
    errors = errors_of(
        "9.1", "PUT", CONFIG, {**base, "agent": "enabled=2", "ipconfig0": "ip=10.0.0.5"}
    )
    assert errors["agent"] == (
        "invalid format - format error\nagent.enabled: type check ('boolean') failed - got '2'\n"
    )
    assert errors["ipconfig0"].startswith("invalid format - format error\nipconfig0.ip: ")
    assert errors_of("9.1", "PUT", CONFIG, {**base, "net0": "virtio,bridge=vmbr0,x=1"}) == {
        "net0": "invalid format - invalid key in comma-separated list property: x\n"
    }
    spec = load_schema("9.1").method("PUT", CONFIG)
    assert spec is not None
    ok = {
        **base,
        "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1",
        "ipconfig0": "ip=10.0.0.5/24,gw=10.0.0.1",
        "smbios1": "uuid=0b9c6d1e-2f3a-4b5c-8d7e-9f0a1b2c3d4e,serial=QUJD,base64=1",
        "agent": "1,fstrim_cloned_disks=1",
    }
    assert validate_params(spec, ok)["net0"] == ok["net0"]


def test_smbios1_rejects_plain_text_and_long_values() -> None:
    base = {"node": "pve1", "vmid": "100"}
    assert errors_of("8.4", "PUT", CONFIG, {**base, "smbios1": "manufacturer=ACME Inc"}) == {
        "smbios1": "invalid format - format error\n"
        "smbios1.manufacturer: value does not match the regex pattern\n"
    }
    too_long = "serial=" + "A" * 510
    assert errors_of("9.1", "PUT", CONFIG, {**base, "smbios1": too_long}) == {
        "smbios1": "value may only be 512 characters long"
    }


def test_response_checks() -> None:
    assert validate_response("9.1", "GET", "/cluster/nextid", "100") == []
    assert validate_response("9.1", "GET", "/version", {"version": "9.1.2", "release": "9.1"}) == [
        "GET /version.repoid: required property missing"
    ]
    bad = validate_response(
        "8.4", "GET", "/nodes/{node}/tasks/{upid}/status", {"status": "done", "pid": "x"}
    )
    assert any("status" in line and "enum" in line for line in bad)
    assert any(line.startswith("GET /nodes/{node}/tasks/{upid}/status.pid") for line in bad)
    assert validate_response("9.1", "DELETE", "/nodes/{node}/qemu/{vmid}", None) != []


def test_arrays_for_list_formats_are_joined_and_other_arrays_refused() -> None:
    spec = load_schema("9.1").method("PUT", CONFIG)
    assert spec is not None
    params = validate_params(spec, {"node": "pve1", "vmid": "100", "delete": ["tags", "name"]})
    assert params["delete"] == "tags,name"
    assert errors_of("9.1", "PUT", CONFIG, {"node": "pve1", "vmid": "100", "name": ["a"]}) == {
        "name": "type check ('string') failed - got ARRAY"
    }
