"""The audit log between two times, alike on both faces: ``since`` inclusive, ``until``
exclusive, and pages that continue across events the window leaves out."""

from __future__ import annotations

from pathlib import Path

from modelyard.services.registry import RegistryApi


def test_the_audit_log_between_two_times_pages_the_same_on_both_faces(
        api: RegistryApi, model_dir: Path) -> None:
    for _ in range(4):
        api.register("m", model_dir)
    api.set_tag("m", "team", "risk")
    every = api.audit()
    times = sorted({e.at for e in every})
    assert len(times) >= 4  # each change commits at its own time
    since, until = times[1], times[-1]
    inside = [e.seq for e in every if since <= e.at < until]
    assert 0 < len(inside) < len(every)
    assert [e.seq for e in api.audit(since=since, until=until)] == inside
    assert [e.seq for e in api.audit(until=since)] == [e.seq for e in every if e.at < since]
    paged, token = [], None
    while True:  # one event a page: each token continues after the last event shown
        page = api.audit(since=since, until=until, max_results=1, page_token=token)
        paged += [e.seq for e in page]
        token = page.next_page_token
        if token is None:
            break
    assert paged == inside
    assert list(api.audit("m", until=times[0])) == [e for e in every if e.at < times[0]]
