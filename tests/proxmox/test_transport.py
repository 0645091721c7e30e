"""The I/O seam with respx: what the simulator cannot easily produce, and the retry rules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx
from pydantic import SecretStr, ValidationError

from openvle_core.proxmox import (
    CallStats,
    ProxmoxBadResponse,
    ProxmoxClient,
    ProxmoxConflict,
    ProxmoxPermissionDenied,
    ProxmoxUnavailable,
    RetryPolicy,
)
from openvle_core.proxmox.models import ClusterResource
from openvle_core.proxmox.resources import FIELDS, GUEST_KEPT, as_dict, kept
from openvle_core.settings import ProxmoxSettings
from openvle_core.sync.cluster import Guest

BASE = "https://pve.test:8006/api2/json"
STATUS_URL = BASE + "/version"
FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002, total_time=5.0)


@pytest.fixture
def settings() -> ProxmoxSettings:
    return ProxmoxSettings(
        hostname="pve.test:8006", user="openvle@pve", token_name="ci", token_value=SecretStr("s3")
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def make_client(
    http: httpx.AsyncClient, settings: ProxmoxSettings, stats: CallStats | None = None
) -> ProxmoxClient:
    return ProxmoxClient(http, settings, retry=FAST, observer=stats)


async def test_token_header_and_envelope(
    mock: respx.MockRouter, http: httpx.AsyncClient, settings: ProxmoxSettings
) -> None:
    route = mock.get(STATUS_URL).respond(
        json={"data": {"version": "9.1.2", "release": "9.1", "repoid": "d3a5b4c1"}}
    )
    version = await make_client(http, settings).version()
    assert version.major_minor == (9, 1)
    assert route.calls.last.request.headers["Authorization"] == ("PVEAPIToken=openvle@pve!ci=s3")


async def test_malformed_json_is_bad_response(
    mock: respx.MockRouter, http: httpx.AsyncClient, settings: ProxmoxSettings
) -> None:
    route = mock.get(STATUS_URL).respond(200, content=b'{"data": {"version": "9.1')
    with pytest.raises(ProxmoxBadResponse, match="not a JSON envelope"):
        await make_client(http, settings).version()
    assert route.call_count == 1  # a garbled answer is not retried


async def test_596_with_empty_body_is_transient_and_retried(
    mock: respx.MockRouter, http: httpx.AsyncClient, settings: ProxmoxSettings
) -> None:
    route = mock.get(STATUS_URL).mock(
        return_value=httpx.Response(
            596, content=b"", extensions={"reason_phrase": b"Connection timed out"}
        )
    )
    stats = CallStats()
    with pytest.raises(ProxmoxUnavailable, match="Connection timed out") as info:
        await make_client(http, settings, stats).version()
    assert info.value.status == 596
    assert route.call_count == FAST.attempts
    assert stats.errors["ProxmoxUnavailable"] == FAST.attempts
    assert sum(stats.retries.values()) == FAST.attempts - 1


class _BodyThenReset(httpx.AsyncByteStream):
    """A body whose connection drops after the first chunk, as a reset peer does."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"data": {"version": '
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


def _body_then_reset() -> _BodyThenReset:
    return _BodyThenReset()


async def test_reset_mid_body_get_is_retried(
    mock: respx.MockRouter, http: httpx.AsyncClient, settings: ProxmoxSettings
) -> None:
    good = {"data": {"version": "8.4.1", "release": "8.4", "repoid": "2a5fa54a"}}
    route = mock.get(STATUS_URL).mock(
        side_effect=[httpx.Response(200, stream=_body_then_reset()), httpx.Response(200, json=good)]
    )
    version = await make_client(http, settings).version()
    assert version.release == "8.4"
    assert route.call_count == 2


async def test_reset_mid_body_post_is_not_retried(
    mock: respx.MockRouter, http: httpx.AsyncClient, settings: ProxmoxSettings
) -> None:
    route = mock.put(BASE + "/pools").mock(
        side_effect=[httpx.Response(200, stream=_body_then_reset())]
    )
    client = make_client(http, settings)
    mock.get(STATUS_URL).respond(json={"data": {"version": "9.1.2", "release": "9.1"}})
    with pytest.raises(ProxmoxUnavailable) as info:
        await client.add_to_pool([120])
    assert not info.value.retry_safe
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)
    assert route.call_count == 1


async def test_write_retried_only_after_connect_error(
    mock: respx.MockRouter, http: httpx.AsyncClient, settings: ProxmoxSettings
) -> None:
    mock.get(STATUS_URL).respond(json={"data": {"version": "9.1.2", "release": "9.1"}})
    route = mock.put(BASE + "/pools").mock(
        side_effect=[
            httpx.ConnectError("connection refused"),
            httpx.Response(200, json={"data": None}),
        ]
    )
    await make_client(http, settings).add_to_pool([120])
    assert route.call_count == 2
    sent = route.calls.last.request.content.decode()
    assert "poolid=OpenVLE-VMs" in sent
    assert "vms=120" in sent


async def test_write_not_retried_after_503(
    mock: respx.MockRouter, http: httpx.AsyncClient, settings: ProxmoxSettings
) -> None:
    mock.get(STATUS_URL).respond(json={"data": {"version": "9.1.2", "release": "9.1"}})
    route = mock.put(BASE + "/pools").respond(503, content=b"")
    with pytest.raises(ProxmoxUnavailable):
        await make_client(http, settings).add_to_pool([120])
    assert route.call_count == 1


