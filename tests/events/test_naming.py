"""VM names of an event: DNS-safe, unique, at most 63 characters."""

from __future__ import annotations

from openvle_core.events.vm_names import plan_names, vm_name

EVENT_ID = "0192f3a4-1111-7000-8000-00000000abcd"


def test_names_are_slug_participant_template_and_dns_safe() -> None:
    plan = plan_names("sec_101", EVENT_ID, 2, [("t1", "Debian_12 Template"), ("t2", "kali")])
    assert [p.name for p in plan] == [
        "sec-101-001-debian-12-template",
        "sec-101-001-kali",
        "sec-101-002-debian-12-template",
        "sec-101-002-kali",
    ]
    assert [(p.participant, p.template_id) for p in plan] == [
        (1, "t1"),
        (1, "t2"),
        (2, "t1"),
        (2, "t2"),
    ]


def test_templates_that_clean_up_alike_get_their_position() -> None:
    plan = plan_names("abcd", EVENT_ID, 1, [("t1", "web_server"), ("t2", "web-server")])
    assert [p.name for p in plan] == ["abcd-001-web-server-t1", "abcd-001-web-server-t2"]


def test_a_name_another_event_uses_gets_a_suffix() -> None:
    taken = {"ab-c-001-kali"}  # event "ab-c"; this one is "ab_c"
    plan = plan_names("ab_c", EVENT_ID, 2, [("t1", "kali")], taken)
    assert [p.name for p in plan] == ["ab-c-001-kali-abcd", "ab-c-002-kali-abcd"]


def test_long_names_stay_within_63_characters() -> None:
    name = vm_name("longslug", 1000, "x" * 80, "abcd")
    assert len(name) <= 63
    assert name.startswith("longslug-1000-xxx")
    assert name.endswith("-abcd")
