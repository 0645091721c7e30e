"""`collector.paused`: no cyclic collection inside, the collector's state restored after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from openvle_core import collector
from tests.support.collections import collections_seen


@pytest.fixture(autouse=True)
def enabled() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_no_collection_runs_inside_and_it_resumes_after() -> None:
    with collections_seen() as runs:
        with collector.paused():
            assert not gc.isenabled()
            junk = [[i] for i in range(20_000)]  # far past the young generation's 700
            del junk
            assert runs == []
        assert gc.isenabled()
        junk = [[i] for i in range(20_000)]
        assert runs  # collecting again
        del junk


def failing_sync() -> None:
    with collector.paused():
        with collector.paused():
            pass
        assert not gc.isenabled()  # the outer pause still holds
        raise RuntimeError("the sync failed")


def test_nested_pauses_resume_at_the_last_one_even_after_an_error() -> None:
    with pytest.raises(RuntimeError, match="sync failed"):
        failing_sync()
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    with collector.paused():
        pass
    assert not gc.isenabled()