async def test_synchronous_lock_timeout_write_is_retried(
    mock: respx.MockRouter, http: httpx.AsyncClient, settings: ProxmoxSettings
) -> None:
    mock.get(STATUS_URL).respond(json={"data": {"version": "9.1.2", "release": "9.1"}})
    lock = {
        "data": None,
        "message": "can't lock file '/var/lock/qemu-server/lock-120.conf' - got timeout\n",
    }
    route = mock.put(BASE + "/pools").mock(
        side_effect=[httpx.Response(500, json=lock), httpx.Response(200, json={"data": None})]
    )
    await make_client(http, settings).add_to_pool([120])
    assert route.call_count == 2


async def test_conflict_from_errors_dict(
    mock: respx.MockRouter, http: httpx.AsyncClient, settings: ProxmoxSettings
) -> None:
    body = {
        "data": None,
        "message": "Parameter verification failed.\n",
        "errors": {"vmid": "VM 105 already exists"},
    }
    mock.get(BASE + "/cluster/nextid").respond(400, json=body)
    with pytest.raises(ProxmoxConflict) as info:
        await make_client(http, settings).next_vmid()
    assert info.value.errors == {"vmid": "VM 105 already exists"}


async def test_schema_mismatch_is_bad_response(
    mock: respx.MockRouter, http: httpx.AsyncClient, settings: ProxmoxSettings
) -> None:
    mock.get(BASE + "/cluster/resources").respond(json={"data": [{"id": "qemu/100"}]})
    mock.get(BASE + "/cluster/nextid").respond(json={"data": "abc"})
    client = make_client(http, settings)
    with pytest.raises(ProxmoxBadResponse, match="ClusterResource") as info:
        await client.cluster_resources()
    assert isinstance(info.value.__cause__, ValidationError)
    with pytest.raises(ProxmoxBadResponse, match="not a vmid"):
        await client.next_vmid()


@pytest.mark.parametrize(
    "data",
    [
        {"id": "qemu/100"},  # not a list
        [{"id": "qemu/100", "type": "qemu"}, "qemu/101"],  # an entry not an object
        [{"id": "qemu/100"}],  # no type
        [{"type": "qemu"}],  # no id
        [{"id": 100, "type": "qemu"}],  # id not a string
        [{"id": "qemu/100", "type": None}],  # type not a string
    ],
)
async def test_resource_entries_must_have_id_and_type(
    mock: respx.MockRouter, http: httpx.AsyncClient, settings: ProxmoxSettings, data: object
) -> None:
    mock.get(BASE + "/cluster/resources").respond(json={"data": data})
    with pytest.raises(ProxmoxBadResponse, match="not a list of resources") as info:
        await make_client(http, settings).cluster_resource_entries()
    assert info.value.path == "/cluster/resources"


async def test_resource_entries_not_json_or_no_envelope(
    mock: respx.MockRouter, http: httpx.AsyncClient, settings: ProxmoxSettings
) -> None:
    client = make_client(http, settings)
    for body in (b"<html>proxy error</html>", b'{"errors": {}}', b""):
        mock.get(BASE + "/cluster/resources").respond(200, content=body)
        with pytest.raises(ProxmoxBadResponse, match="not a list of resources"):
            await client.cluster_resource_entries()


async def test_resource_entries_error_answers_are_translated(
    mock: respx.MockRouter, http: httpx.AsyncClient, settings: ProxmoxSettings
) -> None:
    """A 4xx/5xx answer is the usual typed error (its JSON body read as for every call),
    and a 503 is retried like any GET."""
    route = mock.get(BASE + "/cluster/resources")
    route.side_effect = [
        httpx.Response(503, json={"data": None}),
        httpx.Response(200, json={"data": [{"id": "node/pve1", "type": "node"}]}),
    ]
    entries = await make_client(http, settings).cluster_resource_entries()
    assert [e.id for e in entries] == ["node/pve1"]
    assert route.call_count == 2
    mock.get(BASE + "/cluster/resources").respond(403, json={"message": "no Sys.Audit"})
    with pytest.raises(ProxmoxPermissionDenied, match=r"no Sys\.Audit"):
        await make_client(http, settings).cluster_resource_entries()


async def test_resource_entries_keep_the_fields_as_sent(
    mock: respx.MockRouter, http: httpx.AsyncClient, settings: ProxmoxSettings
) -> None:
    """Values are not coerced (the sync validates what it uses), missing fields are None,
    fields OpenVLE never reads (traffic counters) are dropped."""
    guest = {"id": "qemu/100", "type": "qemu", "vmid": 100, "template": 1, "netin": 5}
    guest |= {"maxcpu": 2, "uptime": 30, "status": "running", "future-field": {"a": 1}}
    data = [guest, {"id": "node/pve1", "type": "node", "maxmem": 2**40}]
    mock.get(BASE + "/cluster/resources").respond(json={"data": data})
    vm, node = await make_client(http, settings).cluster_resource_entries()
    sent = ("qemu/100", "qemu", None, 100, None, "running", 1, *[None] * 4, 2, None, None)
    assert kept(vm) == sent
    assert as_dict(vm) == {k: v for k, v in guest.items() if k not in {"netin", "future-field"}}
    assert vm.template == 1
    assert vm.template is not True
    assert vm.uptime == 30
    assert as_dict(node) == data[1]
    mock.get(BASE + "/cluster/resources").respond(json={"data": []})
    assert await make_client(http, settings).cluster_resource_entries() == []


def test_resource_entries_lead_with_the_fields_the_sync_keeps() -> None:
    assert FIELDS[: len(GUEST_KEPT)] == GUEST_KEPT == Guest._fields
    assert set(FIELDS) == set(ClusterResource.model_fields)
