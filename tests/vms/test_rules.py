"""Pure rules of the VM steps: SMBIOS encoding, names, retry policy (placement: tests/placement)."""

from __future__ import annotations

import base64

import pytest

from openvle_core.errors import InvalidRequest
from openvle_core.guests.errors import SmbiosMetadataTooLong
from openvle_core.guests.smbios import MAX_LENGTH, SmbiosMetadata, build_smbios1, parse_smbios1
from openvle_core.names import dns_name, name_change, text_problem
from openvle_core.operations.retry import backoff, is_transient
from openvle_core.proxmox import ProxmoxTaskFailed, ProxmoxUnavailable, ProxmoxValidationError

UUID = "6f1c2b0e-2d4a-4c61-9d0b-8c5f0e2a7b31"


def meta(product: str = "lab-01", family: str = "ws24") -> SmbiosMetadata:
    return SmbiosMetadata("OpenVLE Project", product, "tmpl-1", "0193-vm-uuid", family)


def test_smbios_is_base64_with_flag_and_keeps_the_uuid() -> None:
    value = build_smbios1(f"uuid={UUID},manufacturer=old", meta())
    assert value.startswith(f"uuid={UUID},")
    assert value.endswith(",base64=1")
    raw = dict(part.split("=", 1) for part in value.split(","))
    assert base64.b64decode(raw["manufacturer"]).decode() == "OpenVLE Project"
    decoded = parse_smbios1(value)
    assert (decoded["serial"], decoded["family"], decoded["version"]) == (
        "0193-vm-uuid",
        "ws24",
        "tmpl-1",
    )


def test_smbios_fits_in_512_characters_and_never_shortens_the_serial() -> None:
    value = build_smbios1(f"uuid={UUID}", meta(product="p" * 400, family="f" * 200))
    assert len(value) <= MAX_LENGTH
    assert parse_smbios1(value)["serial"] == "0193-vm-uuid"


def test_smbios_that_cannot_fit_is_a_typed_error_naming_the_cause() -> None:
    with pytest.raises(SmbiosMetadataTooLong, match="existing uuid") as info:
        build_smbios1("uuid=" + "u" * MAX_LENGTH, meta())
    assert info.value.code == "smbios_metadata_too_long"
    assert not is_transient(info.value)


def test_dns_names() -> None:
    assert dns_name("Lab_01 of WS 2024!") == "lab-01-of-ws-2024"
    with pytest.raises(InvalidRequest):
        dns_name("___")


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("\u0430dmin", "admin"),  # a Cyrillic a: transliterated, not dropped ("dmin")
        ("Жук-Щука", "zhuk-shchuka"),
        ("Ελληνικά 101", "ellinika-101"),
        ("Crème brûlée", "creme-brulee"),
        ("Łódź", "lodz"),
        ("\uff21\uff22\uff23 \ufb01le", "abc-file"),  # fullwidth letters, the fi ligature
    ],
)
def test_dns_names_transliterate_letters_outside_ascii(given: str, used: str) -> None:
    assert dns_name(given) == used
    note = name_change(given, used)
    assert note is not None
    assert repr(given) in note
    assert repr(used) in note
    assert name_change(used, used) is None


def test_a_name_with_nothing_left_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidRequest, match="no usable VM name") as info:
        dns_name("\u5b9e\u9a8c")  # Chinese: no Latin spelling here, so nothing is left
    assert info.value.field == "name"


@pytest.mark.parametrize(
    ("text", "multiline", "bad"),
    [
        ("Lab\x00", False, "U+0000"),
        ("Lab\r\nInjected: yes", False, "U+000D"),
        ("admin\u202egnp.exe", False, "U+202E"),
        ("x\u2066y", True, "U+2066"),
        ("lone \ud800", True, "U+D800"),
        ("two\nlines\tand a tab\x07", True, "U+0007"),
    ],
)
def test_text_with_control_or_bidi_characters_is_refused(
    text: str, multiline: bool, bad: str
) -> None:
    problem = text_problem(text, multiline=multiline)
    assert problem is not None
    assert bad in problem


def test_ordinary_text_passes() -> None:
    assert text_problem("Sécurité 101 — Übung, 日本語") is None
    assert text_problem("line one\nline two\tend", multiline=True) is None


def test_retry_classification_and_backoff() -> None:
    lock = ProxmoxTaskFailed("UPID:x", "can't lock file '/var/lock/x' - got timeout", [])
    assert is_transient(lock)
    assert is_transient(ProxmoxUnavailable("595"))
    assert not is_transient(ProxmoxTaskFailed("UPID:x", "clone failed: disk error", []))
    assert not is_transient(ProxmoxValidationError("bad"))
    assert [backoff("vm.clone", n, 1.0) for n in range(4)] == [10.0, 30.0, 60.0, 60.0]
    assert [backoff("vm.power", n, 0.5) for n in range(3)] == [2.5, 5.0, 7.5]


async def test_in_process_queue_drops_duplicate_keyed_jobs() -> None:
    from openvle_core.queue import InProcessQueue

    ran: list[str] = []

    async def runner(op_id: str) -> None:
        ran.append(op_id)

    queue = InProcessQueue(concurrency=1)
    await queue.enqueue("a", key="recover-1")
    await queue.enqueue("a", key="recover-1")  # still pending: dropped
    await queue.enqueue("a")  # unkeyed deliveries always go in
    queue.start(runner)
    await queue.join()
    await queue.enqueue("a", key="recover-1")  # ran already: accepted again
    await queue.join()
    await queue.close()
    assert ran == ["a", "a", "a"]
