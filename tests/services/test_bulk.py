"""The collector pause around bulk record building: nested, threaded, and restoring."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from modelyard.services.bulk import collector_paused


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_no_collection_starts_inside_and_the_collector_is_back_after() -> None:
    started: list[str] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(phase)

    gc.callbacks.append(record)
    try:
        with collector_paused():
            garbage = [[i] for i in range(50_000)]  # far past the 700-object threshold
            assert not gc.isenabled() and not started
        del garbage
        assert gc.isenabled()
        [[i] for i in range(50_000)]
        assert started
    finally:
        gc.callbacks.remove(record)


def test_nested_and_concurrent_pauses_end_with_the_last() -> None:
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with collector_paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    with collector_paused():
        thread.start()
        inside.wait(10)
        with collector_paused():
            pass
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread is still building
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_application_stays_off() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_an_error_inside_still_restores_the_collector() -> None:
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()
